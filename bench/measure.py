"""The measurements, one function each. Times come from the sandbox's call log (the
platform's own clock on this machine) or from polling its admin API every 50 ms;
never from what a contender says about itself.

Each function returns a dict of plain numbers (JSON-ready); a metric that did not
happen within its cap is `None` with a `*_note` saying so.
"""

from __future__ import annotations

import math
import random
import signal
import time
from typing import Any

import psutil
from harness import Agent, Contender, RetakeFsm, Sandbox, iso_to_epoch, wait_for

POLL = 0.05  # seconds between looks at the sandbox while waiting for something
SAMPLE = 0.2  # seconds between psutil samples while measuring overhead
MB = 1024 * 1024


class Failed(Exception):
    """A contender could not be measured (it exited, or never went live)."""


def _log_tail(c: Contender, n: int = 3) -> str:
    try:
        lines = (c.workdir / f"{c.label}.log").read_text("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in lines[-n:])


def _exited(c: Contender) -> bool:
    return c.proc is not None and c.proc.poll() is not None


# time to live -------------------------------------------------------------------------------
def time_to_live(sb: Sandbox, c: Contender, since: int, cap: float) -> dict[str, Any]:
    """Process start -> the platform accepted the first thumbnail (from the call log)."""

    def accepted() -> dict[str, Any] | None:
        for call in sb.calls(since=since, path="agent/update-thumbnail", agent=c.agent.name):
            if call.get("status") == 200:
                return call
        if _exited(c):
            raise Failed(f"{c.label} exited with {c.proc.returncode if c.proc else '?'} before "
                         f"going live: {_log_tail(c)}")
        return None

    call = wait_for(accepted, cap, interval=0.1)
    if call is None:
        raise Failed(f"{c.label} uploaded no thumbnail within {cap:g}s: {_log_tail(c)}")
    status = [x for x in sb.calls(since=since, path="agent/stream/status", agent=c.agent.name)
              if float(x["t"]) <= float(call["t"])]
    return {"ttl_s": round(float(call["t"]) - c.started_at, 3),
            "status_polls_before_live": len(status)}


# live again -----------------------------------------------------------------------------
def _live_on_new_key(sb: Sandbox, agent: Agent, old_key: str | None) -> bool:
    st = sb.agent_state(agent)
    return bool(st.get("is_live")) and st.get("key") != old_key


def _await_live_again(sb: Sandbox, c: Contender, old_key: str | None, t0: float,
                      cap: float) -> float | None:
    def check() -> bool | None:
        if _exited(c):
            raise Failed(f"{c.label} exited while recovering: {_log_tail(c)}")
        return _live_on_new_key(sb, c.agent, old_key) or None

    return None if wait_for(check, cap, POLL) is None else round(time.time() - t0, 3)


def recovery(sb: Sandbox, c: Contender, cap: float) -> dict[str, Any]:
    """ffmpeg SIGKILLed while live -> the platform says live again, on a new key."""
    ffmpeg = c.child("ffmpeg")
    if ffmpeg is None:
        raise Failed(f"{c.label}: no ffmpeg to kill")
    old_key = sb.agent_state(c.agent).get("key")
    t0 = time.time()
    ffmpeg.signal(signal.SIGKILL)
    took = _await_live_again(sb, c, old_key, t0, cap)
    out: dict[str, Any] = {"recovery_s": took}
    if took is None:
        out["recovery_note"] = f"not recovered within {cap:g} s"
    return out


def stall(sb: Sandbox, c: Contender, cap: float) -> dict[str, Any]:
    """The ingest stops reading (ffmpeg blocks without exiting) -> live again on a new key."""
    old_key = sb.agent_state(c.agent).get("key")
    t0 = time.time()
    sb.freeze(c.agent)
    try:
        took = _await_live_again(sb, c, old_key, t0, cap)
    finally:
        sb.unfreeze()
    out: dict[str, Any] = {"stall_s": took}
    if took is None:
        out["stall_note"] = f"not recovered within {cap:g} s"
    return out


def settle_live(sb: Sandbox, c: Contender, cap: float = 20.0) -> None:
    """After a recovery: wait until the contender is done with its go-live steps (retake-fsm:
    its live loops run again, i.e. the newest `watchdog`/`live.loops` entry is `live.loops`)."""
    if isinstance(c, RetakeFsm):
        def loops_again() -> bool:
            marks = [e.get("event") for e in c.journal()
                     if e.get("event") in ("watchdog", "live.loops")]
            return bool(marks) and marks[-1] == "live.loops"

        wait_for(loops_again, cap)
    else:
        wait_for(lambda: sb.agent_state(c.agent).get("is_live"), cap)
        time.sleep(1.0)


# resume -----------------------------------------------------------------------------------
def resume(sb: Sandbox, c: RetakeFsm, cap: float) -> dict[str, Any]:
    """SIGKILL the orchestrator while live, start a new one at once -> it adopted the stream
    (journal: `live.loops` from the new PID after `reconcile decision=adopt`)."""
    ffmpeg = c.child("ffmpeg")
    since = sb.mark()
    t0 = time.time()
    c.kill_orchestrator()
    c.restart()
    assert c.proc is not None
    pid = c.proc.pid

    def adopted() -> dict[str, Any] | None:
        if _exited(c):
            raise Failed(f"the resumed run exited: {_log_tail(c)}")
        for e in c.journal():
            if e.get("pid") == pid and e.get("event") == "live.loops":
                return e
        return None

    loops = wait_for(adopted, cap)
    mine = [e for e in c.journal() if e.get("pid") == pid]
    decision = next((e.get("decision") for e in mine if e.get("event") == "reconcile"), None)
    after = c.child("ffmpeg")
    starts = sb.calls(since=since, path="agent/stream/start", agent=c.agent.name)
    publishes = [x for x in sb.calls(since=since, kind="ingest", event="publish")
                 if x.get("agent") == c.agent.name]
    out: dict[str, Any] = {
        "resume_s": None if loops is None else round(iso_to_epoch(loops["ts"]) - t0, 3),
        "resume_from_start_s": None if loops is None
        else round(iso_to_epoch(loops["ts"]) - c.started_at, 3),
        "resume_decision": decision,
        "resume_same_ffmpeg": ffmpeg is not None and after == ffmpeg,
        "resume_new_stream_starts": len(starts),
        "resume_new_publishes": len(publishes),
    }
    if loops is None:
        out["resume_note"] = f"not adopted within {cap:g} s"
    elif decision != "adopt":
        out["resume_note"] = f"reconcile decided {decision!r}, not adopt"
        out["resume_s"] = None
    return out


# overhead + quiet chat ---------------------------------------------------------------------
def _cpu(p: psutil.Process, children: bool) -> float:
    t = p.cpu_times()
    total = t.user + t.system
    if children:  # children we waited for (curl, python3, scrot): theirs is the tool's work
        total += t.children_user + t.children_system
    return total


def overhead(sb: Sandbox, c: Contender, window: float) -> dict[str, Any]:
    """CPU % of one core and peak RSS over `window` seconds while live and quiet: the
    orchestrator (with the short helpers it runs and reaps: curl, python3, scrot) apart
    from ffmpeg, Xvfb and the scene window; plus comment polls per quiet hour."""
    assert c.orchestrator is not None
    main = c.orchestrator.process()
    if main is None:
        raise Failed(f"{c.label}: orchestrator gone")
    kids = {name: c.child(name) for name in ("ffmpeg", "xvfb", "scene")}
    procs: dict[str, psutil.Process] = {}
    for name, t in kids.items():
        p = t.process() if t is not None else None
        if p is not None:
            procs[name] = p
    long_lived = {p.pid for p in procs.values()}
    since = sb.mark()
    w0 = time.time()
    cpu0 = {"orchestrator": _cpu(main, True)}
    cpu0.update({n: _cpu(p, False) for n, p in procs.items()})
    peak = {"orchestrator": 0, "orchestrator_tree": 0, **{n: 0 for n in procs}}
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        try:
            rss = main.memory_info().rss
            tree = rss
            for child in main.children(recursive=True):
                if child.pid not in long_lived:
                    try:
                        tree += child.memory_info().rss
                    except psutil.Error:
                        pass
        except psutil.Error as exc:
            raise Failed(f"{c.label}: orchestrator exited during the overhead window") from exc
        peak["orchestrator"] = max(peak["orchestrator"], rss)
        peak["orchestrator_tree"] = max(peak["orchestrator_tree"], tree)
        for n, p in procs.items():
            try:
                peak[n] = max(peak[n], p.memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(SAMPLE)
    w1 = time.time()
    elapsed = w1 - w0
    out: dict[str, Any] = {
        "cpu_pct": round((_cpu(main, True) - cpu0["orchestrator"]) / elapsed * 100, 2),
        "rss_mb": round(peak["orchestrator_tree"] / MB, 1),
        "rss_main_mb": round(peak["orchestrator"] / MB, 1),
    }
    for n, p in procs.items():
        try:
            out[f"{n}_cpu_pct"] = round((_cpu(p, False) - cpu0[n]) / elapsed * 100, 1)
        except psutil.Error:
            out[f"{n}_cpu_pct"] = None
        out[f"{n}_rss_mb"] = round(peak[n] / MB, 1)
    polls = [x for x in sb.calls(since=since, path="agent/stream/comments", agent=c.agent.name)
             if w0 <= float(x["t"]) <= w1]
    out["quiet_polls"] = len(polls)
    out["quiet_requests_per_hour"] = round(len(polls) * 3600 / elapsed)
    return out


# chat ----------------------------------------------------------------------------------------
def schedule(n: int, seed: int, mean: float = 3.0) -> list[float]:
    """Offsets (s) of `n` comments: exponential gaps of `mean` s, clipped to 0.5-10 s."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        out.append(round(t, 3))
        t += min(10.0, max(0.5, rng.expovariate(1 / mean)))
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def chat(sb: Sandbox, c: Contender, offsets: list[float], tag: str,
         reply_cap: float = 30.0) -> dict[str, Any]:
    """Viewer comments on `offsets` (each from a new viewer, so both tools answer each one);
    latency = the reply's chat/send call time - the comment's timestamp."""
    since = sb.mark()
    posted: dict[str, float] = {}
    start = time.monotonic()
    for i, offset in enumerate(offsets):
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if _exited(c):
            raise Failed(f"{c.label} exited during the chat run: {_log_tail(c)}")
        viewer = f"viewer{i:03d}{tag}"
        rec = sb.post_comment(c.agent, f"hello from {viewer}, first time here", viewer)
        posted[viewer] = iso_to_epoch(str(rec["timestamp"]))

    def replies() -> dict[str, float]:
        out: dict[str, float] = {}
        for call in sb.calls(since=since, path="agent/stream/chat/send", agent=c.agent.name):
            body = call.get("body") or {}
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
            for viewer in posted:
                if viewer in message and viewer not in out and call.get("status") == 200:
                    out[viewer] = float(call["t"])
        return out

    wait_for(lambda: len(replies()) == len(posted) or None, reply_cap, 0.5)
    got = replies()
    latencies = [round(got[v] - posted[v], 3) for v in posted if v in got]
    out: dict[str, Any] = {
        "chat_comments": len(posted),
        "chat_replied": len(latencies),
        "chat_latencies_s": latencies,
        "chat_p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "chat_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
    }
    if len(latencies) < len(posted):
        missing = len(posted) - len(latencies)
        out["chat_note"] = f"{missing} comments unanswered after {reply_cap:g} s"
    return out
