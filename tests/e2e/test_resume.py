"""Orchestrator crash: `run` SIGKILLed while live, then a new `run` resumes.

The children run in their own sessions, so ffmpeg (and Xvfb, the scene) outlive
a killed `run`; the next `run` adopts them by PID + start time and resumes chat
from the persisted cursor. If ffmpeg died too, it restarts on a fresh key.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from typing import Any

import psutil
import pytest

from tests.fixtures.e2e import ECHO_RESPONDER, FAST, Runs, python_cmd
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Sandbox, SandboxAgent, wait_until

pytestmark = pytest.mark.e2e

ARGS = ["--display", "auto", "--responder", python_cmd(ECHO_RESPONDER),
        *[a for s in FAST for a in ("--set", s)]]


def _replies(sandbox: Sandbox, agent: SandboxAgent, since: int) -> Counter[str]:
    """How many times each comment id was answered (the echo responder says `re <id>`)."""
    sent = [c["body"]["message"] for c in sandbox.calls("stream/chat/send", since=since)
            if c.get("agent") == agent.name]
    return Counter(m.split(" ", 1)[1] for m in sent if m.startswith("re "))


def _polls_after(sandbox: Sandbox, agent: SandboxAgent, seq: int) -> int:
    return len([c for c in sandbox.calls("stream/comments", since=seq)
                if c.get("agent") == agent.name])


def test_killed_run_is_resumed_by_adopting_ffmpeg_without_double_replies(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """run SIGKILLed: the next run adopts the same ffmpeg, replies once each, stop leaves none."""
    env, agent = verified_env
    first = e2e_runs.start(env, *ARGS)
    first.wait_live(40)
    mark = sandbox.mark()
    before = sandbox.post_comment(agent, "before the crash")["_id"]
    wait_until(lambda: _replies(sandbox, agent, mark)[before], timeout=10,
               message="the reply before the crash")
    pids = first.pids()
    first.kill()
    assert psutil.Process(pids["ffmpeg"]).is_running()  # the encoder outlived its orchestrator
    during = sandbox.post_comment(agent, "while the orchestrator was down")["_id"]

    t0, seen = time.monotonic(), len(first.journal())
    second = e2e_runs.start(env, *ARGS)
    second.wait_live(30, since_event=seen)
    adopted_in = time.monotonic() - t0
    reconcile = [e for e in second.events("reconcile") if "decision" in e][-1]
    assert reconcile["decision"] == "adopt" and "ffmpeg" in reconcile["adopted"]
    assert second.pids()["ffmpeg"] == pids["ffmpeg"]
    assert not [c for c in sandbox.calls("agent/rtmp", since=mark)]  # same stream, same key

    answered = wait_until(lambda: _replies(sandbox, agent, mark)[during], timeout=10,
                          message="the reply to the comment made while down")
    seq = sandbox.mark()
    wait_until(lambda: _polls_after(sandbox, agent, seq) >= 3, timeout=10,
               message="three more chat polls")
    replies = _replies(sandbox, agent, mark)
    assert replies[before] == 1 and replies[during] == answered == 1, replies
    print(f"\nresume: new run adopted ffmpeg and was live again in {adopted_in:.2f}s")

    stop = env.cli("stop", timeout=90)
    assert stop.returncode == 0, stop.stderr
    assert second.wait(30) == 0
    second.observe()
    assert first.leftovers() == [] and second.leftovers() == []


def test_killed_run_whose_ffmpeg_died_restarts_on_a_fresh_key(
        verified_env: tuple[Env, SandboxAgent], e2e_runs: Runs, sandbox: Sandbox) -> None:
    """run SIGKILLed and its ffmpeg died: the next run restarts ffmpeg on a fresh key."""
    env, agent = verified_env
    first = e2e_runs.start(env, *ARGS)
    first.wait_live(40)
    pids = first.pids()
    first.kill()
    os.kill(pids["ffmpeg"], signal.SIGKILL)
    old_key = sandbox.agent_state(agent)["key"]
    mark, seen = sandbox.mark(), len(first.journal())

    second = e2e_runs.start(env, *ARGS)
    second.wait_live(30, since_event=seen)
    reconcile: dict[str, Any] = [e for e in second.events("reconcile") if "decision" in e][-1]
    assert reconcile["decision"] == "recover" and "ffmpeg" in reconcile["dropped"]
    assert second.pids()["ffmpeg"] != pids["ffmpeg"]
    assert [c for c in sandbox.calls("agent/rtmp", since=mark) if c["status"] == 200]
    assert sandbox.agent_state(agent)["key"] != old_key
    assert agent.status()["is_live"] is True
