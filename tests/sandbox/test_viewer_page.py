"""The viewer page in a real headless Chromium, driven over the DevTools protocol."""

from __future__ import annotations

import base64
import io
import itertools
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.sandbox import Publish, Sandbox, SandboxAgent, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                       reason="needs Debian's chromium (apt-get install chromium)"),
]


class Browser:
    """One headless Chromium we started (by PID) and a CDP session on its first page."""

    def __init__(self, proc: subprocess.Popen[bytes], ws: ClientConnection) -> None:
        self.proc = proc
        self.ws = ws
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=15))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise AssertionError(f"CDP {method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        wait_until(lambda: self.js("document.readyState") == "complete", timeout=10,
                   message=f"{url} to load")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium on a loopback DevTools port; stopped by its PID (and its children's)."""
    profile = tmp_path / "chromium"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,800",
         "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "chromium.log", "wb"),
        start_new_session=True,
    )
    children: list[psutil.Process] = []
    try:
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: port_file.is_file() and port_file.read_text().strip(), timeout=20,
                   message="Chromium's DevTools port")
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(t for t in targets if t["type"] == "page")
        with contextlib_suppress():
            children = psutil.Process(proc.pid).children(recursive=True)
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            b = Browser(proc, ws)
            b.send("Page.enable")
            yield b
            with contextlib_suppress():
                ws.send(json.dumps({"id": 0, "method": "Browser.close"}))  # quick, polite exit
    finally:
        with contextlib_suppress():
            children = children or psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for child in children:
            with contextlib_suppress():
                child.wait(3)
            with contextlib_suppress():
                child.kill()
        assert proc.poll() is not None


def contextlib_suppress() -> Any:
    import contextlib

    return contextlib.suppress(psutil.Error, subprocess.TimeoutExpired, OSError)


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 180), color).save(buf, format="PNG")
    return buf.getvalue()


def _thumbnail(agent: SandboxAgent, color: tuple[int, int, int]) -> str:
    r = agent.request("POST", "agent/update-thumbnail",
                      files={"image": ("t.png", _png(color), "image/png")})
    r.raise_for_status()
    return str(r.json()["thumbnail_url"])


def test_viewer_page_shows_the_stream_and_posts_chat(
        sandbox: Sandbox, sandbox_agent: SandboxAgent, browser: Browser,
        publisher: Callable[..., Publish], tmp_path: Path) -> None:
    """Chromium shows live state, viewers, the newest thumbnail and chat; a posted line lands."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    publisher(url, seconds=30)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3, message="is_live")
    first = _thumbnail(sandbox_agent, (200, 40, 40))
    sandbox.post_comment(sandbox_agent, "hello from alice", viewer="alice")

    browser.goto(f"{sandbox.root_url}/")
    wait_until(lambda: sandbox_agent.name in (browser.js("document.body.innerText") or ""),
               timeout=5, message="the agent in the index")

    browser.goto(f"{sandbox.root_url}/{sandbox_agent.name}")
    wait_until(lambda: browser.js("document.getElementById('live').textContent") == "live",
               timeout=5, message="the live badge")
    assert wait_until(lambda: browser.js("document.getElementById('thumbnail').src") == first,
                      timeout=5, message="the first thumbnail")
    # this page counts as a viewer on top of the simulated ones
    wait_until(lambda: sandbox_agent.status()["viewers"] >= 3, timeout=5, message="our viewer")
    wait_until(lambda: "hello from alice" in browser.js(
        "document.getElementById('transcript').innerText"), timeout=5, message="alice's line")
    second = _thumbnail(sandbox_agent, (40, 200, 40))
    wait_until(lambda: browser.js("document.getElementById('thumbnail').src") == second,
               timeout=5, message="the refreshed thumbnail")

    browser.js("""
        document.getElementById('viewer-name').value = 'carol';
        document.getElementById('chat-text').value = 'hi from the browser';
        document.getElementById('chat-form').requestSubmit();
    """)
    wait_until(lambda: "hi from the browser" in browser.js(
        "document.getElementById('transcript').innerText"), timeout=5, message="our line")
    browser.screenshot(tmp_path / "viewer.png")
    r = sandbox_agent.request("GET", "agent/stream/comments",
                              params={"userDbId": sandbox_agent.user_db_id, "limit": 5})
    newest = r.json()["comments"][0]
    assert newest["text"] == "hi from the browser"
    assert newest["author"]["fusername"] == "carol"
    assert sandbox.calls(kind="viewer", event="chat")


def test_viewer_page_for_an_unknown_agent(sandbox: Sandbox, browser: Browser) -> None:
    """An unknown agent's page is a 404 that says so, not a blank page."""
    assert httpx.get(f"{sandbox.root_url}/nobody-{time.time_ns()}").status_code == 404
    browser.goto(f"{sandbox.root_url}/nobody-at-all")
    wait_until(lambda: browser.js("document.getElementById('missing').hidden") is False,
               timeout=5, message="the 'no such agent' notice")
