"""`POST agent/rtmp`: a fresh ingest URL and key for this attempt (a key is never reused).

The key lives only in `ctx.session` (memory); the state keeps a masked hint.
"""

from __future__ import annotations

from ..context import ActionContext
from ..redact import mask, register_secret
from . import action


@action("fetch_rtmp")
async def fetch_rtmp(ctx: ActionContext) -> str | None:
    creds = await ctx.api.rtmp()
    register_secret(creds.key)
    ctx.session.rtmp_url, ctx.session.rtmp_key = creds.url, creds.key
    ctx.state.stream.key_hint = mask(creds.key)
    ctx.emit("rtmp.fetched", url=creds.url, key_hint=ctx.state.stream.key_hint)
    return None
