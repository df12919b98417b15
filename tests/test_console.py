"""The operator console reads a real terminal (pty) through the event loop, never a thread."""

from __future__ import annotations

import asyncio
import os
import pty

import pytest

from retake_fsm.context import Console


@pytest.fixture
def tty() -> tuple[int, int]:
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


async def test_prompt_returns_the_typed_line(tty: tuple[int, int]) -> None:
    """A line typed on the terminal is the answer; an empty line is None."""
    master, slave = tty
    console = Console(out=open(os.devnull, "w"), infd=slave)
    assert console.interactive
    os.write(master, b"https://x.com/a/status/1\n\n")
    assert await console.prompt("URL: ") == "https://x.com/a/status/1"
    assert await console.prompt("URL: ") is None


async def test_prompt_timeout_keeps_the_question_and_partial_input(tty: tuple[int, int],
                                                                   tmp_path: object) -> None:
    """No answer in time -> TimeoutError; asking again does not re-print, and what was typed
    before the timeout is kept."""
    master, slave = tty
    out = open(os.devnull, "w")
    console = Console(out=out, infd=slave)
    os.write(master, b"abc")
    with pytest.raises(TimeoutError):
        await console.prompt("Q: ", timeout=0.05)
    os.write(master, b"def\n")
    assert await console.prompt("Q: ", timeout=5) == "abcdef"


async def test_cancelled_prompt_leaves_nothing_blocked(tty: tuple[int, int]) -> None:
    """Cancelling a waiting prompt (a stop request) returns at once and frees the terminal."""
    _, slave = tty
    console = Console(out=open(os.devnull, "w"), infd=slave)
    task = asyncio.create_task(console.prompt("Q: "))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    loop = asyncio.get_running_loop()
    assert loop.remove_reader(slave) is False  # no reader left registered


def test_not_a_terminal_is_not_interactive(tmp_path: object) -> None:
    """With stdin a pipe, nobody is asked anything."""
    r, w = os.pipe()
    try:
        assert Console(out=open(os.devnull, "w"), infd=r).interactive is False
    finally:
        os.close(r)
        os.close(w)
