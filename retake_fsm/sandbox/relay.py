"""A small TCP relay in front of nginx-rtmp: the advertised RTMP port is ours.

Why a relay and not nginx alone: the sandbox must know, exactly and at once,
whether media is arriving for a key ("is_live only while media arrives"), and
it must be able to drop one publisher or freeze the ingest without touching
the others. nginx-rtmp offers none of that directly; a relay that forwards the
bytes unchanged can count them per connection, close one connection, or stop
reading from it.

Each relayed connection reaches nginx from its own loopback source address
(127.1.x.y; all of 127/8 is local on Linux), so the `addr` nginx reports in
its `on_publish` callback names the relay connection, and the key the
publisher used is tied to the connection that carries its media.

Freeze: the relay stops reading from a connection. Its small buffers fill, the
kernel's receive window closes, the publisher's send buffer fills, and the
publisher blocks in write(): ffmpeg stalls without exiting. New connections
still work, so a client that recovers can publish again. The listening socket
advertises an internet-sized MSS (1460) and a small receive buffer: with
loopback's 64 KiB segments the publisher's send buffer would grow to megabytes
and a freeze would take a minute to bite; like this it bites in seconds, as it
would against a real ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READ_CHUNK = 16384
STREAM_LIMIT = 8192
RCVBUF = 4096
MSS = 1460  # what a publisher sees on the internet; loopback's 64 KiB grows huge buffers


@dataclass(eq=False)
class RelayConn:
    id: int
    upstream_ip: str
    client: str
    opened_at: float = field(default_factory=time.monotonic)
    rx_bytes: int = 0
    tx_bytes: int = 0
    last_rx: float = 0.0
    closed: bool = False
    # filled when nginx accepts a publish on this connection
    agent: str | None = None  # userDbId
    key_hash: str | None = None
    key_hint: str | None = None
    publishing: bool = False
    live_since: float | None = None
    _running: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._running.set()

    @property
    def frozen(self) -> bool:
        return not self._running.is_set()

    def freeze(self) -> None:
        self._running.clear()

    def unfreeze(self) -> None:
        self._running.set()

    def abort(self) -> None:
        """Close both sides at once (RST): the publisher sees its connection dropped."""
        self.closed = True
        self.publishing = False
        self._running.set()
        for w in self._writers:
            with contextlib.suppress(Exception):
                w.transport.abort()

    def info(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "id": self.id, "client": self.client, "upstream_ip": self.upstream_ip,
            "rx_bytes": self.rx_bytes, "tx_bytes": self.tx_bytes,
            "idle_seconds": round(now - self.last_rx, 3) if self.last_rx else None,
            "publishing": self.publishing, "agent": self.agent, "key": self.key_hint,
            "frozen": self.frozen, "closed": self.closed,
        }


def _source_ips() -> itertools.count[int]:
    return itertools.count(1)


class RtmpRelay:
    """Forward 127.0.0.1:<port> to nginx at 127.0.0.1:<upstream_port>, byte for byte."""

    def __init__(self, upstream_port: int,
                 on_close: Callable[[RelayConn], None] | None = None) -> None:
        self.upstream_port = upstream_port
        self.on_close = on_close
        self.conns: dict[int, RelayConn] = {}
        self._by_ip: dict[str, RelayConn] = {}
        self._recent: dict[str, RelayConn] = {}  # closed lately, for late nginx callbacks
        self._counter = _source_ips()
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port = 0

    def _next_ip(self) -> str:
        while True:
            n = next(self._counter) % (254 * 254)
            ip = f"127.1.{n // 254 + 1}.{n % 254 + 1}"
            if ip not in self._by_ip:
                self._recent.pop(ip, None)
                return ip

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # inherited by accepted
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        sock.bind((host, port))
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=STREAM_LIMIT)
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns.values()):
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def by_ip(self, ip: str, *, closed: bool = False) -> RelayConn | None:
        conn = self._by_ip.get(ip)
        if conn is None and closed:
            conn = self._recent.get(ip)
        return conn

    def publishers(self, agent: str | None = None) -> list[RelayConn]:
        return [c for c in self.conns.values()
                if c.publishing and not c.closed and (agent is None or c.agent == agent)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = self._next_ip()
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port, local_addr=(ip, 0), limit=STREAM_LIMIT)
        except OSError:
            writer.transport.abort()
            return
        conn = RelayConn(id=next(self._ids), upstream_ip=ip, client=f"{peer[0]}:{peer[1]}")
        conn._writers = [writer, up_writer]
        self.conns[conn.id] = conn
        self._by_ip[ip] = conn
        inbound = asyncio.create_task(self._pump(conn, reader, up_writer, inbound=True))
        outbound = asyncio.create_task(self._pump(conn, up_reader, writer, inbound=False))
        try:
            await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (inbound, outbound):
                t.cancel()
            await asyncio.gather(inbound, outbound, return_exceptions=True)
            conn.closed = True
            conn.publishing = False
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self.conns.pop(conn.id, None)
            if self._by_ip.get(ip) is conn:
                del self._by_ip[ip]
            self._recent[ip] = conn
            while len(self._recent) > 64:
                self._recent.pop(next(iter(self._recent)))
            if self.on_close is not None:
                self.on_close(conn)

    @staticmethod
    async def _pump(conn: RelayConn, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, *, inbound: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                if inbound:
                    await conn._running.wait()
                data = await reader.read(READ_CHUNK)
                if not data:
                    return
                if inbound:
                    conn.rx_bytes += len(data)
                    conn.last_rx = time.monotonic()
                else:
                    conn.tx_bytes += len(data)
                writer.write(data)
                await writer.drain()
