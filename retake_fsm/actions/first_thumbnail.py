"""`first_thumbnail`: the mandatory first thumbnail, right after the platform says live.

Screenshot of our display (`scrot -o`, Pillow as fallback), uploaded with
`update-thumbnail`; any failure fails the action (the guard retries
network/server errors; the transition recovers otherwise).
"""

from __future__ import annotations

from ..context import ActionContext
from ..live.thumbnails import refresh
from . import action


@action("first_thumbnail")
async def first_thumbnail(ctx: ActionContext) -> str | None:
    await refresh(ctx)
    return None
