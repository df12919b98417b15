"""The engine: a real transitions AsyncMachine driven by the definition, with FakeClock."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from transitions.extensions.asyncio import AsyncMachine, AsyncTransition

from retake_fsm.context import ActionContext
from retake_fsm.engine import FsmGraphMachine, GuardedTransition, Model, build_machine
from retake_fsm.errors import (
    ExitCode,
    GuardTimeout,
    InputError,
    Interrupted,
    MissingBinaryError,
    ProcessExitedError,
    ServerError,
    StateError,
    TooManyRecoveries,
)
from tests.plugins.harness import Rig, definition_from, failing, make_rig, recorder

MACHINE = """
version: 1
initial: unregistered
target: live
states:
  unregistered: {}
  unverified: {}
  rtmp: {}
  started: {}
  encoding: {}
  live: {activity: live_act, on_error: recover}
  stopped: {}
transitions:
  register: {source: unregistered, dest: unverified, actions: [a_register]}
  verify: {source: unverified, dest: rtmp, actions: [a_verify, a_fetch]}
  start:
    source: rtmp
    dest: started
    actions: [a_start]
    retry: {attempts: 3, initial: 1s, multiplier: 2, max_delay: 10s, retry_on: [server]}
    timeout: 1m
  encode:
    source: started
    dest: encoding
    actions: [a_encode]
    retry: {attempts: 2, initial: 500ms, multiplier: 2, max_delay: 2s, retry_on: [process]}
    timeout: 30s
    on_error: recover
  confirm: {source: encoding, dest: live, actions: [a_confirm], timeout: CONFIRM_TIMEOUT,
            on_error: recover}
  recover:
    source: [started, encoding, live]
    dest: rtmp
    actions: [a_stop_encoder, a_fetch]
    on_error: stop
    on_demand: true
  stop:
    source: [rtmp, started, encoding, live]
    dest: stopped
    actions: [a_stop_stream, a_cleanup]
    on_demand: true
    run_all: true
    timeout: 30s
  restart: {source: stopped, dest: rtmp, actions: [a_fetch]}
settings:
  recover: {max: 2, window: 10m}
"""
ACTIONS = ["a_register", "a_verify", "a_fetch", "a_start", "a_encode", "a_confirm",
           "a_stop_encoder", "a_stop_stream", "a_cleanup"]
FORWARD = [("register", "unregistered", "unverified"), ("verify", "unverified", "rtmp"),
           ("start", "rtmp", "started"), ("encode", "started", "encoding"),
           ("confirm", "encoding", "live")]


def rig(tmp_path: Path, *, confirm_timeout: str = "1m", reconcile: str | None = None,
        state: str | None = None, overrides: list[str] | None = None,
        **actions: object) -> Rig:
    text = MACHINE.replace("CONFIRM_TIMEOUT", confirm_timeout)
    if reconcile:
        text = text.replace("target: live\n", f"target: live\nreconcile: {reconcile}\n")
    definition = definition_from(tmp_path, text)
    calls: list[str] = []
    registry = {name: recorder(calls, name) for name in ACTIONS}
    registry["live_act"] = recorder(calls, "live_act", "stop")
    registry.update(actions)  # type: ignore[arg-type]
    r = make_rig(tmp_path, definition, registry, state=state, overrides=overrides)
    r.calls = calls
    return r


async def test_drives_the_forward_route_and_persists_after_each_transition(
        tmp_path: Path) -> None:
    """Unregistered -> live in route order; each action sees the previous state on disk."""
    on_disk: list[str] = []
    calls: list[str] = []

    async def peek(ctx: ActionContext) -> str | None:
        on_disk.append(json.loads(ctx.paths.state_file.read_text())["state"])
        calls.append(ctx.transition or "")
        return None

    r = rig(tmp_path, a_verify=peek, a_start=peek, a_encode=peek, a_confirm=peek)
    final = await r.engine.run("live")
    assert final == "live"
    assert r.path_taken() == FORWARD
    assert on_disk == ["unverified", "rtmp", "started", "encoding"]
    assert calls == ["verify", "start", "encode", "confirm"]
    assert r.store.load().state == "live"
    assert r.store.load().last_transition == "confirm"


async def test_retryable_failures_back_off_on_the_fake_clock(tmp_path: Path) -> None:
    """Two 5xx on start: retried after 1 s and 2 s of FakeClock time, no real sleeping."""
    calls: list[str] = []
    r = rig(tmp_path, a_start=failing(calls, "a_start", 2, lambda: ServerError("503")))
    started = time.monotonic()
    assert await r.engine.run("live") == "live"
    assert time.monotonic() - started < 1.0
    assert calls.count("a_start") == 3
    assert r.clock.sleeps == [1.0, 2.0]
    assert [e["wait"] for e in r.journal("retry")] == [1.0, 2.0]
    assert r.store.load().next_retry is None


async def test_non_retryable_failure_without_on_error_raises_and_keeps_the_state(
        tmp_path: Path) -> None:
    """A 400-like InputError on start: one attempt, state stays rtmp, last_error recorded."""
    calls: list[str] = []
    r = rig(tmp_path, a_start=failing(calls, "a_start", 9, lambda: InputError("bad ticker")))
    with pytest.raises(InputError, match="bad ticker"):
        await r.engine.run("live")
    assert calls == ["a_start"]
    saved = r.store.load()
    assert saved.state == "rtmp"
    assert saved.last_error is not None
    assert (saved.last_error.kind, saved.last_error.transition) == ("input", "start")
    assert r.journal("failure")[-1]["reason"] == "not retryable"


async def test_failure_for_good_follows_the_on_error_edge_then_drives_on(
        tmp_path: Path) -> None:
    """encode fails both attempts -> on_error recover -> rtmp -> start/encode again -> live."""
    calls: list[str] = []
    r = rig(tmp_path, a_encode=failing(calls, "a_encode", 2,
                                       lambda: ProcessExitedError("ffmpeg", 1, "I/O error")))
    assert await r.engine.run("live") == "live"
    assert r.path_taken() == [*FORWARD[:3], ("recover", "started", "rtmp"),
                              ("start", "rtmp", "started"), *FORWARD[3:]]
    (edge,) = r.journal("on_error")
    assert (edge["transition"], edge["dest"], edge["kind"]) == ("encode", "recover", "process")
    assert r.clock.sleeps == [0.5]  # one backoff between the two encode attempts
    assert len(r.store.load().recoveries) == 1


@pytest.mark.parametrize("budget", [1, 2])
async def test_recovery_budget_fires_stop_and_ends_with_too_many_recoveries(
        tmp_path: Path, budget: int) -> None:
    """encode never works: after recover.max recoveries (from --set) stop runs, then the error."""
    calls: list[str] = []
    r = rig(tmp_path, overrides=[f"recover.max={budget}"],
            a_encode=failing(calls, "a_encode", 99, lambda: ProcessExitedError("ffmpeg", 1)))
    with pytest.raises(TooManyRecoveries, match=f"recover.max is {budget}"):
        await r.engine.run("live")
    assert [t for t, _, _ in r.path_taken()].count("recover") == budget
    assert r.path_taken()[-1] == ("stop", "started", "stopped")
    assert r.calls[-2:] == ["a_stop_stream", "a_cleanup"]
    saved = r.store.load()
    assert saved.state == "stopped" and saved.last_error is not None
    assert saved.last_error.kind == "too_many_recoveries"


async def test_a_hang_is_cut_by_the_transition_timeout_and_caught_by_on_error(
        tmp_path: Path) -> None:
    """confirm hangs once: its real 200ms total timeout fires, on_error recovers, then live."""
    hung: list[int] = []

    async def confirm(ctx: ActionContext) -> str | None:
        if not hung:
            hung.append(1)
            await asyncio.Event().wait()
        return None

    r = rig(tmp_path, confirm_timeout="200ms", a_confirm=confirm)
    started = time.monotonic()
    assert await r.engine.run("live") == "live"
    assert time.monotonic() - started < 3.0
    failure = next(e for e in r.journal("failure") if e["transition"] == "confirm")
    assert failure["kind"] == "timeout" and failure["reason"] == "out of total time"
    assert ("recover", "encoding", "rtmp") in r.path_taken()
    assert r.store.load().last_error.kind == GuardTimeout.kind  # type: ignore[union-attr]


async def test_stop_request_cancels_the_activity_and_fires_stop(tmp_path: Path) -> None:
    """While live, a stop request cancels the activity and runs stop: state stopped, no error."""
    running, cancelled = asyncio.Event(), asyncio.Event()

    async def live_act(ctx: ActionContext) -> str | None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return None

    r = rig(tmp_path, live_act=live_act)
    task = asyncio.create_task(r.engine.run("live", stay=True))
    await asyncio.wait_for(running.wait(), 5)
    r.ctx.stop_requested.set()
    assert await asyncio.wait_for(task, 5) == "stopped"
    assert cancelled.is_set()
    assert r.path_taken()[-1] == ("stop", "live", "stopped")
    assert r.journal("stop.requested")[0]["source"] == "live"


async def test_stop_request_where_stop_is_not_allowed_is_interrupted(tmp_path: Path) -> None:
    """A stop request while verifying (no stream yet): state persisted, Interrupted, exit 130."""
    waiting = asyncio.Event()

    async def verify(ctx: ActionContext) -> str | None:
        waiting.set()
        await asyncio.Event().wait()
        return None

    r = rig(tmp_path, a_verify=verify)
    task = asyncio.create_task(r.engine.run("live"))
    await asyncio.wait_for(waiting.wait(), 5)
    r.ctx.stop_requested.set()
    with pytest.raises(Interrupted) as info:
        await asyncio.wait_for(task, 5)
    assert info.value.exit_code == ExitCode.INTERRUPTED
    assert r.store.load().state == "unverified"
    assert r.journal("failure")[-1]["kind"] == "cancelled"


async def test_stop_runs_every_action_even_if_one_fails(tmp_path: Path) -> None:
    """stop (run_all): stream/stop failing does not skip the cleanup action."""
    calls: list[str] = []
    r = rig(tmp_path, state="live",
            a_stop_stream=failing(calls, "a_stop_stream", 9, lambda: InputError("no session")))
    with pytest.raises(InputError):
        await r.engine.fire("stop")
    assert calls == ["a_stop_stream"] and r.calls == ["a_cleanup"]
    assert r.engine.state == "live"


async def test_activity_trigger_is_fired_then_the_engine_drives_back_to_the_target(
        tmp_path: Path) -> None:
    """The activity asks for recover once: recover, back to live, activity again, then stop."""
    answers = ["recover", "stop"]

    async def live_act(ctx: ActionContext) -> str | None:
        return answers.pop(0)

    r = rig(tmp_path, live_act=live_act)
    assert await r.engine.run("live", stay=True) == "stopped"
    assert r.path_taken() == [*FORWARD, ("recover", "live", "rtmp"), *FORWARD[2:],
                              ("stop", "live", "stopped")]
    assert [e["dest"] for e in r.journal("activity.end")] == ["recover", "stop"]


async def test_activity_failure_fires_the_state_on_error(tmp_path: Path) -> None:
    """The live activity raising a 5xx follows the state's on_error (recover)."""
    answers: list[str] = []

    async def live_act(ctx: ActionContext) -> str | None:
        answers.append("x")
        if len(answers) == 1:
            raise ServerError("chat endpoint down")
        return "stop"

    r = rig(tmp_path, live_act=live_act)
    assert await r.engine.run("live", stay=True) == "stopped"
    assert ("recover", "live", "rtmp") in r.path_taken()
    assert r.journal("activity.error")[0]["kind"] == "server"


async def test_reconcile_may_move_the_state_and_ask_for_a_trigger(tmp_path: Path) -> None:
    """reconcile says 'we were live, ffmpeg is gone': move to live, fire recover, drive on."""

    async def reconcile(ctx: ActionContext) -> str | None:
        ctx.state.state = "live"
        return "recover"

    r = rig(tmp_path, reconcile="a_reconcile", a_reconcile=reconcile)
    assert await r.engine.run("live") == "live"
    (rec,) = r.journal("reconcile")
    assert (rec["source"], rec["dest"]) == ("unregistered", "live")
    assert r.path_taken()[0] == ("recover", "live", "rtmp")
    assert "a_register" not in r.calls


async def test_persisted_state_unknown_to_the_definition_is_a_clear_error(
        tmp_path: Path) -> None:
    """A state.json from another machine is refused with the fix, not a KeyError."""
    with pytest.raises(StateError, match="does not declare"):
        rig(tmp_path, state="orbit")


async def test_the_machine_extends_transitions_by_subclassing_not_patching(
        tmp_path: Path) -> None:
    """AsyncMachine subclass with transition_cls=GuardedTransition; the library stays intact."""
    r = rig(tmp_path)
    assert isinstance(r.engine.machine, AsyncMachine)
    assert issubclass(GuardedTransition, AsyncTransition)
    kinds = {type(t) for e in r.engine.machine.events.values()
             for ts in e.transitions.values() for t in ts}
    assert kinds == {GuardedTransition}
    assert AsyncTransition.execute.__module__ == "transitions.extensions.asyncio"
    graph = build_machine(r.definition, Model(), "encoding", graph="mermaid")
    assert isinstance(graph, FsmGraphMachine)


async def test_error_needing_a_human_stops_instead_of_taking_the_recover_edge(
        tmp_path: Path) -> None:
    """A missing ffmpeg in encode (on_error: recover) is not retried or recovered from: the
    stream is stopped once and the one-line fix is raised (no recover/start loop)."""
    calls: list[str] = []
    r = rig(tmp_path, a_encode=failing(calls, "a_encode", 9,
                                       lambda: MissingBinaryError("ffmpeg", "ffmpeg")))
    with pytest.raises(MissingBinaryError, match="apt-get install ffmpeg"):
        await r.engine.run("live")
    assert calls == ["a_encode"]
    assert r.path_taken() == [*FORWARD[:3], ("stop", "started", "stopped")]
    assert not r.journal("on_error")
    assert r.journal("failure")[-1]["reason"] == "needs a human"
