"""Payload models: the public surface of `retake_fsm.api`, and comment normalisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import retake_fsm.api as api
from retake_fsm.api import Comment, RtmpCredentials
from retake_fsm.api._models import normalise_comments

SHAPE_A = [  # as retake-api.md documents it, newest first
    {"_id": "65f000000000000000000003", "streamId": "s1", "text": "third",
     "timestamp": "2026-01-01T00:00:03Z",
     "author": {"walletAddress": "WalletC", "fusername": "carol", "fid": 3, "favatar": "c.png"}},
    {"_id": "65f000000000000000000001", "streamId": "s1", "text": "first",
     "timestamp": "2026-01-01T00:00:01Z",
     "author": {"walletAddress": "WalletA", "fusername": "alice", "fid": 1, "favatar": ""}},
]
SHAPE_B = [  # the other shape seen in the wild, oldest first, epoch-ms timestamps as text
    {"chat_event_id": "9b2c-1", "sender_user_id": "u_bob", "sender_username": "bob",
     "sender_display_name": "Bob", "sender_pfp": "", "sender_wallet_address": "WalletB",
     "streamer_id": "me", "session_id": "s1", "text": "hello", "timestamp": "1767225600500",
     "type": "message"},
    {"chat_event_id": "9b2c-2", "sender_user_id": "u_dan", "sender_username": "",
     "sender_display_name": "Dan", "text": "yo", "timestamp": "1767225602000", "type": "message"},
]


def test_public_surface_is_sorted_and_importable() -> None:
    """`retake_fsm.api.__all__` is sorted and every name in it exists."""
    assert api.__all__ == sorted(api.__all__)
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_shape_a_envelope_newest_first_comes_back_oldest_first() -> None:
    """`{comments: [...]}` with `_id`/`author`, newest first, is normalised oldest first."""
    out = normalise_comments({"comments": SHAPE_A})
    assert [c.text for c in out] == ["first", "third"]
    first = out[0]
    assert first.id == "65f000000000000000000001"
    assert first.author_id == "WalletA" and first.author_name == "alice"
    assert first.timestamp == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert first.raw["streamId"] == "s1"


def test_shape_b_bare_list_is_normalised() -> None:
    """A bare list of `chat_event_id`/`sender_*` comments is normalised, names falling back."""
    out = normalise_comments(SHAPE_B)
    assert [c.id for c in out] == ["9b2c-1", "9b2c-2"]
    assert out[0].author_id == "u_bob" and out[0].author_name == "bob"
    assert out[1].author_name == "Dan", "empty username falls back to the display name"
    assert out[0].timestamp == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_mixed_shapes_sort_by_time() -> None:
    """Both shapes in one page are merged in time order."""
    out = normalise_comments({"comments": [*SHAPE_A, *SHAPE_B]})
    assert [c.text for c in out] == ["hello", "first", "yo", "third"]


def test_without_timestamps_object_ids_give_the_order() -> None:
    """With no timestamps, MongoDB ObjectIds (time-first) still order the page."""
    page = [{"_id": "65f0000000000000000000ff", "text": "b"},
            {"_id": "65f000000000000000000010", "text": "a"}]
    assert [c.text for c in normalise_comments(page)] == ["a", "b"]


def test_without_any_order_the_page_is_kept_as_served() -> None:
    """Opaque ids and no timestamps: the order served is kept (nothing is invented)."""
    page = [{"chat_event_id": "zz", "text": "1"}, {"chat_event_id": "aa", "text": "2"}]
    assert [c.text for c in normalise_comments(page)] == ["1", "2"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"comments": "nope"}, "expected a list"),
        ([{"text": "no id"}], "comments[0]: a comment has no `_id`"),
        ([{"_id": "1", "text": "ok"}, 7], "comments[1] is int"),
    ],
)
def test_malformed_pages_say_what_is_wrong(body: object, problem: str) -> None:
    """A page that cannot be normalised raises ValueError saying where and what."""
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        normalise_comments(body)


def test_secrets_stay_out_of_reprs() -> None:
    """The RTMP key never shows in a model's repr (logs print reprs)."""
    creds = RtmpCredentials(url="rtmp://127.0.0.1/live", key="sk_reprsecret0123456789")
    assert "sk_reprsecret" not in repr(creds) and "sk_reprsecret" not in str(creds)
    assert "raw" not in repr(Comment(id="1", text="t", raw={"x": 1}))
