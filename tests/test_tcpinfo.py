"""retake_fsm.tcpinfo: the kernel's view of whether a peer still takes our data (real sockets)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from retake_fsm.tcpinfo import SendQueue, SendStall, connections, send_queue, send_queues


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback TCP connection whose receiving side has a tiny buffer and reads only on demand."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    server.close()
    client.setblocking(False)
    try:
        yield client, peer
    finally:
        client.close()
        peer.close()


def _fill(client: socket.socket, seconds: float = 2.0) -> int:
    """Write until the kernel takes no more (the peer is not reading)."""
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += client.send(b"x" * 65536)
        except BlockingIOError:
            time.sleep(0.01)
    return sent


def test_a_peer_that_does_not_read_leaves_our_data_queued(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """Unread data shows up as queued bytes and a zero window on our established socket."""
    client, _peer = pair
    mine = [c for c in connections(os.getpid()) if c.local == client.getsockname()]
    assert len(mine) == 1 and mine[0].remote == client.getpeername()
    assert send_queues(mine) == [SendQueue(queued=0, zero_window=False, retransmitting=False)]
    _fill(client, 1.0)
    queue = send_queue(mine[0])
    assert queue is not None and queue.queued > 0 and queue.zero_window, queue


def test_a_reading_peer_drains_the_queue(pair: tuple[socket.socket, socket.socket]) -> None:
    """Once the peer reads everything, nothing stays queued."""
    client, peer = pair
    mine = [c for c in connections(os.getpid()) if c.local == client.getsockname()]
    assert client.send(b"y" * 1000) == 1000
    got = 0
    while got < 1000:
        got += len(peer.recv(4096))
    deadline = time.monotonic() + 2
    while any(q.queued for q in send_queues(mine)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [q.queued for q in send_queues(mine)] == [0]


def test_a_closed_connection_is_gone(pair: tuple[socket.socket, socket.socket]) -> None:
    """Once our side is closed, the lookup finds nothing (no error)."""
    client, _peer = pair
    mine = [c for c in connections(os.getpid()) if c.local == client.getsockname()]
    client.close()
    assert send_queue(mine[0]) is None and send_queues(mine) == []


def test_a_process_that_is_gone_has_no_sockets() -> None:
    """An exited PID (or one we may not read) yields no connections, not an error."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert connections(pid) == []


def test_send_stall_counts_only_while_nothing_is_taken() -> None:
    """A queue that stays non-empty and never shrinks is a stall; any shrink or drain resets it."""
    stall = SendStall()
    q = lambda n: [SendQueue(queued=n, zero_window=False, retransmitting=False)]  # noqa: E731
    assert stall.update(q(0), 0.0) == 0.0
    assert stall.update(q(500), 1.0) == 0.0  # starts counting here
    assert stall.update(q(500), 2.0) == 1.0
    assert stall.update(q(900), 3.5) == 2.5
    assert stall.update(q(100), 4.0) == 0.0  # the peer acknowledged something
    assert stall.update(q(300), 5.0) == 0.0
    assert stall.update(q(300), 7.0) == 2.0
    stall.restart(7.0)
    assert stall.update(q(400), 8.0) == 1.0
    assert stall.update([], 9.0) == 0.0  # no socket (ffmpeg reconnecting): nothing to judge
