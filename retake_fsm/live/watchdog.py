"""Watchdogs: each returns the trigger to fire ("recover" / "stop") when the stream is broken.

- `watch_encoder`: ffmpeg exited (awaits `Proc.wait()`: at once, no slow polling).
- `watch_stall`: ffmpeg's frame counter frozen longer than `encoder.stall`.
- `watch_ingest`: the ingest took none of ffmpeg's data for `INGEST_STALL` s (its
  TCP send queue never drained) and the platform confirms it is not live.
- `watch_display`: our Xvfb exited (the display action starts a new one).
- `watch_platform`: `stream/status` says not live `live.not_live_polls` times
  in a row (every `live.status_poll`) while ffmpeg runs.
- `watch_stop`: the operator asked to stop.

Every verdict is journaled as `watchdog` with its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..display import XVFB_NAME
from ..encoder import ENCODER_PROC
from ..engine import RECOVER, STOP
from ..errors import ApiError, AuthError, ConflictError
from ..redact import redact
from ..tcpinfo import Connection, SendStall, connections, send_queues

if TYPE_CHECKING:
    from ..api import StreamStatus
    from ..context import ActionContext

INGEST_STALL = 3.0  # seconds the ingest may take none of ffmpeg's data before we ask the platform
INGEST_SAMPLE = 0.5  # seconds between looks at ffmpeg's connection (a netlink lookup: ~20 µs)
INGEST_FIND = 5.0  # seconds between searches for ffmpeg's connection while it has none (~7 ms)


def verdict(ctx: ActionContext, trigger: str, reason: str, **details: Any) -> str:
    ctx.state.bump(f"watchdog.{reason}")
    ctx.emit("watchdog", reason=reason, trigger=trigger, **details)
    return trigger


async def watch_encoder(ctx: ActionContext) -> str:
    proc = ctx.procs.get(ENCODER_PROC)
    if proc is None:
        return verdict(ctx, RECOVER, "encoder_missing")
    code = await proc.wait()
    return verdict(ctx, RECOVER, "encoder_exit", returncode=code, last=proc.last_line())


async def watch_display(ctx: ActionContext) -> str | None:
    proc = ctx.procs.get(XVFB_NAME)
    if proc is None:
        return None  # not a display of ours: nothing to watch
    code = await proc.wait()
    return verdict(ctx, RECOVER, "display_exit", returncode=code, display=ctx.state.display)


async def watch_stall(ctx: ActionContext) -> str | None:
    """Every stats period, look at the frame counter's age on ctx.clock."""
    stall = ctx.settings.encoder.stall
    period = min(ctx.settings.encoder.stats_period, stall / 4)
    while True:
        await ctx.clock.sleep(period)
        proc = ctx.procs.get(ENCODER_PROC)
        progress = proc.progress if proc is not None else None
        if progress is None:
            continue  # no progress to judge (the exit watch covers a missing ffmpeg)
        frozen = ctx.clock.monotonic() - progress.last_advance
        if frozen > stall:
            return verdict(ctx, RECOVER, "encoder_stall", frozen_for=round(frozen, 1),
                           frame=progress.frame)


async def watch_ingest(ctx: ActionContext) -> str | None:
    """A frozen ingest, caught from the kernel's side of ffmpeg's connection (see tcpinfo).

    ffmpeg's writes keep landing in its socket buffer after the ingest stops taking
    them; at a mostly static scene's few kB/s that buffer takes minutes to fill, so
    the frame counter (`watch_stall`) keeps moving. The send queue stops draining
    at once. After `INGEST_STALL` s of that the platform is asked: not live means
    recover; still live restarts the count (no false alarm on a slow link).
    """
    sending = SendStall()
    pid, looked = 0, float("-inf")
    conns: list[Connection] = []
    while True:
        await ctx.clock.sleep(INGEST_SAMPLE)
        proc = ctx.procs.get(ENCODER_PROC)
        if proc is None or not proc.alive:
            continue  # the exit watch covers a missing ffmpeg
        now = ctx.clock.monotonic()
        if proc.pid != pid or (not conns and now - looked >= INGEST_FIND):
            if proc.pid != pid:
                pid, sending = proc.pid, SendStall()
            conns, looked = connections(pid), now
        queues = send_queues(conns)
        stuck = sending.update(queues, now)
        if stuck < INGEST_STALL:
            continue
        status = await _ask_status(ctx)
        if status is not None and not status.is_live:
            return verdict(ctx, RECOVER, "ingest_stalled", stuck_for=round(stuck, 1),
                           queued=max(q.queued for q in queues),
                           zero_window=any(q.zero_window for q in queues))
        sending.restart(ctx.clock.monotonic())


async def _ask_status(ctx: ActionContext) -> StreamStatus | None:
    """stream/status, recorded; None (logged) when the platform did not answer."""
    try:
        status = await ctx.api.stream_status()
    except (ConflictError, AuthError):
        raise
    except ApiError as exc:
        ctx.emit("watchdog.status_failed", error=redact(str(exc)))
        return None
    record_status(ctx, status)
    return status


def record_status(ctx: ActionContext, status: StreamStatus) -> None:
    """Keep what the platform said (viewers for !viewers, uptime) in the state."""
    facts = ctx.state.stream
    facts.is_live = status.is_live
    facts.viewers = status.viewers
    facts.uptime_seconds = status.uptime_seconds
    facts.last_status_at = ctx.clock.now()
    if status.token_address:
        facts.token_address = status.token_address
    if status.user_db_id:
        ctx.session.extras.setdefault("user_db_id", status.user_db_id)


async def watch_platform(ctx: ActionContext) -> str | None:
    """`stream/status` every `live.status_poll`; not live N times in a row while ffmpeg runs."""
    s = ctx.settings.live
    misses = 0
    while True:
        await ctx.clock.sleep(s.status_poll)
        try:
            status = await ctx.api.stream_status()
        except (ConflictError, AuthError):
            raise
        except ApiError as exc:
            ctx.emit("watchdog.status_failed", error=redact(str(exc)))
            continue
        record_status(ctx, status)
        encoder = ctx.procs.get(ENCODER_PROC)
        if status.is_live or encoder is None or not encoder.alive:
            misses = 0
            continue
        misses += 1
        ctx.emit("watchdog.not_live", polls=misses, of=s.not_live_polls)
        if misses >= s.not_live_polls:
            return verdict(ctx, RECOVER, "platform_not_live", polls=misses)


async def watch_stop(ctx: ActionContext) -> str:
    await ctx.stop_requested.wait()
    return verdict(ctx, STOP, "stop_requested")
