"""Every RetakeClient endpoint against the real sandbox platform over loopback HTTP.

Each test asserts the request as the platform recorded it (method, path,
query, body, masked auth) and the parsed response.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from retake_fsm.api import RegisterRequest, RetakeClient
from retake_fsm.errors import BadRequestError, ConflictError
from tests.fixtures.sandbox import Sandbox, SandboxAgent, new_wallet


@pytest.fixture
async def api(sandbox_agent: SandboxAgent) -> AsyncIterator[RetakeClient]:
    async with RetakeClient(sandbox_agent.sandbox.base_url, sandbox_agent.token) as client:
        yield client


def one_call(sandbox: Sandbox, path: str, since: int, method: str) -> dict[str, Any]:
    calls = sandbox.calls(path, since=since)
    assert len(calls) == 1, calls
    call = calls[0]
    assert call["method"] == method and call["path"] == f"/api/v1/{path}"
    return call


def bearer_hint(token: str) -> str:
    return f"Bearer rtk_…{token[-4:]}"


async def test_register(sandbox: Sandbox) -> None:
    """register sends the five fields without a token and parses the new credentials."""
    name = f"api-{uuid.uuid4().hex[:8]}"
    wallet = new_wallet()
    req = RegisterRequest(agent_name=name, agent_description="d", ticker="APIT",
                          image_url="https://example.invalid/a.png", wallet_address=wallet)
    mark = sandbox.mark()
    async with RetakeClient(sandbox.base_url) as client:
        resp = await client.register(req)
    call = one_call(sandbox, "agent/register", mark, "POST")
    assert call["auth"] is None and call["status"] == 200
    assert call["body"] == {"agent_name": name, "agent_description": "d", "ticker": "APIT",
                            "image_url": "https://example.invalid/a.png",
                            "wallet_address": wallet}
    assert resp.access_token.startswith("rtk_") and resp.user_db_id and resp.agent_id
    assert resp.wallet_address == wallet and resp.token_address == ""


async def test_register_taken_name_is_a_bad_request(sandbox: Sandbox,
                                                    sandbox_agent: SandboxAgent) -> None:
    """A taken name comes back as BadRequestError naming agent_name (--name)."""
    req = RegisterRequest(agent_name=sandbox_agent.name, agent_description="d", ticker="X",
                          image_url="https://example.invalid/a.png", wallet_address=new_wallet())
    async with RetakeClient(sandbox.base_url) as client:
        with pytest.raises(BadRequestError) as info:
            await client.register(req)
    assert info.value.field == "agent_name" and "--name" in str(info.value)


async def test_prepare_verify_verify_and_status(sandbox: Sandbox) -> None:
    """prepare-verify (no body), verify {tweet_url} and verification-status, with the token."""
    agent = sandbox.register_agent(verify=False)
    url = "https://x.com/operator/status/1876543210987654321"
    mark = sandbox.mark()
    async with RetakeClient(sandbox.base_url, agent.token) as client:
        assert await client.verification_status() is False
        message = await client.prepare_verify()
        assert await client.verify(url) is True
        assert await client.verification_status() is True
    assert message.startswith("Claiming my Livestreaming Agent on @retakedottv. Code: ")
    prep = one_call(sandbox, "agent/prepare-verify", mark, "POST")
    assert prep["body"] is None and prep["auth"] == bearer_hint(agent.token)
    ver = one_call(sandbox, "agent/verify", mark, "POST")
    assert ver["body"] == {"tweet_url": url} and ver["auth"] == bearer_hint(agent.token)
    statuses = sandbox.calls("agent/verification-status", since=mark)
    assert [c["method"] for c in statuses] == ["GET", "GET"]


async def test_rtmp(sandbox: Sandbox, api: RetakeClient, sandbox_agent: SandboxAgent) -> None:
    """rtmp is an authenticated POST and yields the ingest URL and a fresh sk_ key."""
    mark = sandbox.mark()
    first, second = await api.rtmp(), await api.rtmp()
    calls = sandbox.calls("agent/rtmp", since=mark)
    assert [c["method"] for c in calls] == ["POST", "POST"]
    assert calls[0]["auth"] == bearer_hint(sandbox_agent.token)
    assert first.url == sandbox.rtmp_url and first.key.startswith("sk_")
    assert second.key != first.key, "a new key every call"


async def test_stream_start(sandbox: Sandbox, api: RetakeClient,
                            sandbox_agent: SandboxAgent) -> None:
    """stream/start returns success and the agent's token (ticker, address)."""
    mark = sandbox.mark()
    result = await api.stream_start()
    call = one_call(sandbox, "agent/stream/start", mark, "POST")
    assert call["auth"] == bearer_hint(sandbox_agent.token) and call["body"] is None
    assert result.success and result.token is not None
    assert result.token.ticker == sandbox_agent.ticker and result.token.token_address


async def test_stream_status(sandbox: Sandbox, api: RetakeClient,
                             sandbox_agent: SandboxAgent) -> None:
    """stream/status is a GET parsed into is_live, viewers, uptime and our userDbId."""
    mark = sandbox.mark()
    status = await api.stream_status()
    one_call(sandbox, "agent/stream/status", mark, "GET")
    assert status.is_live is False and status.viewers == 0 and status.uptime_seconds == 0
    assert status.user_db_id == sandbox_agent.user_db_id


async def test_update_thumbnail(sandbox: Sandbox, api: RetakeClient) -> None:
    """update-thumbnail uploads multipart `image` (PNG) and returns the thumbnail URL."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "PNG")
    png = buf.getvalue()
    await api.stream_start()
    mark = sandbox.mark()
    result = await api.update_thumbnail(png)
    call = one_call(sandbox, "agent/update-thumbnail", mark, "POST")
    assert call["body"] == {"form": {"image": {"filename": "thumbnail.png",
                                               "content_type": "image/png", "size": len(png)}}}
    assert result.thumbnail_url and result.thumbnail_url.startswith(sandbox.root_url)
    assert sandbox.http.get(result.thumbnail_url).content == png


async def test_update_thumbnail_without_session_is_a_conflict(api: RetakeClient) -> None:
    """Without stream/start, update-thumbnail is a 409 ConflictError (the recover edge)."""
    with pytest.raises(ConflictError):
        await api.update_thumbnail(b"\x89PNG not really")


async def test_chat_send_and_comments(sandbox: Sandbox, api: RetakeClient,
                                      sandbox_agent: SandboxAgent) -> None:
    """chat/send posts message+destination; comments come back normalised, oldest first."""
    await api.stream_start()
    sandbox.post_comment(sandbox_agent, "first!", viewer="alice")
    sandbox.post_comment(sandbox_agent, "second", viewer="bob")
    mark = sandbox.mark()
    await api.chat_send("hello chat", sandbox_agent.user_db_id)
    send = one_call(sandbox, "agent/stream/chat/send", mark, "POST")
    assert send["body"] == {"message": "hello chat",
                            "destination_user_id": sandbox_agent.user_db_id}
    comments = await api.comments(sandbox_agent.user_db_id, limit=10)
    got = one_call(sandbox, "agent/stream/comments", mark, "GET")
    assert got["query"] == {"userDbId": sandbox_agent.user_db_id, "limit": "10"}
    assert [c.text for c in comments] == ["first!", "second", "hello chat"]
    assert comments[0].author_name == "alice" and comments[0].timestamp is not None
    assert comments[0].id < comments[1].id < comments[2].id


async def test_comments_before_id_pages_back(sandbox: Sandbox, api: RetakeClient,
                                             sandbox_agent: SandboxAgent) -> None:
    """beforeId and limit are sent as query params and page to older comments."""
    await api.stream_start()
    ids = [sandbox.post_comment(sandbox_agent, f"c{i}")["_id"] for i in range(4)]
    mark = sandbox.mark()
    older = await api.comments(sandbox_agent.user_db_id, limit=2, before_id=ids[3])
    call = one_call(sandbox, "agent/stream/comments", mark, "GET")
    assert call["query"] == {"userDbId": sandbox_agent.user_db_id, "limit": "2",
                             "beforeId": ids[3]}
    assert [c.text for c in older] == ["c1", "c2"]


async def test_stream_stop(sandbox: Sandbox, api: RetakeClient) -> None:
    """stream/stop is a POST returning the final status, duration and viewers."""
    await api.stream_start()
    mark = sandbox.mark()
    stop = await api.stream_stop()
    one_call(sandbox, "agent/stream/stop", mark, "POST")
    assert stop.status == "stopped" and stop.duration_seconds >= 0 and stop.viewers >= 0
    with pytest.raises(ConflictError):
        await api.stream_stop()


async def test_public_lookups_send_no_token(sandbox: Sandbox, api: RetakeClient,
                                            sandbox_agent: SandboxAgent) -> None:
    """users/streamer and sessions/active are public: no token; None when no session."""
    mark = sandbox.mark()
    profile = await api.streamer(sandbox_agent.name)
    assert profile["userDbId"] == sandbox_agent.user_db_id
    assert await api.active_session(sandbox_agent.user_db_id) is None
    await api.stream_start()
    session = await api.active_session(sandbox_agent.user_db_id)
    assert session is not None and session["streamer_id"] == sandbox_agent.user_db_id
    streamer = one_call(sandbox, f"users/streamer/{sandbox_agent.name}", mark, "GET")
    assert streamer["auth"] is None
    sessions = [c for c in sandbox.calls(since=mark)
                if c["path"] == f"/api/v1/sessions/active/{sandbox_agent.user_db_id}/"]
    assert [c["auth"] for c in sessions] == [None, None]
    assert [c["status"] for c in sessions] == [404, 200]


async def test_skill_version(sandbox: Sandbox, api: RetakeClient) -> None:
    """skill_version reads `version` from skill.json without sending the token."""
    mark = sandbox.mark()
    assert await api.skill_version(sandbox.skill_url) == "2.1.2"
    calls = sandbox.calls("skill.json", since=mark)
    assert len(calls) == 1 and calls[0]["auth"] is None and calls[0]["method"] == "GET"
