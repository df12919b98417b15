// The sandbox viewer page: polls /_sandbox/view/... and posts chat as a named viewer.
"use strict";
const RetakeViewer = (() => {
  const POLL_MS = 1500;
  const viewerId = Math.random().toString(36).slice(2, 10);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw Object.assign(new Error("HTTP " + r.status), { status: r.status });
    return r.json();
  }

  async function index(list) {
    async function refresh() {
      try {
        const data = await getJSON("/_sandbox/view/agents");
        list.replaceChildren();
        if (!data.agents.length) list.append(el("li", "no agents registered yet", "muted"));
        for (const a of data.agents) {
          const li = el("li");
          const link = el("a", a.username);
          link.href = "/" + encodeURIComponent(a.username);
          const badge = el("span", a.is_live ? "live" : "offline",
                           "badge " + (a.is_live ? "live" : "offline"));
          li.append(link, " ", badge, " ", el("span", a.viewers + " viewers", "muted"));
          list.append(li);
        }
      } catch (e) { /* the sandbox may be restarting: keep polling */ }
    }
    await refresh();
    setInterval(refresh, POLL_MS * 2);
  }

  function stream(name) {
    document.title = "retake sandbox: " + name;
    document.getElementById("name").textContent = name;
    const live = document.getElementById("live");
    const viewers = document.getElementById("viewers");
    const uptime = document.getElementById("uptime");
    const img = document.getElementById("thumbnail");
    const noThumb = document.getElementById("no-thumbnail");
    const transcript = document.getElementById("transcript");
    const form = document.getElementById("chat-form");
    const who = document.getElementById("viewer-name");
    const text = document.getElementById("chat-text");
    const err = document.getElementById("chat-error");
    const shown = new Set();
    let lastThumb = null;
    who.value = localStorage.getItem("retake-viewer") || "";

    function addComment(c) {
      if (shown.has(c._id)) return;
      shown.add(c._id);
      const li = el("li");
      li.dataset.id = c._id;
      li.append(el("span", c.author.fusername, "who"), el("span", c.text, "text"));
      transcript.append(li);
      transcript.scrollTop = transcript.scrollHeight;
    }

    async function refresh() {
      try {
        const d = await getJSON("/_sandbox/view/agents/" + encodeURIComponent(name) +
                                "?viewer=" + viewerId);
        live.textContent = d.is_live ? "live" : "offline";
        live.className = "badge " + (d.is_live ? "live" : "offline");
        viewers.textContent = d.viewers + " viewers";
        uptime.textContent = d.is_live ? "up " + d.uptime_seconds + " s" : "";
        if (d.thumbnail_url && d.thumbnail_url !== lastThumb) {
          lastThumb = d.thumbnail_url;
          img.src = d.thumbnail_url;
          img.hidden = false;
          noThumb.hidden = true;
        }
        for (const c of d.comments) addComment(c);
      } catch (e) {
        if (e.status === 404) document.getElementById("missing").hidden = false;
      }
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      localStorage.setItem("retake-viewer", who.value);
      const r = await fetch("/_sandbox/view/agents/" + encodeURIComponent(name) + "/chat", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ viewer: who.value, text: text.value }),
      });
      if (r.ok) { addComment(await r.json()); text.value = ""; }
      else { err.textContent = (await r.json()).error || ("HTTP " + r.status); err.hidden = false; }
    });

    refresh();
    setInterval(refresh, POLL_MS);
  }

  return { index, stream };
})();
