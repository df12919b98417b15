"""The persisted run state (`state.json`): what must survive a crash of anything.

Only the process holding the profile's lock writes it (store.py does the
atomic temp+fsync+replace). Secrets are never part of it: no access token,
no RTMP key (a key is never reused, so it is never worth keeping).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .clock import utcnow

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorRecord(_Model):
    kind: str
    message: str
    at: datetime
    transition: str | None = None


class ProcRecord(_Model):
    """A child we started: PID plus its start time, so a reused PID is never taken for ours."""

    name: str
    pid: int
    create_time: float
    argv: list[str]  # redacted
    log: str | None = None
    progress: str | None = None  # ffmpeg -progress file, when there is one
    started_at: datetime = Field(default_factory=utcnow)


class StreamFacts(_Model):
    started_at: datetime | None = None  # stream/start of this attempt
    live_at: datetime | None = None
    stream_url: str | None = None
    token_name: str | None = None
    token_address: str | None = None
    token_ticker: str | None = None
    key_hint: str | None = None  # masked, e.g. sk_…abcd: which key this attempt used
    is_live: bool | None = None
    viewers: int | None = None
    uptime_seconds: int | None = None
    last_status_at: datetime | None = None


class ChatState(_Model):
    cursor: str | None = None  # newest comment _id processed
    cursor_set: bool = False  # False on a fresh stream: the first poll only sets the cursor
    replied: list[str] = Field(default_factory=list)  # recent comment ids replied to (bounded)
    seen_authors: list[str] = Field(default_factory=list)
    last_activity_at: datetime | None = None  # last comment from anyone (or our keep-alive)
    last_sent_at: datetime | None = None
    greeted_at: datetime | None = None  # opening message of this stream (not repeated on recovery)
    comments_seen: int = 0
    replies_sent: int = 0
    keepalives_sent: int = 0


class RunState(_Model):
    schema_version: int = SCHEMA_VERSION
    profile: str = "default"
    state: str = "unregistered"
    since: datetime = Field(default_factory=utcnow)
    last_transition: str | None = None
    last_error: ErrorRecord | None = None
    next_retry: datetime | None = None
    verification_message: str | None = None
    verification_asked_at: datetime | None = None
    display: str | None = None
    processes: dict[str, ProcRecord] = Field(default_factory=dict)
    stream: StreamFacts = Field(default_factory=StreamFacts)
    chat: ChatState = Field(default_factory=ChatState)
    last_thumbnail_at: datetime | None = None
    thumbnails: int = 0
    recoveries: list[datetime] = Field(default_factory=list)
    streams: int = 0
    final_stats: dict[str, Any] | None = None
    announced_at: datetime | None = None  # operator notice of this stream (once, not per recovery)
    counters: dict[str, int] = Field(default_factory=dict)

    def bump(self, counter: str, n: int = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + n
