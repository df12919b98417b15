"""Responders: what answers viewers. The built-in one, or a plug-in process speaking JSON lines.

A plug-in (`--responder 'CMD'`, `chat.responder`) is a long-lived process
started through the ProcessRunner. It gets one JSON object per viewer comment
on stdin::

    {"id": "...", "text": "...", "author_name": "...", "author_id": "...", "timestamp": "..."}

and writes JSON lines ``{"reply": "...", "in_reply_to": "<id>"}`` on stdout
(anything else on stdout is logged and ignored). If it exits it is restarted
with backoff (`chat.responder_backoff` doubling up to `chat.responder_backoff_max`)
and the stream goes on; comments that arrive meanwhile wait in a bounded buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ApiError, ConflictError, InputError, RetakeError
from ..redact import redact
from .chat import AUTHORS_KEEP, Incoming, Reply, Responder, _remember

if TYPE_CHECKING:
    from ..context import ActionContext
    from ..procs import Proc

RESPONDER_PROC = "responder"
PENDING_KEEP = 100  # comments buffered while the responder process restarts
TAIL_POLL = 0.05  # real seconds between looks at the responder's output
HELP = "Commands: !help (this), !uptime (how long I've been live), !viewers (who's watching)."


def _duration_words(seconds: int) -> str:
    h, rest = divmod(max(0, seconds), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


class BuiltinResponder:
    """Greets first-time chatters by name; answers `!help`, `!uptime`, `!viewers`."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()

    async def run(self) -> str | None:
        return None  # nothing to supervise

    async def submit(self, item: Incoming) -> None:
        text = await self.answer(item)
        if text:
            await self.replies.put(Reply(text=text, in_reply_to=item.id))

    async def answer(self, item: Incoming) -> str | None:
        chat = self.ctx.state.chat
        who = item.author_name or "friend"
        key = item.author_id or item.author_name
        first_time = bool(key) and key not in chat.seen_authors
        if first_time:
            _remember(chat.seen_authors, key, AUTHORS_KEEP)
        command = item.text.strip().split(maxsplit=1)[0].lower() if item.text.strip() else ""
        answer = {"!help": self._help, "!uptime": self._uptime,
                  "!viewers": self._viewers}.get(command)
        body = await answer() if answer else None
        if first_time:
            greeting = f"Welcome, {who}!"
            return f"{greeting} {body}" if body else f"{greeting} Type !help to see what I can do."
        return f"@{who} {body}" if body else None

    async def _help(self) -> str:
        return HELP

    async def _uptime(self) -> str:
        ctx = self.ctx
        live_at = ctx.state.stream.live_at
        if live_at is None:
            return "Not live yet."
        return f"Live for {_duration_words(int((ctx.clock.now() - live_at).total_seconds()))}."

    async def _viewers(self) -> str:
        ctx = self.ctx
        viewers = ctx.state.stream.viewers
        try:
            status = await ctx.api.stream_status()
            viewers = status.viewers
            ctx.state.stream.viewers = viewers
        except ConflictError:
            raise
        except ApiError as exc:
            ctx.emit("responder.viewers_failed", error=redact(str(exc)))
        if viewers is None:
            return "I can't see the viewer count right now."
        return f"{viewers} watching right now." if viewers != 1 else "1 watching right now."


class ProcessResponder:
    """A plug-in responder process, restarted with backoff whenever it exits.

    The ProcessRunner sends a child's stdout to `<state>/logs/responder.log`;
    replies are read back from there (JSON lines after the start offset; stderr
    noise in the same file is not JSON and is ignored). Responders must flush
    after each line.
    """

    def __init__(self, ctx: ActionContext, command: str) -> None:
        argv = shlex.split(command)
        if not argv:
            raise InputError("chat.responder is empty", field="chat.responder",
                             hint="give a command, e.g. --responder 'python3 bot.py'")
        self.ctx = ctx
        self.argv = argv
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()
        self._pending: deque[Incoming] = deque(maxlen=PENDING_KEEP)
        self._proc: Proc | None = None
        self.starts = 0

    async def submit(self, item: Incoming) -> None:
        self._pending.append(item)
        await self._flush()

    async def _flush(self) -> None:
        proc = self._proc
        while self._pending and proc is not None and proc.stdin is not None and proc.alive:
            line = json.dumps(self._pending[0].to_json(), ensure_ascii=False) + "\n"
            try:
                proc.stdin.write(line.encode())
                await proc.stdin.drain()
            except (OSError, RuntimeError) as exc:  # it is exiting: the next one gets it
                self.ctx.emit("responder.write_failed", error=redact(str(exc)))
                return
            self._pending.popleft()

    async def run(self) -> str | None:
        """Supervise: start, read replies until it exits, wait (backoff), start again."""
        ctx, s = self.ctx, self.ctx.settings.chat
        backoff = s.responder_backoff
        log = ctx.paths.logs_dir / f"{RESPONDER_PROC}.log"
        try:
            while True:
                started = ctx.clock.monotonic()
                offset = log.stat().st_size if log.exists() else 0
                try:
                    self._proc = await ctx.procs.start(RESPONDER_PROC, self.argv, stdin=True)
                except RetakeError as exc:
                    ctx.emit("responder.start_failed", error=redact(str(exc)), retry_in=backoff)
                else:
                    self.starts += 1
                    ctx.emit("responder.started", pid=self._proc.pid, starts=self.starts)
                    await self._flush()
                    code = await self._pump(self._proc, log, offset)
                    ctx.emit("responder.exited", returncode=code, retry_in=backoff)
                if ctx.clock.monotonic() - started > s.responder_backoff_max:
                    backoff = s.responder_backoff  # it ran for a good while: start over gently
                await ctx.clock.sleep(backoff)
                backoff = min(backoff * 2, s.responder_backoff_max)
        finally:
            self._proc = None
            with contextlib.suppress(RetakeError):
                await asyncio.shield(ctx.procs.stop(RESPONDER_PROC))

    async def _pump(self, proc: Proc, log: Path, offset: int) -> int:
        """Turn the JSON lines it writes into replies until it exits; then its exit code."""
        buf = b""
        while True:
            exited = proc.returncode is not None
            data = _read_from(log, offset)
            offset += len(data)
            *lines, buf = (buf + data).split(b"\n")
            for raw in lines:
                reply = self._parse(raw)
                if reply is not None:
                    await self.replies.put(reply)
            if exited:
                if buf:
                    reply = self._parse(buf)
                    if reply is not None:
                        await self.replies.put(reply)
                return await proc.wait()
            # a real file written by a real process: polled in real time, like procs' tails
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), TAIL_POLL)

    def _parse(self, raw: bytes) -> Reply | None:
        text = raw.decode("utf-8", "replace").strip()
        if not text or text.startswith("# "):  # empty, or the runner's own start line
            return None
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("reply"), str):
            self.ctx.emit("responder.bad_line", line=redact(text[:200]))
            return None
        target = obj.get("in_reply_to")
        return Reply(text=obj["reply"], in_reply_to=str(target) if target is not None else None)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def make_responder(ctx: ActionContext) -> Responder:
    command = ctx.settings.chat.responder
    return ProcessResponder(ctx, command) if command else BuiltinResponder(ctx)
