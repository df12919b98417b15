"""The chat loop: cursor, backlog, own messages, both comment shapes, keep-alive, rate limit,
no double replies across restarts. Against the sandbox platform with a FakeClock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from retake_fsm.api._models import normalise_comments
from retake_fsm.credentials import Credentials
from retake_fsm.live.chat import (
    ChatSender,
    chat_loop,
    handle_batch,
    poll_interval,
    reply_loop,
    take_new,
)
from retake_fsm.live.responder import BuiltinResponder
from retake_fsm.state import ChatState
from tests.fixtures.live import LiveRig, RigFactory, agent_rig, run_until, sent

pytestmark = pytest.mark.timeout(60)

OWN = Credentials(access_token="rtk_literal_payload_token_0000", agent_name="OurAgent",
                  agent_id="agent-1", userDbId="user-own-1",
                  wallet_address="OwnWa11etAddress1111111111111111111111111111")


def shape_a(n: int, name: str, wallet: str, text: str) -> dict[str, Any]:
    """A comment as `stream/comments` serves it today (`_id`, nested author)."""
    return {"_id": f"65a0000000000000000000{n:02d}", "streamId": "s1", "text": text,
            "timestamp": f"2026-01-01T00:00:{n:02d}Z",
            "author": {"walletAddress": wallet, "fusername": name, "fid": 1000 + n,
                       "favatar": "https://example.invalid/a.png"}}


def shape_b(n: int, name: str, user_id: str, text: str) -> dict[str, Any]:
    """A comment in the other shape seen in the wild (`chat_event_id`, `sender_*`)."""
    return {"chat_event_id": f"evt-{n:03d}", "text": text,
            "timestamp": f"2026-01-01T00:01:{n:02d}Z", "sender_user_id": user_id,
            "sender_username": name, "sender_wallet_address": f"W{user_id}"}


async def _drain(responder: BuiltinResponder) -> list[tuple[str | None, str]]:
    out = []
    while not responder.replies.empty():
        r = responder.replies.get_nowait()
        out.append((r.in_reply_to, r.text))
    return out


@pytest.mark.parametrize("shape", ["a", "b"])
async def test_both_comment_shapes_are_answered_and_own_messages_skipped(
        live_rig: RigFactory, shape: str) -> None:
    """Parsed by the client from either payload shape: viewers greeted by name, our own skipped."""
    rig = await live_rig(credentials=OWN)
    responder = BuiltinResponder(rig.ctx)
    if shape == "a":
        backlog = [shape_a(1, "old", "Wold", "from before")]
        batch = [*backlog, shape_a(2, "alice", "Walice", "hi"),
                 shape_a(3, "OurAgent", OWN.wallet_address, "I'm live."),
                 shape_a(4, "bob", "Wbob", "!help")]
    else:
        backlog = [shape_b(1, "old", "u-old", "from before")]
        batch = [*backlog, shape_b(2, "alice", "u-alice", "hi"),
                 shape_b(3, "ourbot", OWN.userDbId, "I'm live."),
                 shape_b(4, "bob", "u-bob", "!help")]
    assert await handle_batch(rig.ctx, responder, normalise_comments({"comments": backlog})) == 0
    new = await handle_batch(rig.ctx, responder, normalise_comments({"comments": batch[::-1]}))
    assert new == 2
    replies = await _drain(responder)
    ids = [c.id for c in normalise_comments(batch)]
    assert [r[0] for r in replies] == [ids[1], ids[3]]
    assert replies[0][1].startswith("Welcome, alice!")
    assert replies[1][1].startswith("Welcome, bob!") and "!uptime" in replies[1][1]
    assert rig.ctx.state.chat.cursor == ids[3]
    assert rig.reload_state().chat.cursor == ids[3]  # persisted after the batch


def test_first_poll_of_a_fresh_stream_only_sets_the_cursor() -> None:
    """On a fresh stream the backlog is never answered: the first batch only moves the cursor."""
    chat = ChatState()
    backlog = normalise_comments([shape_a(n, "v", "W", "old") for n in range(1, 4)])
    assert take_new(chat, backlog) == []
    assert chat.cursor_set and chat.cursor == backlog[-1].id
    more = normalise_comments([shape_a(n, "v", "W", "x") for n in range(1, 6)])
    assert [c.id for c in take_new(chat, more)] == [more[3].id, more[4].id]
    assert take_new(chat, more) == []


def test_first_poll_answers_only_what_came_after_going_live() -> None:
    """A comment posted after we went live but before the first poll is not backlog."""
    from datetime import UTC, datetime

    chat = ChatState()
    batch = normalise_comments([shape_a(n, "v", "W", "x") for n in range(1, 6)])
    live_at = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)  # between comments 3 and 4
    assert [c.id for c in take_new(chat, batch, live_at)] == [batch[3].id, batch[4].id]
    assert chat.cursor == batch[-1].id and take_new(chat, batch, live_at) == []


def test_an_empty_first_poll_then_everything_is_new() -> None:
    """A fresh stream with no comments yet: everything posted later is new."""
    chat = ChatState()
    assert take_new(chat, []) == [] and chat.cursor_set and chat.cursor is None
    later = normalise_comments([shape_b(1, "v", "u", "first!")])
    assert [c.id for c in take_new(chat, later)] == [later[0].id]


def test_answered_ids_are_never_handed_out_again() -> None:
    """A batch seen again (cursor not saved before a crash) yields nothing already answered."""
    comments = normalise_comments([shape_a(n, "v", "W", "x") for n in range(1, 4)])
    chat = ChatState(cursor=comments[0].id, cursor_set=True, replied=[comments[1].id])
    assert [c.id for c in take_new(chat, comments)] == [comments[2].id]


async def test_poll_cadence_follows_activity(live_rig: RigFactory) -> None:
    """chat.poll_active while viewers talk, chat.poll_quiet once quiet for chat.quiet_after;
    chat.poll before anyone spoke, until chat.quiet_after has passed without a word."""
    rig = await live_rig()
    s, clock = rig.ctx.settings.chat, rig.ctx.clock
    start = clock.monotonic()
    assert poll_interval(rig.ctx, None) == s.poll
    assert poll_interval(rig.ctx, None, start) == s.poll
    spoke = clock.monotonic()
    assert poll_interval(rig.ctx, spoke) == s.poll_active
    await clock.sleep(s.quiet_after - 1)
    assert poll_interval(rig.ctx, spoke) == s.poll_active
    assert poll_interval(rig.ctx, None, start) == s.poll
    await clock.sleep(1)
    assert poll_interval(rig.ctx, spoke) == s.poll_quiet
    assert poll_interval(rig.ctx, None, start) == s.poll_quiet


QUIET = ["chat.keepalive=24h"]  # keep-alive out of the way where it is not the subject


def _loops(rig: LiveRig, responder: BuiltinResponder | None = None) -> dict[str, Any]:
    responder = responder or BuiltinResponder(rig.ctx)
    sender = ChatSender(rig.ctx)
    return {"chat": lambda: chat_loop(rig.ctx, responder, sender),
            "replies": lambda: reply_loop(rig.ctx, responder, sender)}


def _polls(sandbox: Any, since: int) -> int:
    return len(sandbox.calls("stream/comments", since=since))


async def test_backlog_is_never_answered(live_rig: RigFactory, sandbox: Any,
                                         sandbox_agent: Any) -> None:
    """Comments from before the stream are skipped; only the one posted while live is answered."""
    rig = await agent_rig(live_rig, sandbox_agent, overrides=QUIET)
    for n in range(3):
        sandbox.post_comment(sandbox_agent, f"old message {n}", viewer=f"early{n}")
    mark = sandbox.mark()

    posted: list[str] = []

    def answered() -> bool:
        if rig.named("chat.cursor_set") and not posted:  # the stream's first poll is done
            posted.append(sandbox.post_comment(sandbox_agent, "hello there", viewer="late")["_id"])
        return bool(rig.named("chat.sent")) and _polls(sandbox, mark) >= 8

    await run_until(rig, _loops(rig), answered, what="one reply and a few more polls")
    assert sent(sandbox, mark) == ["Welcome, late! Type !help to see what I can do."]
    assert rig.ctx.state.chat.comments_seen == 1
    assert rig.reload_state().chat.replied == posted


async def test_no_double_reply_across_a_restart(live_rig: RigFactory, sandbox: Any,
                                                sandbox_agent: Any) -> None:
    """A new process resuming from state.json (even with a stale cursor) never answers twice."""
    rig = await agent_rig(live_rig, sandbox_agent, overrides=QUIET)
    mark = sandbox.mark()
    comment = sandbox.post_comment(sandbox_agent, "!help", viewer="vic")
    rig.ctx.state.chat.cursor_set = True  # a live stream: the cursor sits before the comment
    await run_until(rig, _loops(rig), lambda: rig.named("chat.sent"), what="the first reply")
    assert len(sent(sandbox, mark)) == 1

    # the whole process restarts; worst case, it crashed before the cursor moved past the comment
    state = rig.reload_state()
    assert comment["_id"] in state.chat.replied
    state.chat.cursor = None
    again = await agent_rig(live_rig, sandbox_agent, start=False, overrides=QUIET, state=state)
    mark2 = sandbox.mark()
    await run_until(again, _loops(again), lambda: _polls(sandbox, mark2) >= 10,
                    what="ten polls after the restart")
    sandbox.post_comment(sandbox_agent, "!uptime", viewer="vic")
    mark3 = sandbox.mark()
    await run_until(again, _loops(again),
                    lambda: again.named("chat.sent") and _polls(sandbox, mark3) >= 3,
                    what="the reply to the new comment")
    messages = sent(sandbox, mark)
    assert len(messages) == 2, messages
    assert messages[0].startswith("Welcome, vic!") and "!uptime" in messages[0]
    assert messages[1].startswith("@vic ")


async def test_keepalive_after_silence(live_rig: RigFactory, sandbox: Any,
                                       sandbox_agent: Any) -> None:
    """With nobody talking, a keep-alive line goes out every chat.keepalive (on the FakeClock)."""
    rig = await agent_rig(live_rig, sandbox_agent)
    rig.ctx.state.chat.cursor_set = True
    rig.ctx.state.chat.last_activity_at = rig.clock.now()  # as say_hello leaves it
    start = rig.clock.monotonic()
    mark = sandbox.mark()
    await run_until(rig, _loops(rig), lambda: len(rig.named("chat.sent")) >= 2,
                    what="two keep-alives")
    s = rig.ctx.settings.chat
    times = [e.at - start for e in rig.named("chat.sent")]
    assert [e.fields["kind"] for e in rig.named("chat.sent")] == ["keepalive", "keepalive"]
    assert s.keepalive <= times[0] <= s.keepalive + s.poll_quiet
    assert s.keepalive <= times[1] - times[0] <= s.keepalive + s.poll_quiet
    assert sent(sandbox, mark) == s.keepalive_lines[:2]
    assert rig.reload_state().chat.keepalives_sent == 2


async def test_replies_are_rate_limited(live_rig: RigFactory, sandbox: Any,
                                        sandbox_agent: Any) -> None:
    """Four viewers at once get four replies, at least chat.reply_interval apart."""
    rig = await agent_rig(live_rig, sandbox_agent,
                          overrides=[*QUIET, "chat.reply_interval=7s"])
    rig.ctx.state.chat.cursor_set = True
    mark = sandbox.mark()
    for n in range(4):
        sandbox.post_comment(sandbox_agent, "hi", viewer=f"fan{n}")
    await run_until(rig, _loops(rig), lambda: len(rig.named("chat.sent")) >= 4,
                    what="four replies")
    times = [e.at for e in rig.named("chat.sent")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 7.0 for g in gaps), gaps
    assert sent(sandbox, mark) == [f"Welcome, fan{n}! Type !help to see what I can do."
                                   for n in range(4)]
