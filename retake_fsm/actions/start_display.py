"""`start_display`: our Xvfb on the configured display, reused while it is alive."""

from __future__ import annotations

from ..context import ActionContext
from ..display import ensure_display
from . import action


@action("start_display")
async def start_display(ctx: ActionContext) -> str | None:
    await ensure_display(ctx.procs, ctx.settings.display, ctx.state, ctx.emit)
    return None
