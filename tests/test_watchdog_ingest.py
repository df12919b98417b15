"""watch_ingest: a frozen ingest is caught from ffmpeg's TCP send queue, confirmed by the platform,
long before the frame counter of a low-bitrate stream stops (real ffmpeg, real sandbox ingest)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from retake_fsm.clock import SystemClock
from retake_fsm.live import watchdog
from tests.fixtures.live import RigFactory, agent_rig, publish, run_until

pytestmark = pytest.mark.timeout(90)


async def test_frozen_ingest_at_low_bitrate_recovers_from_the_send_queue(
        live_rig: RigFactory, sandbox: Any, sandbox_agent: Any) -> None:
    """Healthy: left alone; frozen: `ingest_stalled` well before `encoder.stall`, ffmpeg alive."""
    rig = await agent_rig(live_rig, sandbox_agent, clock=SystemClock())
    proc = await publish(rig, bitrate="100k")  # like a static scene: minutes to fill the buffers
    loops = {"ingest": lambda: watchdog.watch_ingest(rig.ctx),
             "stall": lambda: watchdog.watch_stall(rig.ctx),
             "encoder": lambda: watchdog.watch_encoder(rig.ctx)}
    healthy_until = time.monotonic() + watchdog.INGEST_STALL + 1.5
    frozen: list[float] = []

    def freeze_later() -> bool:
        if not frozen and time.monotonic() >= healthy_until:
            frozen.append(time.monotonic())
            assert sandbox.freeze(sandbox_agent)
        return False

    verdict = await run_until(rig, loops, freeze_later, timeout=40, what="the ingest verdict")
    assert verdict == "recover"
    assert frozen, "the watchdog fired while the ingest was healthy"
    assert [e.fields["reason"] for e in rig.named("watchdog")] == ["ingest_stalled"]
    event = rig.named("watchdog")[0].fields
    assert event["stuck_for"] >= watchdog.INGEST_STALL and event["queued"] > 0
    assert proc.alive  # stalled, not exited: only the kernel's queue told
    assert rig.ctx.state.stream.is_live is False  # the platform was asked and said not live
