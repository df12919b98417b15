"""`retake-fsm chat send TEXT` and `retake-fsm chat tail [-n N] [--no-follow]`.

Both talk to the platform directly with the profile's credentials (no running
`run` needed). `tail` prints `HH:MM:SS name: text` (local time), the last N
first, then new comments as they arrive, polling every `chat.poll`.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from ..api import Comment, RetakeClient
from ..clock import Clock, SystemClock
from ..credentials import Credentials, load_credentials
from ..errors import ApiError, AuthError, ConfigError, ExitCode, InputError
from ..live.chat import take_new
from ..redact import redact
from ..state import ChatState

if TYPE_CHECKING:
    from ..app import App

MAX_TAIL = 100  # the platform's page limit


def _credentials(app: App) -> Credentials:
    creds = load_credentials(app.paths)
    if creds is None:
        raise ConfigError(f"no credentials at {app.paths.credentials_file}",
                          hint="run `retake-fsm register` first, or set RETAKE_CREDENTIALS")
    return creds


async def _user_db_id(api: RetakeClient, creds: Credentials) -> str:
    if creds.userDbId:
        return creds.userDbId
    uid = (await api.stream_status()).user_db_id
    if not uid:
        raise ConfigError("credentials have no userDbId and the platform did not say it",
                          hint="re-register, or add userDbId to credentials.json")
    return uid


def format_comment(c: Comment, now: datetime) -> str:
    """`HH:MM:SS name: text` on one line, local time."""
    when = (c.timestamp or now).astimezone().strftime("%H:%M:%S")
    who = c.author_name or c.author_id or "?"
    text = " ".join((c.text or "").split())
    return redact(f"{when} {who}: {text}")


async def send(app: App, text: str) -> int:
    if not text.strip():
        raise InputError("chat send: the message is empty", field="text",
                         hint='e.g. retake-fsm chat send "hello chat"')
    creds = _credentials(app)
    async with RetakeClient.from_settings(app.settings, creds) as api:
        await api.chat_send(text, await _user_db_id(api, creds))
    print(f"sent: {text}", flush=True)
    return ExitCode.OK


async def tail(app: App, n: int, follow: bool, clock: Clock | None = None) -> int:
    if n < 0:
        raise InputError(f"chat tail -n {n}: expected 0 or more", field="-n")
    clock = clock or SystemClock()
    creds = _credentials(app)
    settings = app.settings.chat
    async with RetakeClient.from_settings(app.settings, creds) as api:
        uid = await _user_db_id(api, creds)
        first = await api.comments(uid, limit=max(1, min(n, MAX_TAIL)))
        now = clock.now()
        for c in first[-n:] if n else []:
            print(format_comment(c, now), flush=True)
        cursor = ChatState()
        take_new(cursor, first)  # a fresh cursor: this only marks what is shown
        while follow:
            await clock.sleep(settings.poll)
            try:
                batch = await api.comments(uid, limit=settings.limit)
            except AuthError:
                raise
            except ApiError as exc:
                from loguru import logger

                logger.warning("chat tail: {} (retrying)", exc)
                continue
            now = clock.now()
            for c in take_new(cursor, batch):
                print(format_comment(c, now), flush=True)
    return ExitCode.OK


def main(args: argparse.Namespace, app: App) -> int:
    if args.chat_command == "send":
        return asyncio.run(send(app, args.text))
    return asyncio.run(tail(app, args.n, follow=not args.no_follow))
