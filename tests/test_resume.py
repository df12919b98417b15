"""Crash and resume: SIGKILL a real `run` mid-transition, run again, check state and journal."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.fixtures.env import Env
from tests.plugins.steps import SLOW_MARKER

REPO = Path(__file__).resolve().parents[1]
STATES = str(REPO / "tests" / "definitions" / "ok_steps.yaml")
ENDINGS = {"attempt.ok", "retry", "failure"}


def journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sigkill_mid_transition_then_rerun_resumes_from_the_persisted_state(env: Env) -> None:
    """Killed inside `start`: state.json says rtmp; the rerun goes rtmp -> live; journal agrees."""
    profile_dir = env.state_home / "retake-fsm" / "default"
    run = ("--states", STATES, "run", "--until", "live", "--exit-when-reached")

    first = env.popen(*run)
    try:
        deadline = time.monotonic() + 30
        while not (profile_dir / SLOW_MARKER).exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the slow action never started"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == -signal.SIGKILL

    killed = json.loads((profile_dir / "state.json").read_text())
    assert killed["state"] == "rtmp" and killed["last_transition"] == "verify"

    second = env.cli(*run)
    assert second.returncode == 0, second.stderr
    assert json.loads((profile_dir / "state.json").read_text())["state"] == "live"

    entries = journal(profile_dir / "journal.jsonl")
    pids = list(dict.fromkeys(e["pid"] for e in entries))
    assert len(pids) == 2 and pids[0] == first.pid  # two runs, one after the other
    second_pid = pids[1]

    # Every transition line continues the state sequence, across the crash.
    state = "unregistered"
    for e in (e for e in entries if e["event"] == "transition"):
        assert e["source"] == state, e
        state = e["dest"]
    assert state == "live"
    moves = [(e["pid"], e["transition"]) for e in entries if e["event"] == "transition"]
    assert moves == [(first.pid, "register"), (first.pid, "verify"), (second_pid, "start"),
                     (second_pid, "encode"), (second_pid, "confirm")]

    # The killed attempt: started, never finished.
    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return e["pid"], e.get("transition"), e.get("action"), e.get("attempt")

    started = [key(e) for e in entries if e["event"] == "attempt"]
    finished = {key(e) for e in entries if e["event"] in ENDINGS}
    unfinished = [k for k in started if k not in finished]
    assert unfinished == [(first.pid, "start", "t_slow_once", 1)]

    # The second run began where the first stopped, after reconciling.
    second_run = [e for e in entries if e["pid"] == second_pid]
    assert (second_run[0]["event"], second_run[0]["source"]) == ("run", "rtmp")
    assert [e["event"] for e in second_run[1:3]] == ["test.reconciled", "reconcile"]
