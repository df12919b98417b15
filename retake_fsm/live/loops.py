"""The live loops in one asyncio TaskGroup: the `live` state's activity.

Each loop is a coroutine function of the context that runs until it has a
verdict: it returns the trigger to fire ("recover" / "stop") or None (nothing
to do; it just ends). The first verdict wins: the group is cancelled, every
other loop torn down (the responder process stopped), and the verdict
returned. A 409 from any loop means "recover". Cancelling `run_live` itself
(the engine stopping) tears the loops down the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from ..engine import RECOVER, STOP
from ..errors import ConflictError, RetakeError
from ..redact import redact
from .chat import ChatSender, Responder, chat_loop, reply_loop
from .responder import make_responder
from .thumbnails import thumbnail_loop
from .watchdog import (
    verdict,
    watch_display,
    watch_encoder,
    watch_ingest,
    watch_platform,
    watch_stall,
    watch_stop,
)

if TYPE_CHECKING:
    from ..context import ActionContext

Loop = Callable[[], Awaitable[str | None]]


class _Verdict(Exception):
    def __init__(self, trigger: str) -> None:
        super().__init__(trigger)
        self.trigger = trigger


def build_loops(ctx: ActionContext, responder: Responder | None = None) -> dict[str, Loop]:
    """Every loop of the live state, by name (tests run any subset through `run_loops`)."""
    responder = responder or make_responder(ctx)
    sender = ChatSender(ctx)
    return {
        "stop": lambda: watch_stop(ctx),
        "encoder": lambda: watch_encoder(ctx),
        "display": lambda: watch_display(ctx),
        "stall": lambda: watch_stall(ctx),
        "ingest": lambda: watch_ingest(ctx),
        "platform": lambda: watch_platform(ctx),
        "chat": lambda: chat_loop(ctx, responder, sender),
        "replies": lambda: reply_loop(ctx, responder, sender),
        "responder": responder.run,
        "thumbnails": lambda: thumbnail_loop(ctx),
    }


async def run_loops(ctx: ActionContext, loops: Mapping[str, Loop]) -> str:
    """Run `loops` together until the first verdict; return it. A RetakeError escapes alone."""
    if ctx.stop_requested.is_set():
        return verdict(ctx, STOP, "stop_requested")

    async def guarded(name: str, loop: Loop) -> None:
        try:
            trigger = await loop()
        except ConflictError as exc:
            trigger = verdict(ctx, RECOVER, "conflict", loop=name, error=redact(str(exc)))
        if trigger is not None:
            raise _Verdict(trigger)

    ctx.emit("live.loops", loops=sorted(loops))
    task = asyncio.current_task()
    cancelling = task.cancelling() if task is not None else 0
    try:
        async with asyncio.TaskGroup() as group:
            for name, loop in loops.items():
                group.create_task(guarded(name, loop), name=f"live.{name}")
    except ExceptionGroup as eg:
        _undo_group_cancel(task, cancelling)
        leaves = list(_leaves(eg))
        for exc in leaves:
            if isinstance(exc, _Verdict):
                return exc.trigger
        for exc in leaves:
            if isinstance(exc, RetakeError):
                raise exc from eg
        raise
    return STOP  # every loop ended without a verdict: nothing keeps us live


def _undo_group_cancel(task: asyncio.Task[object] | None, before: int) -> None:
    """Python 3.11's TaskGroup cancels its parent task when a child fails after the body
    is done (every verdict here) and never uncancels it (fixed in 3.12). The leftover
    cancel request made the next transition in this task (a stop for an error that
    needs a human) end in CancelledError: undo it. A no-op where TaskGroup is fixed."""
    if task is not None and task.cancelling() > before:
        task.uncancel()


def _leaves(eg: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in eg.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def run_live(ctx: ActionContext) -> str:
    """The `live_loops` activity: chat, responder, thumbnails and watchdogs until a verdict."""
    trigger = await run_loops(ctx, build_loops(ctx))
    ctx.save()
    ctx.emit("live.verdict", trigger=trigger)
    return trigger
