"""Thumbnails: screenshot the stream's display and upload it, now and every `thumbnail.interval`.

The first one (right after going live) is mandatory: `refresh` raises.
Later ones are best effort: uploads are retried a few times with backoff on
ctx.clock, and a failure is logged, never fatal (a 409 still means recover).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ApiError, ConflictError, RetakeError
from ..redact import redact
from ..screenshot import capture

if TYPE_CHECKING:
    from ..context import ActionContext

async def screenshot(ctx: ActionContext) -> bytes:
    display = ctx.state.display or ctx.settings.display.display
    dest = ctx.paths.state_dir / "thumbnail.png"
    return await capture(ctx.procs, display, dest, tool=ctx.settings.thumbnail.tool)


async def upload(ctx: ActionContext, image: bytes, *, attempts: int = 1) -> str | None:
    """Upload; retryable API errors are tried again (backoff on ctx.clock). Returns the URL."""
    wait = ctx.settings.thumbnail.retry  # doubled after each failed try
    for attempt in range(1, attempts + 1):
        try:
            result = await ctx.api.update_thumbnail(image)
        except ApiError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            ctx.emit("thumbnail.retry", attempt=attempt, wait=wait, error=redact(str(exc)))
            await ctx.clock.sleep(wait)
            wait *= 2
        else:
            return result.thumbnail_url
    raise AssertionError("unreachable")  # pragma: no cover


async def refresh(ctx: ActionContext, *, attempts: int = 1) -> str | None:
    """Screenshot + upload; records it in the state (saved). Raises on failure."""
    image = await screenshot(ctx)
    url = await upload(ctx, image, attempts=attempts)
    ctx.state.last_thumbnail_at = ctx.clock.now()
    ctx.state.thumbnails += 1
    ctx.save()
    ctx.emit("thumbnail.uploaded", count=ctx.state.thumbnails, bytes=len(image), url=url)
    return url


def first_delay(ctx: ActionContext) -> float:
    """Time until the next thumbnail is due, from the last one (survives a resume)."""
    interval = ctx.settings.thumbnail.interval
    last = ctx.state.last_thumbnail_at
    if last is None:
        return 0.0
    age = (ctx.clock.now() - last).total_seconds()
    return min(interval, max(0.0, interval - age))


async def thumbnail_loop(ctx: ActionContext) -> str | None:
    """Every `thumbnail.interval`: refresh with retries; failures are logged, never fatal."""
    delay = first_delay(ctx)
    while True:
        await ctx.clock.sleep(delay)
        delay = ctx.settings.thumbnail.interval
        try:
            await refresh(ctx, attempts=ctx.settings.thumbnail.attempts)
        except ConflictError:
            raise
        except RetakeError as exc:
            ctx.state.bump("thumbnail_failures")
            ctx.emit("thumbnail.failed", error=redact(str(exc)), kind=exc.kind)
