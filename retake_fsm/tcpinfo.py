"""Is the ingest still taking our encoder's data? The kernel's view of a process's TCP sockets.

A frozen ingest (it stops reading, or stops acknowledging) makes ffmpeg stall
silently: its writes still land in the socket's send buffer, so at the low
bitrate of a mostly static scene the frame counter keeps moving for minutes
before the buffer fills. The kernel knows at once: the bytes written but not
acknowledged by the peer (`tx_queue` in `/proc/<pid>/net/tcp`) stop draining,
and with a closed receive window its zero-window probe timer runs.

`send_queues(pid)` reads that for every established TCP socket of `pid` (in
the process's own network namespace); `SendStall` turns successive samples
into "the peer has taken nothing for N seconds". Linux only; elsewhere (or
when the process is gone) there is simply nothing to report.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = "01"
ZERO_WINDOW_PROBE = "04"  # /proc/net/tcp `tr` field: the zero-window probe timer is pending
RETRANSMIT = "01"


@dataclass(frozen=True)
class SendQueue:
    """One established TCP socket of a process, as the kernel sees it now."""

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


def send_queues(pid: int, *, proc: Path = Path("/proc")) -> list[SendQueue]:
    """The established TCP sockets of `pid` (empty if it is gone or has none)."""
    inodes = _socket_inodes(pid, proc)
    if not inodes:
        return []
    out: list[SendQueue] = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[9] not in inodes or f[3] != ESTABLISHED:
                continue
            tx, _, _ = f[4].partition(":")
            timer, _, _ = f[5].partition(":")
            out.append(SendQueue(queued=int(tx, 16), zero_window=timer == ZERO_WINDOW_PROBE,
                                 retransmitting=timer == RETRANSMIT))
    return out


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
