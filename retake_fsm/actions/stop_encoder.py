"""`stop_encoder`: ffmpeg q -> SIGINT -> SIGTERM -> SIGKILL, then forget this attempt's key."""

from __future__ import annotations

from ..context import ActionContext
from ..encoder import ENCODER_PROC
from . import action


@action("stop_encoder")
async def stop_encoder(ctx: ActionContext) -> str | None:
    had = ctx.procs.get(ENCODER_PROC) is not None or ENCODER_PROC in ctx.state.processes
    await ctx.procs.stop(ENCODER_PROC)
    ctx.session.forget_key()
    ctx.emit("encoder.stopped", was_running=had)
    return None
