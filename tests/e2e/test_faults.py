"""Platform faults against a real `run`: flaky and slow, a rejected token, the platform down."""

from __future__ import annotations

import json
import time

import pytest

from retake_fsm.redact import mask
from tests.fixtures.e2e import FAST, Runs
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Sandbox, SandboxAgent

pytestmark = pytest.mark.e2e

ARGS = ["--display", "auto", *[a for s in FAST for a in ("--set", s)]]
BAD_TOKEN = "rtk_" + "0badc0de" * 5


def _user_lines(stderr: str) -> list[str]:
    """What the CLI says to the user (log lines carry a level prefix)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("retake-fsm:")]


def test_flaky_slow_platform_still_reaches_live(verified_env: tuple[Env, SandboxAgent],
                                                e2e_runs: Runs, sandbox: Sandbox) -> None:
    """20 % 503s and 150 ms of added latency on every endpoint: the run retries its way live."""
    env, agent = verified_env
    sandbox.set_faults("rate=0.2,status=503", "latency=150ms", seed=11)
    run = e2e_runs.start(env, *ARGS)
    seconds = run.wait_live(60)
    fired = {r["status"] or "latency": r["fired"] for r in sandbox.admin("GET", "faults")["rules"]}
    print(f"\n503s + latency: live in {seconds:.2f}s; faults fired: {fired}")
    assert fired[503] > 0 and fired["latency"] > 0
    assert sandbox.agent_state(agent)["is_live"] is True  # the admin view: no faults there
    retried = run.events("retry") + run.events("confirm.poll_failed") + run.events(
        "chat.poll_failed")
    assert retried, "no 503 reached the run"


def test_rejected_token_stops_at_once_with_the_fix(verified_env: tuple[Env, SandboxAgent],
                                                   sandbox: Sandbox) -> None:
    """A 401 is never retried: one call, exit 1, one line naming the fix, no traceback."""
    env, _agent = verified_env
    mark = sandbox.mark()
    t0 = time.monotonic()
    res = env.cli("run", *ARGS, extra_env={"RETAKE_ACCESS_TOKEN": BAD_TOKEN})
    elapsed = time.monotonic() - t0
    assert res.returncode == 1, res.stderr
    lines = _user_lines(res.stderr)
    assert len(lines) == 1 and "re-register or set RETAKE_ACCESS_TOKEN" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and BAD_TOKEN not in res.stdout + res.stderr
    calls = [c for c in sandbox.calls(since=mark) if c["auth"] == f"Bearer {mask(BAD_TOKEN)}"]
    assert [c["status"] for c in calls] == [401]
    assert elapsed < 10


def test_token_revoked_while_live_stops_the_stream_at_once(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """401s while live: no recovery loop; the run stops its stream and exits 1 naming the fix."""
    env, _agent = verified_env
    run = e2e_runs.start(env, *ARGS)
    run.wait_live(40)
    t0 = time.monotonic()
    sandbox.set_faults("status=401")
    rc = run.wait(30)
    print(f"\n401 while live: run ended in {time.monotonic() - t0:.2f}s")
    assert rc == 1, run.tail(40)
    lines = _user_lines("".join(run.err))
    assert len(lines) == 1 and "re-register or set RETAKE_ACCESS_TOKEN" in lines[0]
    assert run.state()["state"] == "stopped" and run.state()["processes"] == {}
    run.observe()
    assert run.leftovers() == []


def test_platform_down_retries_in_bounds_then_a_later_run_resumes(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """Platform down: 5 bounded attempts, one clear line, state kept; a later run goes live."""
    env, agent = verified_env
    first = env.cli("run", "--until", "rtmp", "--exit-when-reached", *ARGS)
    assert first.returncode == 0, first.stderr

    sandbox.set_faults("down")
    mark = sandbox.mark()
    t0 = time.monotonic()
    down = env.cli("run", *ARGS, timeout=90)
    elapsed = time.monotonic() - t0
    starts = sandbox.calls("stream/start", since=mark)
    print(f"\nplatform down: gave up after {len(starts)} stream/start attempts in {elapsed:.2f}s")
    assert down.returncode == 1
    lines = _user_lines(down.stderr)
    assert len(lines) == 1 and "platform may be down" in lines[0], down.stderr
    assert "Traceback" not in down.stderr
    assert len(starts) == 5 and all(c["status"] == 503 for c in starts)
    assert elapsed < 60  # the transition's total timeout
    state = json.loads((env.state_home / "retake-fsm" / "default" / "state.json").read_text())
    assert state["state"] == "rtmp" and state["last_error"]["kind"] == "server"

    sandbox.clear_faults()
    again = e2e_runs.start(env, *ARGS)
    again.wait_live(40)
    assert agent.status()["is_live"] is True
