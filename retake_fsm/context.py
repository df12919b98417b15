"""What an action receives: everything it may touch, injected (no globals).

An action is `async def fn(ctx: ActionContext) -> str | None`, registered by
name in `retake_fsm.actions`; it returns None, or the name of a trigger the
engine should fire next (how a long-running state activity such as the live
loops asks for `recover` or `stop`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .clock import Clock
from .settings import Paths, Settings
from .state import RunState

if TYPE_CHECKING:
    from .api import RetakeClient
    from .credentials import Credentials
    from .procs import ProcessRunner


class Emit(Protocol):
    def __call__(self, event: str, /, **fields: Any) -> None:
        """Record one event in the journal and the log (secrets redacted by the sink)."""


class Console:
    """Operator-facing output (stdout) and, on a TTY only, prompts."""

    def __init__(self, out: Any = None, interactive: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.lines: list[str] = []

    def print(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, file=self.out, flush=True)

    async def prompt(self, question: str) -> str | None:
        """Ask on a TTY (without blocking the event loop); None when not interactive."""
        if not self.interactive:
            return None
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(None, input, question)
        except EOFError:
            return None
        return answer.strip() or None


@dataclass
class Session:
    """In-memory facts of the current attempt: never persisted (the RTMP key above all)."""

    rtmp_url: str | None = None
    rtmp_key: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def publish_url(self) -> str:
        if not (self.rtmp_url and self.rtmp_key):
            raise RuntimeError("no RTMP credentials in this session: fetch_rtmp must run first")
        return f"{self.rtmp_url.rstrip('/')}/{self.rtmp_key}"

    def forget_key(self) -> None:
        self.rtmp_url = None
        self.rtmp_key = None


@dataclass
class ActionContext:
    settings: Settings
    paths: Paths
    clock: Clock
    state: RunState
    session: Session
    api: RetakeClient
    procs: ProcessRunner
    emit: Emit
    save: Callable[[], None]  # persist `state` now (atomic); only the lock holder has one
    console: Console = field(default_factory=Console)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    credentials: Credentials | None = None
    transition: str | None = None  # the trigger whose actions are running
