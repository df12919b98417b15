"""`retake-fsm stop` from another process ends the stream; the next `run` is a new stream."""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import FAST, Runs
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Sandbox, SandboxAgent

pytestmark = pytest.mark.e2e

ARGS = ["--display", "auto", *[a for s in FAST for a in ("--set", s)]]


def test_stop_from_another_process_then_a_new_stream_on_a_new_key(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """stop: stream/stop, stats, no process of ours, `stopped`; the next run uses a new key."""
    env, agent = verified_env
    run = e2e_runs.start(env, *ARGS)
    run.wait_live(40)
    first_key = sandbox.agent_state(agent)["key"]
    pids = run.pids()
    assert {"xvfb", "ffmpeg"} <= set(pids)
    mark = sandbox.mark()

    stop = env.cli("stop", timeout=90)
    assert stop.returncode == 0, stop.stderr
    assert f"asked run PID {run.proc.pid} to stop" in stop.stdout
    assert "final stats: duration_seconds=" in stop.stdout
    assert run.wait(30) == 0
    stopped = [c for c in sandbox.calls("stream/stop", since=mark) if c.get("agent") == agent.name]
    assert [c["status"] for c in stopped] == [200]
    run.observe()
    assert run.leftovers() == [], run.leftovers()
    state = run.state()
    assert state["state"] == "stopped" and state["processes"] == {}
    assert state["final_stats"]["status"] == "stopped"
    assert sandbox.agent_state(agent)["session"] is None

    mark = sandbox.mark()
    again = e2e_runs.start(env, *ARGS)
    again.wait_live(40)
    new_calls = [c for c in sandbox.calls(since=mark) if c.get("agent") == agent.name]
    paths = [c["path"].rsplit("/", 2)[-2:] for c in new_calls if c.get("kind") == "api"]
    assert ["agent", "rtmp"] in paths and ["stream", "start"] in paths
    assert sandbox.agent_state(agent)["key"] != first_key
    assert again.pids()["ffmpeg"] != pids["ffmpeg"]
    assert again.state()["streams"] == 2

    second = env.cli("stop", timeout=90)
    assert second.returncode == 0 and again.wait(30) == 0
    stats = again.state()["final_stats"]  # this stream's, not the sum of both
    assert stats["streams"] == 2 and stats["thumbnails"] == 1 and stats["recoveries"] == 0


def test_stop_with_no_run_alive_cleans_up_what_a_killed_run_left(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """After a SIGKILLed run, `stop` adopts and stops its leftovers and calls stream/stop."""
    env, agent = verified_env
    run = e2e_runs.start(env, *ARGS)
    run.wait_live(40)
    run.kill()
    assert run.leftovers(), "the children should outlive a SIGKILLed run"
    mark = sandbox.mark()

    stop = env.cli("stop", timeout=90)
    assert stop.returncode == 0, stop.stderr
    assert "state: stopped" in stop.stdout
    stopped = [c for c in sandbox.calls("stream/stop", since=mark) if c.get("agent") == agent.name]
    assert [c["status"] for c in stopped] == [200]
    assert run.leftovers() == [], run.leftovers()
    state = run.state()
    assert state["state"] == "stopped" and state["processes"] == {}
    assert sandbox.agent_state(agent)["is_live"] is False
