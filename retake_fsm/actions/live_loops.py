"""`live_loops`: the `live` state's activity; chat, responder, thumbnails and watchdogs in
one TaskGroup (retake_fsm.live.loops). Returns the trigger to fire: "recover" or "stop"."""

from __future__ import annotations

from ..context import ActionContext
from ..live.loops import run_live
from . import action


@action("live_loops")
async def live_loops(ctx: ActionContext) -> str | None:
    return await run_live(ctx)
