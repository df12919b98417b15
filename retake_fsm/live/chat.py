"""The chat loop: poll our stream's comments, hand new ones to the responder, never go silent.

Pieces, each testable alone:

- `take_new(chat, comments, live_since)`: moves the persisted cursor over one
  poll's batch and returns the comments not yet processed (on a fresh stream's
  first poll, only those posted after we went live: the backlog is skipped).
- `ChatSender`: sends to our own chat, at most one message per
  `chat.reply_interval`, never twice in reply to the same comment id.
- `chat_loop`: the poll loop (cadence from `poll_interval`), keep-alive included.
- `reply_loop`: drains the responder's replies into the sender.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ApiError, AuthError, ConfigError, ConflictError
from ..redact import redact
from ..state import ChatState

if TYPE_CHECKING:
    from ..api import Comment
    from ..context import ActionContext

REPLIED_KEEP = 500  # comment ids remembered as answered (bounded)
AUTHORS_KEEP = 2000  # chatters remembered as greeted (bounded)


@dataclass(frozen=True)
class Incoming:
    """One viewer comment as a responder sees it (the JSON line a responder process gets)."""

    id: str
    text: str
    author_name: str
    author_id: str
    timestamp: datetime | None = None

    @classmethod
    def from_comment(cls, c: Comment) -> Incoming:
        return cls(id=c.id, text=c.text or "", author_name=c.author_name or "",
                   author_id=c.author_id or "", timestamp=c.timestamp)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "author_name": self.author_name,
                "author_id": self.author_id,
                "timestamp": self.timestamp.isoformat() if self.timestamp else None}


@dataclass(frozen=True)
class Reply:
    text: str
    in_reply_to: str | None = None


class Responder(Protocol):
    """Turns viewer comments into replies; `run()` is its own task in the live TaskGroup."""

    replies: asyncio.Queue[Reply]

    async def submit(self, item: Incoming) -> None: ...

    async def run(self) -> str | None: ...


async def own_user_id(ctx: ActionContext) -> str:
    """Our `userDbId`: credentials first, else what `stream/status` said (cached in the session)."""
    cached = ctx.session.extras.get("user_db_id")
    if isinstance(cached, str) and cached:
        return cached
    uid = ctx.credentials.userDbId if ctx.credentials is not None else None
    if not uid:
        uid = (await ctx.api.stream_status()).user_db_id
    if not uid:
        raise ConfigError("our userDbId is unknown",
                          hint="re-register, or add userDbId to credentials.json")
    ctx.session.extras["user_db_id"] = uid
    return uid


def is_own(ctx: ActionContext, comment: Comment) -> bool:
    """A comment we wrote ourselves: author is our wallet, our userDbId or our agent name."""
    creds = ctx.credentials
    ids = {ctx.session.extras.get("user_db_id")}
    names = {ctx.settings.agent.name}
    if creds is not None:
        ids |= {creds.wallet_address, creds.userDbId, creds.agent_id}
        names.add(creds.agent_name)
    ids.discard(None)
    ids.discard("")
    lowered = {n.casefold() for n in names if n}
    if comment.author_id and comment.author_id in ids:
        return True
    return comment.author_name is not None and comment.author_name.casefold() in lowered


def take_new(chat: ChatState, comments: list[Comment],
             live_since: datetime | None = None) -> list[Comment]:
    """Comments after the cursor (oldest first); moves the cursor to the newest one.

    On a fresh stream (`cursor_set` False) the first batch sets the cursor and
    the backlog is never answered: only comments stamped after `live_since`
    (when we went live) count as new there. Ids already answered are dropped,
    so a batch seen twice (a restart before the cursor was saved) never yields
    a double reply.
    """
    replied = set(chat.replied)
    if not chat.cursor_set:
        chat.cursor = comments[-1].id if comments else None
        chat.cursor_set = True
        if live_since is None:
            return []
        return [c for c in comments if c.timestamp is not None and c.timestamp > live_since
                and c.id not in replied]
    if not comments:
        return []
    ids = [c.id for c in comments]
    new = comments[ids.index(chat.cursor) + 1:] if chat.cursor in ids else comments
    chat.cursor = ids[-1]
    return [c for c in new if c.id not in replied]


def _remember(items: list[str], value: str, keep: int) -> None:
    items.append(value)
    del items[:-keep]


class ChatSender:
    """The one way the live loops talk: rate-limited, at most one reply per comment."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self._lock = asyncio.Lock()
        last = ctx.state.chat.last_sent_at
        # carry the rate limit over a restart of the loops (or of the process)
        self._last_sent: float | None = None if last is None else (
            ctx.clock.monotonic() - (ctx.clock.now() - last).total_seconds())

    async def send(self, text: str, *, in_reply_to: str | None = None,
                   kind: str = "reply") -> bool:
        """Send `text`; False if dropped (a duplicate reply, or the platform refused it)."""
        ctx, chat = self.ctx, self.ctx.state.chat
        async with self._lock:
            if in_reply_to is not None and in_reply_to in chat.replied:
                ctx.emit("chat.duplicate_dropped", in_reply_to=in_reply_to)
                return False
            if self._last_sent is not None:
                wait = self._last_sent + ctx.settings.chat.reply_interval - ctx.clock.monotonic()
                if wait > 0:
                    await ctx.clock.sleep(wait)
            try:
                await ctx.api.chat_send(text, await own_user_id(ctx))
            except (ConflictError, AuthError):
                raise
            except ApiError as exc:
                ctx.emit("chat.send_failed", kind=kind, error=redact(str(exc)))
                return False
            self._last_sent = ctx.clock.monotonic()
            chat.last_sent_at = ctx.clock.now()
            if in_reply_to is not None:
                _remember(chat.replied, in_reply_to, REPLIED_KEEP)
            if kind == "keepalive":
                chat.keepalives_sent += 1
            elif kind == "reply":
                chat.replies_sent += 1
            ctx.save()
            ctx.emit("chat.sent", kind=kind, in_reply_to=in_reply_to, text=text[:120])
            return True


def poll_interval(ctx: ActionContext, last_viewer_activity: float | None,
                  since: float | None = None) -> float:
    """The platform's guidance, 2-3 s while chat is active and 5-10 s while quiet:
    `chat.poll_active` while a viewer spoke within `chat.quiet_after`, `chat.poll_quiet`
    once nobody did. Before any viewer spoke, `chat.poll` (we just said hello), until
    `chat.quiet_after` has passed `since` (when the loop started); then `chat.poll_quiet`."""
    s = ctx.settings.chat
    now = ctx.clock.monotonic()
    if last_viewer_activity is None:
        quiet = since is not None and now - since >= s.quiet_after
        return s.poll_quiet if quiet else s.poll
    if now - last_viewer_activity >= s.quiet_after:
        return s.poll_quiet
    return s.poll_active


async def keepalive_if_silent(ctx: ActionContext, sender: ChatSender) -> bool:
    """Post the next `chat.keepalive_lines` entry when nobody spoke for `chat.keepalive`."""
    chat, s = ctx.state.chat, ctx.settings.chat
    if not s.keepalive_lines:
        return False
    now = ctx.clock.now()
    if chat.last_activity_at is None:
        chat.last_activity_at = now  # the silence is measured from here
        return False
    if (now - chat.last_activity_at).total_seconds() < s.keepalive:
        return False
    line = s.keepalive_lines[chat.keepalives_sent % len(s.keepalive_lines)]
    chat.last_activity_at = now  # a failed send is not retried before the next silence
    sent = await sender.send(line, kind="keepalive")
    if not sent:
        ctx.save()
    return sent


async def poll_once(ctx: ActionContext, responder: Responder) -> int:
    """One poll: new viewer comments go to the responder; the cursor is saved. Returns how many."""
    try:
        comments = await ctx.api.comments(await own_user_id(ctx), limit=ctx.settings.chat.limit)
    except (ConflictError, AuthError):
        raise
    except ApiError as exc:
        ctx.emit("chat.poll_failed", error=redact(str(exc)))
        return 0
    return await handle_batch(ctx, responder, comments)


async def handle_batch(ctx: ActionContext, responder: Responder, comments: list[Comment]) -> int:
    """Process one batch as returned by the client (oldest first), then persist the cursor."""
    chat = ctx.state.chat
    was_set, before = chat.cursor_set, chat.cursor
    fresh = take_new(chat, comments, ctx.state.stream.live_at)
    if not was_set:
        ctx.emit("chat.cursor_set", cursor=chat.cursor, backlog=len(comments) - len(fresh))
    viewers = 0
    for c in fresh:
        if is_own(ctx, c):
            continue
        viewers += 1
        chat.comments_seen += 1
        chat.last_activity_at = ctx.clock.now()
        await responder.submit(Incoming.from_comment(c))
    if chat.cursor != before or chat.cursor_set != was_set:
        ctx.save()
    if viewers:
        ctx.emit("chat.comments", new=viewers, cursor=chat.cursor)
    return viewers


async def chat_loop(ctx: ActionContext, responder: Responder, sender: ChatSender) -> str | None:
    """Poll forever at the chat cadence; every iteration sleeps on ctx.clock (never spins)."""
    last_viewer: float | None = None
    since = ctx.clock.monotonic()
    while True:
        if await poll_once(ctx, responder):
            last_viewer = ctx.clock.monotonic()
        await keepalive_if_silent(ctx, sender)
        await ctx.clock.sleep(poll_interval(ctx, last_viewer, since))


async def reply_loop(ctx: ActionContext, responder: Responder, sender: ChatSender) -> str | None:
    """Send what the responder answers, in order, through the rate-limited sender."""
    while True:
        reply = await responder.replies.get()
        if reply.text.strip():
            await sender.send(reply.text, in_reply_to=reply.in_reply_to)
