"""The chat loop: cursor, backlog, own messages, both comment shapes, keep-alive, rate limit,
no double replies across restarts. Against the sandbox platform with a FakeClock."""

from __future__ import annotations

import asyncio
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
from tests.fixtures.live import LiveRig, RigFactory, wait_for

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
    """chat.poll_active right after a viewer spoke, chat.poll in between, chat.poll_quiet later."""
    rig = await live_rig()
    s, clock = rig.ctx.settings.chat, rig.ctx.clock
    assert poll_interval(rig.ctx, None) == s.poll
    spoke = clock.monotonic()
    assert poll_interval(rig.ctx, spoke) == s.poll_active
    await clock.sleep(s.poll_active + 1)
    assert poll_interval(rig.ctx, spoke) == s.poll
    await clock.sleep(s.quiet_after)
    assert poll_interval(rig.ctx, spoke) == s.poll_quiet
