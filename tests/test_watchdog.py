"""Watchdogs with real processes: ffmpeg exit, a frozen ingest, Xvfb exit, the platform's word,
409s, and the operator's stop; each ends the live loops with the right trigger."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from retake_fsm.clock import SystemClock
from retake_fsm.display import XVFB_NAME, ensure_display
from retake_fsm.live import watchdog
from retake_fsm.live.chat import ChatSender, chat_loop
from retake_fsm.live.loops import run_live
from retake_fsm.live.responder import RESPONDER_PROC, BuiltinResponder
from retake_fsm.procs import same_process
from retake_fsm.settings import DisplaySettings
from retake_fsm.state import ProcRecord
from tests.fixtures.live import (
    RigFactory,
    agent_rig,
    publish,
    run_until,
    start_ffmpeg,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)


def _reasons(rig: Any) -> list[str]:
    return [e.fields["reason"] for e in rig.named("watchdog")]


async def test_encoder_exit_recovers_at_once(live_rig: RigFactory, sandbox: Any,
                                             sandbox_agent: Any) -> None:
    """The ingest drops our real ffmpeg: it exits and the watchdog says recover within moments."""
    rig = await agent_rig(live_rig, sandbox_agent)
    proc = await publish(rig)
    loops = {"encoder": lambda: watchdog.watch_encoder(rig.ctx),
             "stop": lambda: watchdog.watch_stop(rig.ctx)}
    dropped: list[float] = []

    def drop_once() -> bool:
        if not dropped:
            dropped.append(time.monotonic())
            assert sandbox.drop(sandbox_agent)
        return False

    verdict = await run_until(rig, loops, drop_once, what="the encoder-exit verdict")
    latency = time.monotonic() - dropped[0]
    assert verdict == "recover"
    assert _reasons(rig) == ["encoder_exit"]
    assert proc.returncode is not None and proc.returncode != 0
    assert latency < 3.0, latency
    journal = [e for e in rig.store.journal() if e["event"] == "watchdog"]
    assert journal and journal[0]["reason"] == "encoder_exit"


async def test_frozen_ingest_stalls_the_encoder_and_recovers(live_rig: RigFactory, sandbox: Any,
                                                             sandbox_agent: Any) -> None:
    """A frozen ingest blocks ffmpeg without an exit; its frozen frame counter means recover."""
    rig = await agent_rig(live_rig, sandbox_agent, clock=SystemClock(),
                          overrides=["encoder.stall=1s"])
    proc = await publish(rig, bitrate="4M")  # constant 4 Mbit/s: the buffers fill in seconds
    loops = {"stall": lambda: watchdog.watch_stall(rig.ctx),
             "encoder": lambda: watchdog.watch_encoder(rig.ctx)}
    healthy_from = proc.progress.frame
    frozen: list[float] = []

    def freeze_later() -> bool:
        # first prove a healthy encoder is left alone for longer than `encoder.stall`
        if not frozen and proc.progress.frame >= healthy_from + 25:  # 15 fps: > 1.6 s
            frozen.append(time.monotonic())
            assert sandbox.freeze(sandbox_agent)
        return False

    verdict = await run_until(rig, loops, freeze_later, timeout=30, what="the stall verdict")
    assert verdict == "recover"
    assert frozen, "the watchdog fired before the ingest was frozen"
    assert _reasons(rig) == ["encoder_stall"]
    assert proc.alive  # stalled, not exited: only the frozen counter told
    event = rig.named("watchdog")[0]
    assert event.fields["frozen_for"] >= 1.0
    print(f"freeze -> stall verdict: {time.monotonic() - frozen[0]:.2f}s")


async def test_display_exit_recovers(live_rig: RigFactory) -> None:
    """Our Xvfb dies (killed by its PID): the display watchdog says recover."""
    rig = await live_rig()
    display = await ensure_display(rig.ctx.procs, DisplaySettings(display="auto",
                                                                  size="320x240"),
                                   rig.ctx.state, rig.ctx.emit)
    xvfb = rig.ctx.procs.get(XVFB_NAME)
    assert xvfb is not None and rig.ctx.state.display == display

    def kill_once() -> bool:
        if xvfb.alive:
            os.kill(xvfb.pid, signal.SIGKILL)  # our own child, by the PID we started
        return False

    verdict = await run_until(rig, {"display": lambda: watchdog.watch_display(rig.ctx)},
                              kill_once, what="the display verdict")
    assert verdict == "recover"
    assert _reasons(rig) == ["display_exit"]


async def test_platform_not_live_while_encoding_recovers(live_rig: RigFactory, sandbox: Any,
                                                         sandbox_agent: Any) -> None:
    """ffmpeg runs but the platform says not live 3 polls in a row: recover (FakeClock cadence)."""
    rig = await agent_rig(live_rig, sandbox_agent)
    await start_ffmpeg(rig, "null")  # encoding, but nothing reaches the platform
    mark = sandbox.mark()
    verdict = await run_until(rig, {"platform": lambda: watchdog.watch_platform(rig.ctx)},
                              lambda: False, what="the platform verdict")
    assert verdict == "recover"
    assert _reasons(rig) == ["platform_not_live"]
    assert len(sandbox.calls("stream/status", since=mark)) == 3
    assert rig.clock.sleeps == [15.0, 15.0, 15.0]  # type: ignore[attr-defined]
    assert rig.ctx.state.stream.is_live is False


async def test_platform_not_live_without_encoder_is_left_to_the_exit_watch(
        live_rig: RigFactory, sandbox: Any, sandbox_agent: Any) -> None:
    """With no ffmpeg of ours running, 'not live' answers are not counted (no false verdict)."""
    rig = await agent_rig(live_rig, sandbox_agent)
    mark = sandbox.mark()
    got = await run_until(rig, {"platform": lambda: watchdog.watch_platform(rig.ctx)},
                          lambda: len(sandbox.calls("stream/status", since=mark)) >= 6,
                          what="six status polls")
    assert got is True and _reasons(rig) == []


async def test_conflict_from_chat_recovers(live_rig: RigFactory, sandbox: Any,
                                           sandbox_agent: Any) -> None:
    """A 409 (no active session) from the comments call ends the loops with recover."""
    rig = await agent_rig(live_rig, sandbox_agent)
    sandbox.set_faults("path=stream/comments,status=409")
    responder = BuiltinResponder(rig.ctx)
    verdict = await run_until(
        rig, {"chat": lambda: chat_loop(rig.ctx, responder, ChatSender(rig.ctx)),
              "stop": lambda: watchdog.watch_stop(rig.ctx)},
        lambda: False, what="the conflict verdict")
    assert verdict == "recover"
    event = rig.named("watchdog")[0]
    assert event.fields["reason"] == "conflict" and event.fields["loop"] == "chat"


async def test_whole_live_activity_stops_on_request_and_tears_down(
        live_rig: RigFactory, sandbox: Any, sandbox_agent: Any, tmp_path: Any) -> None:
    """run_live with every loop: a stop request returns "stop", the responder process is gone,
    the encoder is left for the stop transition."""
    script = tmp_path / "bot.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    pass\n")
    rig = await agent_rig(live_rig, sandbox_agent, clock=SystemClock(),
                          overrides=[f"chat.responder=python3 {script}", "chat.poll=200ms",
                                     "thumbnail.interval=1h"])
    display = await ensure_display(rig.ctx.procs, DisplaySettings(display="auto",
                                                                  size="320x240"),
                                   rig.ctx.state, rig.ctx.emit)
    assert display
    rig.ctx.state.last_thumbnail_at = rig.clock.now()
    encoder = await publish(rig)
    mark = sandbox.mark()
    started = time.monotonic()

    async def stop_soon() -> ProcRecord:
        record = await wait_for(
            lambda: len(sandbox.calls("stream/comments", since=mark)) >= 2
            and rig.ctx.state.processes.get(RESPONDER_PROC), 10,
            "the responder and two chat polls")
        rig.ctx.stop_requested.set()
        return record  # type: ignore[no-any-return]

    stopper = asyncio.create_task(stop_soon())
    verdict = await asyncio.wait_for(run_live(rig.ctx), 20)
    responder = await stopper
    assert verdict == "stop"
    assert _reasons(rig) == ["stop_requested"]
    assert RESPONDER_PROC not in rig.ctx.state.processes
    assert not same_process(responder.pid, responder.create_time)
    assert encoder.alive  # the loops never stop the encoder; the stop transition does
    assert time.monotonic() - started < 15
