"""`start_encoder`: ffmpeg grabbing our display and publishing to this attempt's RTMP URL.

Succeeds once frames flow (`-progress` frame > 0) and ffmpeg survived
`encoder.start_window`, within `encoder.publish_timeout`. Fails at once with
`ProcessExitedError` (its last output line, redacted) when ffmpeg exits, e.g.
because the ingest refused the key. Like every wait on a real process (see
procs.py), these limits run on real time, so a FakeClock context still gives
ffmpeg its real seconds.
"""

from __future__ import annotations

import asyncio

from ..context import ActionContext
from ..encoder import ENCODER_PROC, build_argv
from ..errors import ProcessExitedError, StallError, StateError
from ..redact import mask, register_secret
from . import action

NAME = ENCODER_PROC
POLL = 0.05


@action("start_encoder")
async def start_encoder(ctx: ActionContext) -> str | None:
    enc = ctx.settings.encoder
    display = ctx.state.display
    if not display:
        raise StateError("no display to grab", hint="start_display must run first")
    key = ctx.session.rtmp_key
    if not (ctx.session.rtmp_url and key):
        raise StateError("no RTMP key in this session", hint="fetch_rtmp must run first")
    register_secret(key)
    ctx.state.stream.key_hint = mask(key)
    progress = ctx.paths.logs_dir / f"{NAME}.progress"
    argv = build_argv(enc, display, ctx.session.publish_url, progress)
    proc = await ctx.procs.start(NAME, argv, stdin=True, progress=progress)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_frame: float | None = None
    while True:
        elapsed = loop.time() - started
        if not proc.alive:
            rc = await proc.wait()
            detail = proc.last_line() or f"see {ctx.paths.logs_dir / (NAME + '.log')}"
            ctx.emit("encoder.exited", pid=proc.pid, returncode=rc, seconds=round(elapsed, 3))
            raise ProcessExitedError(NAME, rc, detail)
        frames = proc.progress.frame if proc.progress else 0
        if frames > 0 and first_frame is None:
            first_frame = elapsed
        if frames > 0 and elapsed >= enc.start_window:
            ctx.emit("encoder.publishing", pid=proc.pid, frame=frames, display=display,
                     first_frame=round(elapsed if first_frame is None else first_frame, 3),
                     seconds=round(elapsed, 3))
            return None
        if elapsed >= enc.publish_timeout:
            await ctx.procs.stop(NAME)
            raise StallError(
                f"ffmpeg sent no frame within {enc.publish_timeout:g}s",
                hint=f"check the ingest and {ctx.paths.logs_dir / (NAME + '.log')}",
            )
        await asyncio.sleep(POLL)
