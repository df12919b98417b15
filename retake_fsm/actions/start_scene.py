"""`start_scene`: an optional window on the display so the stream is not blank."""

from __future__ import annotations

from ..context import ActionContext
from ..display import start_scene as _start_scene
from ..errors import StateError
from . import action


@action("start_scene")
async def start_scene(ctx: ActionContext) -> str | None:
    if not ctx.state.display:
        raise StateError("no display to put the scene on", hint="start_display must run first")
    await _start_scene(ctx.procs, ctx.settings.scene, ctx.paths, ctx.state.display,
                       ctx.settings.display.size, ctx.emit)
    return None
