"""`confirm_live`: poll `stream/status` until the platform says `is_live`.

The first poll is immediate, then one every `live.poll`, for at most
`live.limit`; then `NotLiveError` (not retried: the transition's on_error
recovers with a fresh key). If our ffmpeg exits meanwhile there is nothing
to wait for: `ProcessExitedError` at once. Transient API errors are logged
and polled through until the limit.
"""

from __future__ import annotations

from ..context import ActionContext
from ..encoder import ENCODER_PROC
from ..errors import ApiError, NotLiveError, ProcessExitedError
from ..live.watchdog import record_status
from ..redact import redact
from . import action


@action("confirm_live")
async def confirm_live(ctx: ActionContext) -> str | None:
    s = ctx.settings.live
    started = ctx.clock.monotonic()
    polls = 0
    while True:
        polls += 1
        try:
            status = await ctx.api.stream_status()
        except ApiError as exc:
            if not exc.retryable:
                raise
            ctx.emit("confirm.poll_failed", error=redact(str(exc)))
        else:
            record_status(ctx, status)
            if status.is_live:
                ctx.state.stream.live_at = ctx.clock.now()
                ctx.save()
                ctx.emit("live.confirmed", polls=polls,
                         seconds=round(ctx.clock.monotonic() - started, 3),
                         viewers=status.viewers)
                return None
        encoder = ctx.procs.get(ENCODER_PROC)
        if encoder is not None and not encoder.alive:
            code = await encoder.wait()
            raise ProcessExitedError(ENCODER_PROC, code,
                                     encoder.last_line() or "while waiting for the platform")
        remaining = s.limit - (ctx.clock.monotonic() - started)
        if remaining <= 0:
            raise NotLiveError(
                f"the platform did not report the stream live within {s.limit:g}s "
                f"({polls} polls of stream/status)",
                hint="check the ingest URL and the encoder log; raise live.limit if it is slow",
            )
        await ctx.clock.sleep(min(s.poll, remaining))
