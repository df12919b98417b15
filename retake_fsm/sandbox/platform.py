"""The platform's behaviour, apart from HTTP: liveness, viewers, ingest decisions, faults.

`Platform` ties the store, the fault rules, the call log and the RTMP relay
together. The Starlette app (app.py) only translates requests into calls here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..redact import mask
from .faults import FaultRule, Faults
from .records import CallLog
from .relay import RelayConn, RtmpRelay
from .store import Agent, Author, SessionRec, Store, digest

LIVE_MEDIA_WINDOW = 3.0  # is_live needs media within this many seconds
WATCHER_WINDOW = 10.0  # a viewer page counts as a viewer this long after its last poll
SIMULATED_VIEWERS = 2  # viewers a live stream has with nobody watching the page


@dataclass
class Endpoints:
    host: str = "127.0.0.1"
    api_port: int = 0
    rtmp_port: int = 0
    nginx_port: int = 0

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/api/v1"

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://{self.host}:{self.rtmp_port}/live"


class Platform:
    def __init__(self, data_dir: Path, *, faults: Faults | None = None,
                 tweet_has_code: bool | None = None) -> None:
        self.data_dir = data_dir
        self.store = Store(data_dir)
        self.faults = faults or Faults()
        self.calls = CallLog()
        self.endpoints = Endpoints()
        self.relay: RtmpRelay | None = None
        self.nginx: Any = None  # nginx.Nginx once started
        self.shutting_down = asyncio.Event()
        self._watchers: dict[tuple[str, str], float] = {}
        self._timers: list[asyncio.TimerHandle] = []
        if tweet_has_code is not None:
            self.store.data.tweet_has_code = tweet_has_code
            self.store.save()

    # liveness ----------------------------------------------------------------
    def publisher(self, agent: Agent) -> RelayConn | None:
        """The open connection publishing with the agent's NEWEST key, if any."""
        if self.relay is None or agent.key_hash is None:
            return None
        for conn in self.relay.publishers(agent.user_db_id):
            if conn.key_hash == agent.key_hash:
                return conn
        return None

    def is_live(self, agent: Agent) -> bool:
        conn = self.publisher(agent)
        return (
            agent.session is not None and conn is not None and conn.last_rx > 0
            and time.monotonic() - conn.last_rx <= LIVE_MEDIA_WINDOW
        )

    def uptime(self, agent: Agent) -> int:
        conn = self.publisher(agent)
        if not self.is_live(agent) or conn is None or conn.live_since is None:
            return 0
        return int(time.monotonic() - conn.live_since)

    def note_watcher(self, agent: Agent, viewer: str) -> None:
        self._watchers[(agent.user_db_id, viewer)] = time.monotonic()

    def viewers(self, agent: Agent) -> int:
        if not self.is_live(agent):
            return 0
        now = time.monotonic()
        watching = sum(1 for (uid, _), t in self._watchers.items()
                       if uid == agent.user_db_id and now - t <= WATCHER_WINDOW)
        base = agent.viewers if agent.viewers is not None else SIMULATED_VIEWERS
        n = base + watching
        if agent.session is not None and n > agent.session.peak_viewers:
            agent.session.peak_viewers = n
        return n

    # sessions ----------------------------------------------------------------
    def start_session(self, agent: Agent) -> SessionRec:
        if agent.session is None:
            agent.session = SessionRec(id=self.store.next_object_id(), started_at=time.time())
        self.store.save()
        return agent.session

    def stop_session(self, agent: Agent) -> dict[str, Any]:
        session = agent.session
        assert session is not None
        viewers = max(self.viewers(agent), session.peak_viewers)
        session.ended_at = time.time()
        agent.sessions.append(session)
        agent.session = None
        self.store.save()
        return {"status": "stopped",
                "duration_seconds": int(session.ended_at - session.started_at),
                "viewers": viewers}

    # chat ----------------------------------------------------------------------
    def agent_author(self, agent: Agent) -> Author:
        return Author(walletAddress=agent.wallet, fusername=agent.name,
                      fid=_fid(agent.user_db_id), favatar=agent.image_url)

    def viewer_author(self, name: str) -> Author:
        import base58

        wallet = base58.b58encode(bytes.fromhex(digest("viewer:" + name))).decode()
        return Author(walletAddress=wallet, fusername=name, fid=_fid(name),
                      favatar=f"https://example.invalid/avatars/{_fid(name)}.png")

    # ingest --------------------------------------------------------------------
    def on_publish(self, *, addr: str, app: str, key: str) -> tuple[bool, str, Agent | None]:
        """Decide a publish nginx asks about: (accepted, reason, agent)."""
        agent = self.store.agent_by_key(key)
        if app != "live":
            return False, f"unknown application {app!r}", agent
        if agent is None:
            return False, "unknown or stale stream key", None
        if agent.session is None:
            return False, "no active session: call stream/start first", agent
        conn = self.relay.by_ip(addr) if self.relay else None
        if conn is None:
            return False, "publish through the advertised RTMP port", agent
        conn.agent, conn.key_hash, conn.key_hint = agent.user_db_id, digest(key), mask(key)
        conn.publishing = True
        conn.live_since = time.monotonic()
        for rule in self.faults.ingest_actions():
            self._later(rule.after, self._ingest_rule, rule, agent, conn)
        return True, "accepted", agent

    def on_publish_done(self, *, addr: str) -> RelayConn | None:
        conn = self.relay.by_ip(addr, closed=True) if self.relay else None
        if conn is not None:
            conn.publishing = False
        return conn

    def drop(self, agent: Agent | None = None) -> list[int]:
        """Close the publisher connections (of one agent, or all): ffmpeg sees a reset."""
        if self.relay is None:
            return []
        conns = self.relay.publishers(agent.user_db_id if agent else None)
        for c in conns:
            c.abort()
        return [c.id for c in conns]

    def freeze(self, agent: Agent | None = None, seconds: float | None = None) -> list[int]:
        """Stop reading from existing connections (of one agent's publishers, or all)."""
        if self.relay is None:
            return []
        conns = (self.relay.publishers(agent.user_db_id) if agent
                 else [c for c in self.relay.conns.values() if not c.closed])
        for c in conns:
            c.freeze()
        if seconds:
            self._later(seconds, self._unfreeze, conns)
        return [c.id for c in conns]

    def unfreeze(self) -> list[int]:
        if self.relay is None:
            return []
        conns = [c for c in self.relay.conns.values() if c.frozen]
        for c in conns:
            c.unfreeze()
        return [c.id for c in conns]

    def rotate_key(self, agent: Agent) -> list[int]:
        """Revoke the agent's current key (no new one is handed out) and drop its publisher."""
        agent.key_hash, agent.key_hint = digest("revoked:" + str(time.time())), None
        self.store.save()
        return self.drop(agent)

    def stop_worker(self, seconds: float) -> list[int]:
        if self.nginx is None:
            return []
        pids: list[int] = self.nginx.stop_workers()
        self._later(seconds, self._continue_workers)
        return pids

    def _continue_workers(self) -> None:
        if self.nginx is not None:
            pids = self.nginx.continue_workers()
            self.calls.add("ingest", event="worker_continued", pids=pids)

    def _unfreeze(self, conns: list[RelayConn]) -> None:
        for c in conns:
            c.unfreeze()
        self.calls.add("ingest", event="unfreeze", connections=[c.id for c in conns])

    def _ingest_rule(self, rule: FaultRule, agent: Agent, conn: RelayConn) -> None:
        if conn.closed:
            return
        if rule.ingest == "drop":
            conn.abort()
        elif rule.ingest == "rotate-key":
            self.rotate_key(agent)
        elif rule.ingest == "freeze":
            conn.freeze()
            if rule.for_:
                self._later(rule.for_, self._unfreeze, [conn])
        self.calls.add("ingest", event=f"fault_{rule.ingest}", agent=agent.name,
                       connection=conn.id, key=conn.key_hint)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        handle = asyncio.get_running_loop().call_later(max(0.0, delay), fn, *args)
        self._timers = [h for h in self._timers if not h.cancelled() and h.when() > 0]
        self._timers.append(handle)

    async def close(self) -> None:
        self.shutting_down.set()
        for h in self._timers:
            h.cancel()
        self._timers.clear()


def _fid(seed: str) -> int:
    return int(digest("fid:" + seed)[:6], 16) % 900_000 + 100_000
