"""Responders: the built-in one's answers; a real plug-in process that crashes and returns."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retake_fsm.errors import InputError
from retake_fsm.live.chat import ChatSender, Incoming, chat_loop, reply_loop
from retake_fsm.live.responder import (
    RESPONDER_PROC,
    BuiltinResponder,
    ProcessResponder,
    make_responder,
)
from retake_fsm.procs import same_process
from tests.fixtures.live import RigFactory, agent_rig, run_until, sent

pytestmark = pytest.mark.timeout(60)

# A real plug-in: answers exactly one comment (plus a line of noise), then exits with 3.
ONE_SHOT = """\
import json, sys
c = json.loads(sys.stdin.readline())
print("warming up (not json)", flush=True)
print(json.dumps({"reply": "echo " + c["author_name"] + ": " + c["text"],
                  "in_reply_to": c["id"]}), flush=True)
sys.exit(3)
"""


def _script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bot.py"
    path.write_text(text)
    return f"{sys.executable} {path}"


def _item(text: str, name: str = "ann", n: int = 1) -> Incoming:
    return Incoming(id=f"c{n}", text=text, author_name=name, author_id=f"w-{name}")


async def test_builtin_greets_once_and_answers_commands(live_rig: RigFactory, sandbox: Any,
                                                        sandbox_agent: Any) -> None:
    """New chatters are greeted by name once; !help, !uptime, !viewers are answered."""
    rig = await agent_rig(live_rig, sandbox_agent)
    rig.ctx.state.stream.live_at = rig.clock.now() - timedelta(minutes=5, seconds=7)
    bot = BuiltinResponder(rig.ctx)
    assert await bot.answer(_item("hello")) == "Welcome, ann! Type !help to see what I can do."
    assert await bot.answer(_item("hello again", n=2)) is None  # no greeting twice
    assert "!uptime" in (await bot.answer(_item("!help", n=3)) or "")
    assert await bot.answer(_item("!uptime", n=4)) == "@ann Live for 5m 07s."
    assert await bot.answer(_item("!VIEWERS", n=5)) == "@ann 0 watching right now."
    assert await bot.answer(_item("!viewers", name="bo", n=6)) == (
        "Welcome, bo! 0 watching right now.")
    assert rig.ctx.state.chat.seen_authors == ["w-ann", "w-bo"]


async def test_an_empty_responder_command_is_a_clear_error(live_rig: RigFactory) -> None:
    """`--responder ''` is refused with a message saying what to give."""
    rig = await live_rig(overrides=["chat.responder=' '"])
    with pytest.raises(InputError, match=r"chat\.responder is empty"):
        make_responder(rig.ctx)


async def test_responder_crash_is_survived(live_rig: RigFactory, sandbox: Any,
                                           sandbox_agent: Any, tmp_path: Path) -> None:
    """A plug-in that exits after each answer is restarted; every comment still gets its reply."""
    rig = await agent_rig(live_rig, sandbox_agent, overrides=["chat.keepalive=24h"])
    rig.ctx.state.chat.cursor_set = True
    responder = ProcessResponder(rig.ctx, _script(tmp_path, ONE_SHOT))
    sender = ChatSender(rig.ctx)
    loops = {"chat": lambda: chat_loop(rig.ctx, responder, sender),
             "replies": lambda: reply_loop(rig.ctx, responder, sender),
             "responder": responder.run}
    mark = sandbox.mark()
    first = sandbox.post_comment(sandbox_agent, "one", viewer="v1")

    posted: list[dict[str, Any]] = []

    def step() -> bool:
        if rig.named("responder.exited") and not posted:  # it died after its first answer
            posted.append(sandbox.post_comment(sandbox_agent, "two", viewer="v2"))
        return len(rig.named("chat.sent")) >= 2

    await run_until(rig, loops, step, what="two replies across a responder crash")
    assert sent(sandbox, mark) == ["echo v1: one", "echo v2: two"]
    exits = rig.named("responder.exited")
    assert exits and exits[0].fields["returncode"] == 3
    assert len(rig.named("responder.started")) >= 2
    assert rig.named("responder.bad_line")[0].fields["line"] == "warming up (not json)"
    assert first["_id"] in rig.reload_state().chat.replied
    assert RESPONDER_PROC not in rig.ctx.state.processes  # torn down with the loops


async def test_responder_restarts_back_off(live_rig: RigFactory, tmp_path: Path) -> None:
    """A responder that keeps dying is restarted after 1s, 2s, 4s ... capped at the maximum."""
    rig = await live_rig(overrides=["chat.responder_backoff=1s", "chat.responder_backoff_max=8s"])
    responder = ProcessResponder(rig.ctx, _script(tmp_path, "raise SystemExit(1)\n"))
    await run_until(rig, {"responder": responder.run},
                    lambda: len(rig.named("responder.exited")) >= 6, what="six restarts")
    waits = [e.fields["retry_in"] for e in rig.named("responder.exited")][:6]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_cancelling_the_loops_stops_the_responder(live_rig: RigFactory,
                                                        tmp_path: Path) -> None:
    """Tearing the loops down stops the responder process we started (by its PID)."""
    rig = await live_rig()
    responder = ProcessResponder(rig.ctx, _script(tmp_path, "import signal; signal.pause()\n"))
    record = await run_until(rig, {"responder": responder.run},
                             lambda: rig.ctx.state.processes.get(RESPONDER_PROC),
                             what="the responder running")
    assert not same_process(record.pid, record.create_time)
    assert RESPONDER_PROC not in rig.ctx.state.processes
    assert [e.fields["pid"] for e in rig.named("process.exit")] == [record.pid]
