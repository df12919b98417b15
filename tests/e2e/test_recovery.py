"""Recovery while live, everything real: the encoder killed, the ingest frozen, the budget.

The first two tests share one live `run` (a verified sandbox agent); each breaks
it one way and measures how long until the platform says live again on a new
ffmpeg publishing with a new key. The last one spends `recover.max`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from tests.fixtures.e2e import FAST, CliRun, Runs, make_env
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Publish, Sandbox, SandboxAgent

pytestmark = pytest.mark.e2e

STALL = 2.0  # encoder.stall for this module (default 10 s)
STALLS = ("encoder_stall", "ingest_stalled")  # frame counter frozen / socket not draining


@dataclass
class Live:
    run: CliRun
    agent: SandboxAgent


@pytest.fixture(scope="module")
def live(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("recovery")
    agent = sandbox.register_agent(credentials_dir=root / "creds")
    env = make_env(root, agent.env())
    runs = Runs()
    try:
        run = runs.start(env, "--display", "auto",
                         *[a for s in [*FAST, f"encoder.stall={STALL:g}s"] for a in ("--set", s)])
        run.wait_live(40)
        yield Live(run=run, agent=agent)
    finally:
        left = runs.close()
    assert not left, f"left running: {left}"


def _ffmpeg(run: CliRun) -> tuple[int, str]:
    """PID and publish URL (the key is only in ffmpeg's argv) of the encoder now running."""
    pid = run.status()["pids"]["ffmpeg"]
    return pid, psutil.Process(pid).cmdline()[-1]


def _live_again(live: Live, sandbox: Sandbox, old_pid: int, since: int) -> Callable[[], Any]:
    """Live again: a new ffmpeg of ours, an accepted publish after `since`, platform is_live."""

    def check() -> bool:
        st = live.run.state()
        pid = st.get("processes", {}).get("ffmpeg", {}).get("pid")
        if st.get("state") != "live" or pid in (None, old_pid):
            return False
        published = [c for c in sandbox.calls(kind="ingest", event="publish", since=since)
                     if c.get("agent") == live.agent.name and c.get("reason") == "accepted"]
        return bool(published) and bool(live.agent.status()["is_live"])

    return check


def test_ffmpeg_sigkill_recovers_on_a_fresh_key(live: Live, sandbox: Sandbox,
                                                publisher: Callable[..., Publish]) -> None:
    """ffmpeg SIGKILLed: live again on a fresh key; the ingest refuses a publish on the old one."""
    old_pid, old_url = _ffmpeg(live.run)
    old_hint = sandbox.agent_state(live.agent)["key"]
    mark = sandbox.mark()
    t0 = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    live.run.wait_for(_live_again(live, sandbox, old_pid, mark), 30, "live again after the kill")
    print(f"\nffmpeg SIGKILL -> live again in {time.monotonic() - t0:.2f}s")

    assert [c for c in sandbox.calls("agent/rtmp", since=mark) if c["status"] == 200]
    new_hint = sandbox.agent_state(live.agent)["key"]
    assert new_hint != old_hint
    watchdog = live.run.events("watchdog", reason="encoder_exit")
    assert watchdog and watchdog[-1]["returncode"] == -9

    refused_mark = sandbox.mark()
    stale = publisher(old_url, seconds=5)
    assert stale.wait(10) != 0  # the ingest refused it: ffmpeg gave up
    refused = sandbox.calls(kind="ingest", event="publish_refused", since=refused_mark)
    assert [c for c in refused if c["key"] == old_hint]
    assert live.agent.status()["is_live"] is True  # our stream was not disturbed
    # viewers and operator are not greeted again: the recovery is one line, not a new stream
    assert live.run.events("chat.hello_skipped", reason="already greeted this stream")
    hellos = [c for c in sandbox.calls("stream/chat/send", since=mark)
              if "What should we explore today" in json.dumps(c.get("body"))]
    assert hellos == []


def test_frozen_ingest_is_a_stall_and_recovers(live: Live, sandbox: Sandbox) -> None:
    """Frozen ingest: a stall watchdog fires and the stream is live again on a fresh key."""
    old_pid, _ = _ffmpeg(live.run)
    seen = len(live.run.journal())
    mark = sandbox.mark()

    def stall() -> dict[str, Any] | None:
        fired = [e for e in live.run.journal()[seen:] if e.get("event") == "watchdog"]
        return fired[0] if fired else None

    t0 = time.monotonic()
    assert sandbox.freeze(live.agent)
    fired = live.run.wait_for(stall, 25, "a watchdog verdict")
    detected = time.monotonic() - t0
    assert fired["reason"] in STALLS and fired["trigger"] == "recover", fired
    live.run.wait_for(_live_again(live, sandbox, old_pid, mark), 30, "live again after a freeze")
    print(f"\nfreeze -> {fired['reason']} in {detected:.2f}s, live again in "
          f"{time.monotonic() - t0:.2f}s (encoder.stall={STALL:g}s)")
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"


def _kill_ffmpeg_and_wait(run: CliRun, sandbox: Sandbox, agent: SandboxAgent) -> None:
    pid = run.pids()["ffmpeg"]
    mark = sandbox.mark()
    os.kill(pid, signal.SIGKILL)
    run.wait_for(_live_again(Live(run=run, agent=agent), sandbox, pid, mark), 30,
                 "live again after the kill")


def test_spent_recovery_budget_stops_and_the_next_run_has_a_whole_one(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """recover.max=1: a second crash stops with the one-line error; the next run recovers again."""
    env, agent = verified_env
    args = ["--display", "auto", *[a for s in [*FAST, "recover.max=1"] for a in ("--set", s)]]
    run = e2e_runs.start(env, *args)
    run.wait_live(40)
    _kill_ffmpeg_and_wait(run, sandbox, agent)
    os.kill(run.pids()["ffmpeg"], signal.SIGKILL)
    assert run.wait(30) == 1
    lines = [ln for ln in run.err if ln.startswith("retake-fsm:")]
    assert len(lines) == 1 and "recover.max is 1" in lines[0], run.tail()
    assert run.state()["state"] == "stopped" and run.state()["processes"] == {}

    again = e2e_runs.start(env, *args)
    again.wait_live(40)
    _kill_ffmpeg_and_wait(again, sandbox, agent)  # the budget is per stream: not spent yet
    assert again.proc.poll() is None
