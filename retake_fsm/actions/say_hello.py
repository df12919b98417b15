"""`say_hello`: the opening chat message (`chat.opening_message`) to our own userDbId,
once per stream (a recovery does not greet again)."""

from __future__ import annotations

from ..context import ActionContext
from ..live.chat import own_user_id
from . import action


@action("say_hello")
async def say_hello(ctx: ActionContext) -> str | None:
    message = ctx.settings.chat.opening_message
    if ctx.state.chat.greeted_at is not None:  # live again after a recovery: viewers saw it
        ctx.emit("chat.hello_skipped", reason="already greeted this stream")
        return None
    if not message.strip():
        ctx.emit("chat.hello_skipped", reason="chat.opening_message is empty")
        return None
    await ctx.api.chat_send(message, await own_user_id(ctx))
    now = ctx.clock.now()
    ctx.state.chat.last_sent_at = ctx.state.chat.greeted_at = now
    ctx.state.chat.last_activity_at = now  # keep-alive silence is measured from here
    ctx.save()
    ctx.emit("chat.hello", text=message)
    return None
