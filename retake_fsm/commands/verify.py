"""`retake-fsm verify`: the human operator's side of Twitter/X verification.

- no flag: show the exact message to tweet (prepare-verify is asked once; the
  message is kept in the state, or in the inbox while a `run` holds the
  profile) and exit 3: waiting for a human.
- `--tweet-url URL`: refuse placeholders, submit it, report the platform's
  verdict, and leave it in `<state>/inbox/tweet_url` for a waiting `run`.
- `--status`: the platform's verdict (exit 0 verified, 3 not yet).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from ..actions.verify import (
    INBOX_MESSAGE,
    INBOX_TWEET,
    check_tweet_url,
    read_inbox,
    show_instructions,
    submit_tweet,
    write_inbox,
)
from ..api import RetakeClient
from ..clock import SystemClock
from ..context import Console
from ..credentials import load_credentials
from ..errors import ApiError, ConfigError, ExitCode
from ..settings import Paths
from ..store import Store

if TYPE_CHECKING:
    from ..app import App


async def _message(api: RetakeClient, paths: Paths) -> str:
    """The kept message, else prepare-verify once and keep it where the owner can see it."""
    store = Store(paths)
    if store.lock_holder() is not None:  # a run owns state.json: use the inbox
        message = read_inbox(paths, INBOX_MESSAGE) or store.load().verification_message
        if message is None:
            message = await api.prepare_verify()
            write_inbox(paths, INBOX_MESSAGE, message)
        return message
    with store.lock():
        state = store.load()
        if state.verification_message is None:
            state.verification_message = await api.prepare_verify()
            state.verification_asked_at = SystemClock().now()
            store.save(state)
        return state.verification_message


async def _verify(args: argparse.Namespace, app: App) -> int:
    url = check_tweet_url(args.tweet_url) if args.tweet_url is not None else None
    paths = app.paths
    creds = load_credentials(paths)
    if creds is None:
        raise ConfigError(f"no credentials at {paths.credentials_file}",
                          hint="run `retake-fsm register` first, or set RETAKE_ACCESS_TOKEN")
    console = Console()
    async with RetakeClient.from_settings(app.settings, creds) as api:
        if args.status:
            verified = await api.verification_status()
            console.print("verified" if verified else "not verified yet")
            return ExitCode.OK if verified else ExitCode.WAITING_FOR_HUMAN
        if url is None:
            if await api.verification_status():
                console.print("already verified")
                return ExitCode.OK
            show_instructions(console, await _message(api, paths))
            return ExitCode.WAITING_FOR_HUMAN
        try:
            await submit_tweet(api, url)
        except ApiError as exc:
            if exc.retryable:  # the platform is unreachable: a waiting run will try it
                write_inbox(paths, INBOX_TWEET, url)
            raise
    write_inbox(paths, INBOX_TWEET, url)
    console.print("verified: the agent can go live (retake-fsm run)")
    return ExitCode.OK


def main(args: argparse.Namespace, app: App) -> int:
    return asyncio.run(_verify(args, app))
