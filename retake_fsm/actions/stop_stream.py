"""`stop_stream`: the stream ends, whatever else fails.

ffmpeg first (stop publishing), then `stream/stop` if a session was started
(attempted even when the API is down: the error is caught, recorded and
reported), then every other process of ours (scene, Xvfb). The final stats are
printed for the operator and stored in `state.final_stats`. It never raises for
an API failure, so the machine always reaches `stopped`.
"""

from __future__ import annotations

from typing import Any

from ..context import ActionContext
from ..encoder import ENCODER_PROC
from ..errors import ProcessError, RetakeError
from ..redact import redact
from ..state import ErrorRecord
from . import action


@action("stop_stream")
async def stop_stream(ctx: ActionContext) -> str | None:
    problems: list[str] = []
    try:
        await ctx.procs.stop(ENCODER_PROC)
    except ProcessError as exc:
        problems.append(f"ffmpeg: {exc}")
    ctx.session.forget_key()

    stats: dict[str, Any] = {"stopped_at": ctx.clock.now().isoformat()}
    started_at = ctx.state.stream.started_at
    if started_at is not None:
        stats["started_at"] = started_at.isoformat()
        try:
            result = await ctx.api.stream_stop()
        except RetakeError as exc:
            problems.append(f"stream/stop: {exc}")
            ctx.state.last_error = ErrorRecord(kind=exc.kind, message=redact(str(exc)),
                                               at=ctx.clock.now(), transition=ctx.transition)
            ctx.emit("stream.stop_failed", kind=exc.kind, error=str(exc))
        else:
            stats.update(status=result.status, duration_seconds=result.duration_seconds,
                         viewers=result.viewers)
            ctx.emit("stream.stopped", status=result.status,
                     duration_seconds=result.duration_seconds, viewers=result.viewers)
        ctx.state.stream.started_at = None
    ctx.state.stream.is_live = False

    try:
        await ctx.procs.stop_all()
    except ProcessError as exc:
        problems.append(str(exc))

    chat = ctx.state.chat
    stats.update(
        comments_seen=chat.comments_seen, replies_sent=chat.replies_sent,
        keepalives_sent=chat.keepalives_sent, thumbnails=ctx.state.thumbnails,
        recoveries=len(ctx.state.recoveries), streams=ctx.state.streams,
        processes_left=sorted(ctx.state.processes),
    )
    if problems:
        stats["problems"] = [redact(p) for p in problems]
    ctx.state.final_stats = stats
    ctx.save()
    ctx.emit("final_stats", **stats)
    ctx.console.print(_summary(stats))
    return None


def _summary(stats: dict[str, Any]) -> str:
    parts = ["stream stopped"]
    if "duration_seconds" in stats:
        parts.append(f"{stats['duration_seconds']}s on air, {stats['viewers']} viewers")
    elif "started_at" not in stats:
        parts.append("no session was open")
    parts.append(f"{stats['comments_seen']} comments, {stats['replies_sent']} replies, "
                 f"{stats['thumbnails']} thumbnails, {stats['recoveries']} recoveries")
    line = "; ".join(parts)
    for problem in stats.get("problems", []):
        line += f"\n  warning: {problem}"
    return line
