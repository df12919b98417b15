"""`notify_operator`: tell the human we are live (stream URL, viewers, three ideas, the
message to share) and hand the same facts to `notify.command` as JSON, if set. Once per
stream: after a recovery it prints one line instead."""

from __future__ import annotations

from ..context import ActionContext
from ..live.notice import build_facts, render, run_notify_command
from . import action


@action("notify_operator")
async def notify_operator(ctx: ActionContext) -> str | None:
    facts = build_facts(ctx)
    ctx.state.stream.stream_url = facts["stream_url"]
    if ctx.state.announced_at is not None:  # live again after a recovery: one line, no spam
        ctx.save()
        ctx.console.print(f"live again: {facts['stream_url']} "
                          f"(recovery {len(ctx.state.recoveries)} of this stream)")
        ctx.emit("operator.notice", stream_url=facts["stream_url"], viewers=facts["viewers"],
                 again=True)
        return None
    ctx.state.announced_at = ctx.clock.now()
    ctx.save()
    for line in render(facts):
        ctx.console.print(line)
    ctx.emit("operator.notice", stream_url=facts["stream_url"], viewers=facts["viewers"])
    command = ctx.settings.notify.command
    if command:
        await run_notify_command(ctx, command, facts)
    return None
