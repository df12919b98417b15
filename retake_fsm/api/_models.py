"""Request and response bodies of the retake.tv agent API, as pydantic models.

Responses ignore fields they do not know (the platform adds fields over time)
but insist on the ones the orchestrator relies on; a 2xx whose body does not
fit becomes a `PayloadError` at the client's edge. Secrets (`access_token`,
the RTMP `key`) are excluded from every repr.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class RegisterRequest(BaseModel):
    """Body of `POST agent/register` (validated by the register action before it is built)."""

    model_config = ConfigDict(extra="forbid")

    agent_name: str
    agent_description: str
    image_url: str
    wallet_address: str
    ticker: str


class RegisterResponse(_Response):
    access_token: str = Field(min_length=1, repr=False)
    agent_id: str
    user_db_id: str = Field(alias="userDbId", min_length=1)
    wallet_address: str = ""
    token_address: str | None = ""
    token_ticker: str | None = ""


class RtmpCredentials(_Response):
    url: str = Field(min_length=1)
    key: str = Field(min_length=1, repr=False)


class TokenInfo(_Response):
    name: str | None = None
    ticker: str | None = None
    image_url: str | None = Field(default=None, alias="imageUrl")
    token_address: str | None = Field(default=None, alias="tokenAddress")
    token_type: str | None = Field(default=None, alias="tokenType")


class StreamStart(_Response):
    success: bool
    token: TokenInfo | None = None


class StreamStatus(_Response):
    is_live: bool
    viewers: int = 0
    uptime_seconds: int = 0
    token_address: str | None = None
    user_db_id: str | None = Field(default=None, alias="userDbId")


class ThumbnailResult(_Response):
    message: str = ""
    thumbnail_url: str | None = None


class StreamStop(_Response):
    status: str
    duration_seconds: int = 0
    viewers: int = 0


class Comment(BaseModel):
    """One chat comment, normalised from either shape the platform has served.

    Shape A: `_id`, `text`, `timestamp`, `author.{walletAddress,fusername,fid,favatar}`.
    Shape B: `chat_event_id`, `text`, `timestamp`, `sender_user_id`, `sender_username`,
    `sender_display_name`, `sender_wallet_address`, ...
    """

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    timestamp: datetime | None = None
    author_id: str | None = None
    author_name: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Comment:
        """Normalise one raw comment; ValueError says what is missing."""
        ident = _first(raw, "_id", "chat_event_id", "id")
        if ident is None:
            raise ValueError("a comment has no `_id` or `chat_event_id`")
        text = _first(raw, "text", "message", "content")
        nested = raw.get("author")
        author: dict[str, Any] = nested if isinstance(nested, dict) else {}
        author_id = _first(author, "walletAddress", "fid") or _first(
            raw, "sender_user_id", "sender_wallet_address"
        )
        author_name = _first(author, "fusername", "username", "name") or _first(
            raw, "sender_username", "sender_display_name"
        )
        return cls(
            id=str(ident),
            text="" if text is None else str(text),
            timestamp=parse_timestamp(raw.get("timestamp", raw.get("created_at"))),
            author_id=None if author_id is None else str(author_id),
            author_name=None if author_name is None else str(author_name),
            raw=raw,
        )


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = obj.get(key)
        if value not in (None, ""):
            return value
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 text, or epoch seconds / milliseconds (number or digits); None if unusable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def _ordered_ids(comments: list[Comment]) -> bool:
    """True when the ids themselves sort by time (numeric ids, MongoDB ObjectIds)."""
    ids = [c.id for c in comments]
    return all(i.isdigit() for i in ids) or all(_OBJECT_ID.match(i) for i in ids)


def _id_sort_key(comment: Comment) -> tuple[int, str]:
    ident = comment.id
    return (len(ident), ident) if ident.isdigit() else (0, ident)


def normalise_comments(body: Any) -> list[Comment]:
    """Both envelopes (a bare list or `{comments: [...]}`), both orders, both shapes.

    Returns the comments OLDEST FIRST: by timestamp when every comment has one,
    else by id when the ids sort by time (numbers, ObjectIds), else as served.
    """
    items = body.get("comments") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError("expected a list of comments or an object with `comments: [...]`")
    comments: list[Comment] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"comments[{n}] is {type(item).__name__}, not an object")
        try:
            comments.append(Comment.from_raw(item))
        except ValueError as exc:
            raise ValueError(f"comments[{n}]: {exc}") from None
    if comments and all(c.timestamp is not None for c in comments):
        return sorted(comments, key=lambda c: (c.timestamp or _EPOCH, _id_sort_key(c)))
    if _ordered_ids(comments):
        return sorted(comments, key=_id_sort_key)
    return comments
