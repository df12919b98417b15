"""Is the ingest still taking our encoder's data? The kernel's view of a process's TCP sockets.

A frozen ingest (it stops reading, or stops acknowledging) makes ffmpeg stall
silently: its writes still land in the socket's send buffer, so at the low
bitrate of a mostly static scene the frame counter keeps moving for minutes
before the buffer fills. The kernel knows at once: the bytes written but not
acknowledged by the peer stop draining, and with a closed receive window its
zero-window probe timer runs.

- `connections(pid)`: the established TCP connections of `pid` (from
  `/proc/<pid>/net/tcp{,6}`, in its own network namespace). That read walks the
  kernel's whole socket table (milliseconds): do it once per process.
- `send_queue(conn)`: that connection's queue now, by an exact sock_diag netlink
  lookup (microseconds; no privilege needed), or None once it is gone.
- `SendStall`: successive samples -> "the peer has taken nothing for N seconds".

Linux only; elsewhere (or when the process is gone) there is nothing to report.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = 1  # TCP_ESTABLISHED
TIMER_RETRANSMIT = 1  # inet_diag_msg.idiag_timer / the `tr` field of /proc/net/tcp
TIMER_ZERO_WINDOW_PROBE = 4
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_SOCKID = "!HH16s16sI8s"  # sport, dport (big-endian), src, dst, if, cookie
_REQ = struct.Struct("=BBBxI" + "48s")  # family, protocol, ext, states, inet_diag_sockid
_MSG = struct.Struct("=BBBB48sIIIII")  # family state timer retrans id expires rq wq uid inode
_NO_COOKIE = b"\xff" * 8


@dataclass(frozen=True)
class Connection:
    """One established TCP connection of a process: enough to look it up again."""

    family: int  # socket.AF_INET or AF_INET6
    local: tuple[str, int]
    remote: tuple[str, int]


@dataclass(frozen=True)
class SendQueue:
    """One connection's send side, as the kernel sees it now."""

    queued: int  # bytes written but not yet acknowledged by the peer
    zero_window: bool  # the peer advertises a zero receive window (it is not reading)
    retransmitting: bool  # unacknowledged data is being retransmitted (the peer is silent)


def _socket_inodes(pid: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _address(field: str, family: int) -> tuple[str, int]:
    """`0100007F:9491` (the kernel's hex, 32-bit words in host order) -> ('127.0.0.1', 38033)."""
    host, port = field.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def connections(pid: int, *, proc: Path = Path("/proc")) -> list[Connection]:
    """The established TCP connections of `pid` (empty if it is gone or has none)."""
    inodes = _socket_inodes(pid, proc)
    if not inodes:
        return []
    out: list[Connection] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = (proc / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[9] not in inodes or int(f[3], 16) != ESTABLISHED:
                continue
            out.append(Connection(family, _address(f[1], family), _address(f[2], family)))
    return out


def _sockid(conn: Connection) -> bytes:
    def packed(host: str) -> bytes:
        return ipaddress.ip_address(host).packed.ljust(16, b"\0")

    return struct.pack(_SOCKID, conn.local[1], conn.remote[1], packed(conn.local[0]),
                       packed(conn.remote[0]), 0, _NO_COOKIE)


def send_queue(conn: Connection) -> SendQueue | None:
    """`conn`'s send queue now (one sock_diag lookup), or None if it is gone or unknowable."""
    body = _REQ.pack(conn.family, socket.IPPROTO_TCP, 0, 1 << ESTABLISHED, _sockid(conn))
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.send(header + body)
            reply = nl.recv(8192)
    except (OSError, AttributeError):  # no netlink here (not Linux), or refused
        return None
    if len(reply) < _NLMSGHDR.size + _MSG.size:
        return None  # NLMSG_ERROR: no such connection (any more)
    _, kind, _, _, _ = _NLMSGHDR.unpack_from(reply)
    if kind != SOCK_DIAG_BY_FAMILY:
        return None
    _, state, timer, _, _, _, _, wqueue, _, _ = _MSG.unpack_from(reply, _NLMSGHDR.size)
    if state != ESTABLISHED:
        return None
    return SendQueue(queued=wqueue, zero_window=timer == TIMER_ZERO_WINDOW_PROBE,
                     retransmitting=timer == TIMER_RETRANSMIT)


def send_queues(conns: list[Connection]) -> list[SendQueue]:
    """The send queues of those of `conns` still established."""
    return [q for q in map(send_queue, conns) if q is not None]


class SendStall:
    """How long the peer has taken none of our data, from samples taken over time.

    The peer is taking data while the queue is empty or shrinks between samples;
    a queue that stays non-empty and never shrinks means nothing is acknowledged
    (a healthy stream drains its queue every round trip). With several sockets,
    the fullest one counts.
    """

    def __init__(self) -> None:
        self._since: float | None = None
        self._last = 0

    def restart(self, now: float) -> None:
        """Count a stall in progress again from `now` (e.g. the platform still says live)."""
        if self._since is not None:
            self._since = now

    def update(self, queues: list[SendQueue], now: float) -> float:
        """Feed one sample taken at `now`; returns for how many seconds nothing was taken."""
        queued = max((q.queued for q in queues), default=0)
        if queued == 0 or queued < self._last:
            self._since = None
        elif self._since is None:
            self._since = now
        self._last = queued
        return 0.0 if self._since is None else now - self._since
