"""`reconcile`: the first action of every `run` (DESIGN.md "Persistence and resume").

1. Every recorded process is adopted when it is alive AND has the recorded
   start time; any other record is dropped (a reused PID is never ours).
2. The platform is asked (`stream/status`) when a stream may be open; errors
   are tolerated (recorded, then decided without the answer).
3. By state:
   - unregistered / unverified / stopped: leftovers of ours are stopped; None
     (the engine goes on from there; `stopped` begins the next stream).
   - rtmp: leftovers of ours are stopped but Xvfb and the scene (reused); a
     fresh key is fetched into `ctx.session` (the old one is never reused); None.
     If that fails, encode finds no key and takes its recover edge.
   - started: "recover" (fresh key, then `stream/start` again, as the platform
     advises after a crash).
   - encoding / live with our ffmpeg alive and the platform live (or not
     answering): adopt it; None (the live loops resume from the persisted chat
     cursor; `encoding` goes on to confirm).
   - encoding / live otherwise: our ffmpeg (if any) is stopped; "recover".
The decision is journaled as `reconcile`.
"""

from __future__ import annotations

from ..api import StreamStatus
from ..context import ActionContext
from ..encoder import ENCODER_PROC
from ..errors import RetakeError
from ..redact import register_secret
from . import action

STREAMING = ("encoding", "live")
KEEP = ("xvfb", "scene")  # reusable across attempts


@action("reconcile")
async def reconcile(ctx: ActionContext) -> str | None:
    state = ctx.state.state
    adopted: list[str] = []
    dropped: list[str] = []
    for name, record in list(ctx.state.processes.items()):
        if ctx.procs.adopt(record) is not None:
            adopted.append(name)
        else:
            ctx.state.processes.pop(name, None)
            dropped.append(name)
    if dropped:
        ctx.save()

    status: StreamStatus | None = None
    platform = "not asked"
    if state in ("started", *STREAMING):
        try:
            status = await ctx.api.stream_status()
            platform = "live" if status.is_live else "not live"
        except RetakeError as exc:
            platform = f"unknown ({exc.kind})"

    ffmpeg = ctx.procs.get(ENCODER_PROC)
    ffmpeg_alive = ffmpeg is not None and ffmpeg.alive
    trigger: str | None = None
    if state in STREAMING and ffmpeg_alive and (status is None or status.is_live):
        decision = "adopt"
    elif state in STREAMING or state == "started":
        await ctx.procs.stop(ENCODER_PROC)
        ctx.session.forget_key()
        decision, trigger = "recover", "recover"
    elif state == "rtmp":
        await _stop_all_but(ctx, KEEP)
        try:
            creds = await ctx.api.rtmp()
        except RetakeError as exc:  # encode will find no key and take the recover edge
            decision = f"no fresh key yet ({exc.kind})"
        else:
            register_secret(creds.key)
            ctx.session.rtmp_url, ctx.session.rtmp_key = creds.url, creds.key
            decision = "fresh key"
    else:
        await ctx.procs.stop_all()
        decision = "continue"
    ctx.emit("reconcile", state=state, decision=decision, trigger=trigger, adopted=adopted,
             dropped=dropped, platform=platform)
    return trigger


async def _stop_all_but(ctx: ActionContext, keep: tuple[str, ...]) -> None:
    for name in list(ctx.state.processes):
        if name not in keep:
            await ctx.procs.stop(name)
