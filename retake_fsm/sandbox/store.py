"""The sandbox platform's persistent data: agents, sessions, comments, switches.

One JSON file (`platform.json`) in the sandbox's data dir, written to a temp
file and `os.replace`d after every change, so a restarted sandbox knows its
agents. Secrets are kept only as SHA-256 digests (the access token, the newest
RTMP key) plus a masked hint; the plain values exist only in the responses that
hand them out.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from pathlib import Path

import base58
from pydantic import BaseModel, ConfigDict, Field

from ..redact import mask

SCHEMA_VERSION = 1
DEFAULT_SKILL_VERSION = "2.1.2"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_access_token() -> str:
    return "rtk_" + secrets.token_hex(24)


def new_stream_key() -> str:
    return "sk_" + secrets.token_hex(16)


def new_solana_address() -> str:
    return str(base58.b58encode(secrets.token_bytes(32)).decode())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenInfo(_Model):
    name: str
    ticker: str
    imageUrl: str
    tokenAddress: str
    tokenType: str


class SessionRec(_Model):
    id: str
    started_at: float
    ended_at: float | None = None
    peak_viewers: int = 0


class Agent(_Model):
    user_db_id: str
    agent_id: str
    name: str
    description: str
    image_url: str
    wallet: str
    ticker: str
    token_hash: str
    token_hint: str
    created_at: float
    verification_code: str | None = None
    verified: bool = False
    tweet_url: str | None = None
    key_hash: str | None = None  # the newest RTMP key; every other key is stale
    key_hint: str | None = None
    keys_issued: int = 0
    token: TokenInfo | None = None
    session: SessionRec | None = None  # the active session, if any
    sessions: list[SessionRec] = Field(default_factory=list)  # ended ones
    thumbnail_url: str | None = None
    thumbnails: int = 0
    viewers: int | None = None  # admin override of the simulated count


class Author(_Model):
    walletAddress: str
    fusername: str
    fid: int
    favatar: str


class CommentRec(_Model):
    id: str
    streamer: str  # userDbId of the stream's owner
    stream_id: str
    text: str
    timestamp: float
    author: Author
    from_agent: bool = False

    def public(self) -> dict[str, object]:
        from datetime import UTC, datetime

        ts = datetime.fromtimestamp(self.timestamp, UTC).isoformat(timespec="milliseconds")
        return {
            "_id": self.id,
            "streamId": self.stream_id,
            "text": self.text,
            "timestamp": ts.replace("+00:00", "Z"),
            "author": self.author.model_dump(),
        }


class PlatformData(_Model):
    schema_version: int = SCHEMA_VERSION
    agents: dict[str, Agent] = Field(default_factory=dict)  # by userDbId
    comments: list[CommentRec] = Field(default_factory=list)  # oldest first
    last_object_id: int = 0
    skill_version: str = DEFAULT_SKILL_VERSION
    tweet_has_code: bool = True


class Store:
    """Platform data plus the lookups the API needs; `save()` after every change."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "platform.json"
        self.thumbs_dir = data_dir / "thumbnails"
        self.thumbs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if self.path.is_file():
            self.data = PlatformData.model_validate_json(self.path.read_text("utf-8"))
        else:
            self.data = PlatformData()

    def save(self) -> None:
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(self.data.model_dump_json())  # no fsync: a test platform, not a bank
            tmp.replace(self.path)

    def reset(self, *, keep_switches: bool = False) -> None:
        old = self.data
        self.data = PlatformData()
        if keep_switches:
            self.data.skill_version = old.skill_version
            self.data.tweet_has_code = old.tweet_has_code
        for f in self.thumbs_dir.glob("*"):
            f.unlink()
        self.save()

    # lookups ---------------------------------------------------------------
    def agent_by_token(self, token: str) -> Agent | None:
        h = digest(token)
        for a in self.data.agents.values():
            if secrets.compare_digest(a.token_hash, h):
                return a
        return None

    def agent_by_key(self, key: str) -> Agent | None:
        """The agent whose NEWEST key this is (stale keys match nobody)."""
        h = digest(key)
        for a in self.data.agents.values():
            if a.key_hash and secrets.compare_digest(a.key_hash, h):
                return a
        return None

    def agent_by_name(self, name: str) -> Agent | None:
        low = name.casefold()
        for a in self.data.agents.values():
            if a.name.casefold() == low:
                return a
        return None

    def find_agent(self, identifier: str) -> Agent | None:
        """By userDbId, agent_id, name or wallet (what `users/streamer/:id` accepts)."""
        if identifier in self.data.agents:
            return self.data.agents[identifier]
        for a in self.data.agents.values():
            if identifier in (a.agent_id, a.wallet):
                return a
        return self.agent_by_name(identifier)

    # mutations -------------------------------------------------------------
    def add_agent(self, *, name: str, description: str, image_url: str, wallet: str,
                  ticker: str) -> tuple[Agent, str]:
        import uuid

        token = new_access_token()
        agent = Agent(
            user_db_id=str(uuid.uuid4()), agent_id=str(uuid.uuid4()), name=name,
            description=description, image_url=image_url, wallet=wallet, ticker=ticker,
            token_hash=digest(token), token_hint=mask(token), created_at=time.time(),
        )
        self.data.agents[agent.user_db_id] = agent
        self.save()
        return agent, token

    def issue_key(self, agent: Agent) -> str:
        key = new_stream_key()
        agent.key_hash, agent.key_hint = digest(key), mask(key)
        agent.keys_issued += 1
        self.save()
        return key

    def next_object_id(self) -> str:
        """Mongo-like 24-hex ids (seconds, then a counter) that always increase."""
        candidate = (int(time.time()) << 64) | 1
        oid = max(candidate, self.data.last_object_id + 1)
        self.data.last_object_id = oid
        return f"{oid:024x}"

    def add_comment(self, streamer: Agent, text: str, author: Author, *,
                    from_agent: bool) -> CommentRec:
        rec = CommentRec(
            id=self.next_object_id(), streamer=streamer.user_db_id,
            stream_id=streamer.session.id if streamer.session else "",
            text=text, timestamp=time.time(), author=author, from_agent=from_agent,
        )
        self.data.comments.append(rec)
        self.save()
        return rec

    def comments_for(self, streamer: Agent, *, limit: int,
                     before_id: str | None = None) -> list[CommentRec]:
        """Newest first, at most `limit`, only ids strictly older than `before_id`."""
        out: list[CommentRec] = []
        for rec in reversed(self.data.comments):
            if rec.streamer != streamer.user_db_id:
                continue
            if before_id is not None and not rec.id < before_id:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        return out


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
