"""Twitter/X verification: the human tweets the platform's message, we hand over the URL.

Shared by `retake-fsm verify` and the machine's `verify` action. The message
comes from `prepare-verify` once and is kept (`state.verification_message`; a
`run` holding the lock also mirrors it to `<state>/inbox/verification_message`
so the `verify` command can show it). The command drops a checked tweet URL in
`<state>/inbox/tweet_url`; a waiting run picks it up. Placeholder URLs are
refused before any request.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ..api import RetakeClient
from ..context import ActionContext, Console
from ..errors import BadRequestError, InputError, VerificationPending
from ..fsutil import write_atomic
from ..settings import Paths
from . import action

INBOX_MESSAGE = "verification_message"
INBOX_TWEET = "tweet_url"

_TWEET = re.compile(
    r"^https://(?:www\.|mobile\.)?(?:twitter\.com|x\.com)/"
    r"(?P<user>[A-Za-z0-9_]{1,15}|i/web|i)/status/(?P<id>\d+)/?(?:[?#].*)?$"
)
_PLACEHOLDER_USERS = {"username", "user", "example", "yourname", "your_name", "yourusername",
                      "your_username", "handle", "yourhandle", "you", "me", "name", "someone",
                      "foo", "bar", "test", "twitter", "x"}
_MIN_ID_DIGITS = 15  # status ids are snowflakes (18-19 digits); shorter ones are made up
_EXAMPLE = "https://x.com/<user>/status/<digits>"


def tweet_url_problem(url: str) -> str | None:
    """Why `url` is not a real tweet URL (placeholders included), or None."""
    m = _TWEET.match(url)
    if m is None:
        if "..." in url or "…" in url or "<" in url:
            return "is a placeholder"
        return f"is not a twitter.com / x.com status URL ({_EXAMPLE})"
    user, ident = m.group("user"), m.group("id")
    if user.lower() in _PLACEHOLDER_USERS or "example" in user.lower():
        return f"has the placeholder user {user!r}"
    if len(ident) < _MIN_ID_DIGITS or "1234567890".startswith(ident[:9]) or len(set(ident)) == 1:
        return f"has the placeholder status id {ident!r}"
    return None


def check_tweet_url(url: str) -> str:
    """The URL, stripped, if it is a real tweet URL; else a one-line InputError."""
    url = url.strip()
    problem = tweet_url_problem(url)
    if problem:
        raise InputError(f"tweet URL {url!r} {problem}", field="--tweet-url",
                         hint=f"paste the URL of the tweet the human posted: {_EXAMPLE}")
    return url


def inbox_path(paths: Paths, name: str) -> Path:
    return paths.inbox_dir / name


def read_inbox(paths: Paths, name: str) -> str | None:
    try:
        text = inbox_path(paths, name).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def write_inbox(paths: Paths, name: str, text: str) -> None:
    write_atomic(inbox_path(paths, name), text.strip() + "\n")


def take_inbox(paths: Paths, name: str) -> str | None:
    """Read and remove an inbox file (each URL is acted on once)."""
    text = read_inbox(paths, name)
    with contextlib.suppress(OSError):
        inbox_path(paths, name).unlink()
    return text


async def submit_tweet(api: RetakeClient, url: str) -> None:
    """`POST agent/verify`; the platform's refusal is a BadRequestError with its reason."""
    if not await api.verify(url):
        raise BadRequestError(
            "agent/verify: the platform did not verify the tweet", field="tweet_url",
            endpoint="agent/verify",
            hint="the tweet must contain the exact verification message; fix it and retry",
        )


def instructions(message: str) -> list[str]:
    """What the operator reads: the exact text to tweet, on its own line, and what next."""
    return [
        "Verification: the human operator must post this exact text as a tweet on X/Twitter:",
        "",
        message,
        "",
        f"then hand back the tweet's URL: retake-fsm verify --tweet-url {_EXAMPLE}",
    ]


def show_instructions(console: Console, message: str) -> None:
    for line in instructions(message):
        console.print(line)


def _finish(ctx: ActionContext, how: str) -> None:
    ctx.state.verification_message = None
    for name in (INBOX_MESSAGE, INBOX_TWEET):
        with contextlib.suppress(OSError):
            inbox_path(ctx.paths, name).unlink()
    ctx.save()
    ctx.emit("verify.verified", how=how)


async def _message(ctx: ActionContext) -> str:
    """The message to tweet: kept from an earlier ask, else prepare-verify (once)."""
    message = ctx.state.verification_message or read_inbox(ctx.paths, INBOX_MESSAGE)
    if message is None:
        message = await ctx.api.prepare_verify()
        ctx.state.verification_asked_at = ctx.clock.now()
        ctx.emit("verify.prepared")
    if ctx.state.verification_message != message:
        ctx.state.verification_message = message
        ctx.save()
    if read_inbox(ctx.paths, INBOX_MESSAGE) != message:
        write_inbox(ctx.paths, INBOX_MESSAGE, message)
    return message


async def _try_url(ctx: ActionContext, url: str) -> bool:
    """True once verified with `url`; a bad URL or the platform's refusal is reported."""
    try:
        url = check_tweet_url(url)
    except InputError as exc:
        ctx.console.print(f"not used: {exc}")
        return False
    if await ctx.api.verification_status():  # `retake-fsm verify` may have done it already
        return True
    try:
        await submit_tweet(ctx.api, url)
    except BadRequestError as exc:
        ctx.console.print(f"not verified: {exc}")
        ctx.emit("verify.refused", reason=exc.message)
        return False
    return True


PROMPT = "Tweet URL (or Enter to wait for `retake-fsm verify --tweet-url`): "


async def _wait_for_human(ctx: ActionContext, message: str) -> str:
    """Wait for a tweet URL (TTY prompt or inbox) or the platform's yes, at most verify.wait."""
    cfg, clock = ctx.settings.verify, ctx.clock
    start = clock.monotonic()
    deadline, next_status = start + cfg.wait, start + cfg.status_poll
    interactive = ctx.console.interactive
    while True:
        url = take_inbox(ctx.paths, INBOX_TWEET)
        if url is None and interactive:
            try:  # the question stays on screen; the inbox and platform are checked meanwhile
                url = await ctx.console.prompt(PROMPT, timeout=cfg.poll)
            except TimeoutError:
                url = None
            else:
                if url is None:
                    interactive = False
                    ctx.console.print("waiting for `retake-fsm verify --tweet-url URL` ...")
        if url is not None and await _try_url(ctx, url):
            return "tweet_url"
        now = clock.monotonic()
        if now >= next_status or now >= deadline:
            if await ctx.api.verification_status():
                return "platform"
            next_status = now + cfg.status_poll
        if now >= deadline:
            ctx.emit("verify.pending", waited=now - start)
            raise VerificationPending(
                f"verification pending: the human must tweet exactly {message!r}",
                hint="then run `retake-fsm verify --tweet-url URL` and `retake-fsm run` again",
            )
        if not interactive:
            await clock.sleep(min(cfg.poll, deadline - now))


@action("verify")
async def verify(ctx: ActionContext) -> str | None:
    """Verified already -> nothing; else show the message and wait for the human."""
    if await ctx.api.verification_status():
        _finish(ctx, "already")
        return None
    message = await _message(ctx)
    show_instructions(ctx.console, message)
    ctx.emit("verify.waiting", wait=ctx.settings.verify.wait)
    _finish(ctx, await _wait_for_human(ctx, message))
    return None
