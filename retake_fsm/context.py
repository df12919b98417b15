"""What an action receives: everything it may touch, injected (no globals).

An action is `async def fn(ctx: ActionContext) -> str | None`, registered by
name in `retake_fsm.actions`; it returns None, or the name of a trigger the
engine should fire next (how a long-running state activity such as the live
loops asks for `recover` or `stop`).
"""

from __future__ import annotations

import asyncio
import os
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


def _set_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Console:
    """Operator-facing output (stdout) and, on a TTY only, prompts.

    A prompt reads the terminal through the event loop (no thread), so a
    cancelled prompt (Ctrl-C, SIGTERM, `retake-fsm stop`) leaves nothing
    blocked, and a prompt with a timeout lets the caller do other checks
    while the question stays on screen.
    """

    def __init__(self, out: Any = None, interactive: bool | None = None,
                 infd: int | None = None) -> None:
        self.out = out or sys.stdout
        if infd is None:
            try:
                infd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError):
                infd = -1
        self.infd = infd
        if interactive is None:
            interactive = infd >= 0 and os.isatty(infd)
        self.interactive = interactive
        self.lines: list[str] = []
        self._buffer = b""
        self._asked: str | None = None

    def print(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, file=self.out, flush=True)

    async def prompt(self, question: str, *, timeout: float | None = None) -> str | None:
        """The answer typed on the TTY; None for an empty answer, end of input, or
        when not interactive. With `timeout`, TimeoutError if no whole line came in
        time: asking again with the same question keeps waiting without re-asking."""
        if not self.interactive:
            return None
        if question != self._asked:
            self.out.write(question)
            self.out.flush()
            self._asked = question
        if timeout is None:
            line = await self._readline()
        else:
            line = await asyncio.wait_for(self._readline(), timeout)
        self._asked = None
        if line is None:
            self.interactive = False
            return None
        return line.strip() or None

    async def _readline(self) -> str | None:
        loop = asyncio.get_running_loop()
        while b"\n" not in self._buffer:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.infd, _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self.infd)
            chunk = os.read(self.infd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace")


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
