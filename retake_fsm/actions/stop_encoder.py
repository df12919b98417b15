"""`stop_encoder`: ffmpeg q -> SIGINT -> SIGTERM -> SIGKILL, then forget this attempt's key."""

from __future__ import annotations

from ..context import ActionContext
from . import action


@action("stop_encoder")
async def stop_encoder(ctx: ActionContext) -> str | None:
    had = ctx.procs.get("ffmpeg") is not None or "ffmpeg" in ctx.state.processes
    await ctx.procs.stop("ffmpeg")
    ctx.session.forget_key()
    ctx.emit("encoder.stopped", was_running=had)
    return None
