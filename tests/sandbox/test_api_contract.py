"""Contract tests: every endpoint of retake-api.md and its errors, over HTTP, plain httpx."""

from __future__ import annotations

import io
import re
from typing import Any

import base58
import httpx
import pytest
from PIL import Image

from tests.fixtures.sandbox import Sandbox, SandboxAgent, new_wallet

AUTH_ENDPOINTS = [
    ("POST", "agent/prepare-verify"),
    ("POST", "agent/verify"),
    ("GET", "agent/verification-status"),
    ("POST", "agent/rtmp"),
    ("POST", "agent/stream/start"),
    ("GET", "agent/stream/status"),
    ("POST", "agent/update-thumbnail"),
    ("POST", "agent/stream/chat/send"),
    ("GET", "agent/stream/comments"),
    ("POST", "agent/stream/stop"),
]


def _register_body(**over: Any) -> dict[str, Any]:
    body = {"agent_name": f"reg-{new_wallet()[:8]}", "agent_description": "bio",
            "image_url": "https://example.invalid/a.png", "wallet_address": new_wallet(),
            "ticker": "ABC"}
    body.update(over)
    return body


def _png(size: tuple[int, int] = (64, 36), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def _post(sb: Sandbox, path: str, **kw: Any) -> httpx.Response:
    return sb.http.post(f"{sb.base_url}/{path}", **kw)


# register ----------------------------------------------------------------------------
def test_register_returns_the_documented_fields(sandbox: Sandbox) -> None:
    """register answers access_token (rtk_), agent_id, userDbId, wallet and empty token fields."""
    body = _register_body()
    r = _post(sandbox, "agent/register", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["access_token"].startswith("rtk_")
    assert data["agent_id"] and data["userDbId"]
    assert data["wallet_address"] == body["wallet_address"]
    assert data["token_address"] == "" and data["token_ticker"] == ""


def test_register_duplicate_name_is_400(sandbox: Sandbox) -> None:
    """A taken agent_name (case-insensitively) is refused with 400 naming the field."""
    body = _register_body()
    assert _post(sandbox, "agent/register", json=body).status_code == 200
    again = _register_body(agent_name=body["agent_name"].upper())
    r = _post(sandbox, "agent/register", json=again)
    assert r.status_code == 400
    assert r.json()["field"] == "agent_name" and "taken" in r.json()["error"]


@pytest.mark.parametrize("field,value", [
    ("wallet_address", base58.b58encode(bytes(31)).decode()),
    ("wallet_address", base58.b58encode(bytes(range(33))).decode()),
    ("wallet_address", "0OIl" + "1" * 40),
    ("wallet_address", ""),
    ("ticker", "ABCDEFGHIJK"),
    ("ticker", ""),
    ("agent_name", ""),
    ("agent_description", ""),
    ("image_url", "not-a-url"),
])
def test_register_rejects_bad_fields(sandbox: Sandbox, field: str, value: str) -> None:
    """Wallets that are not 32 base58 bytes, bad tickers and missing fields are 400 naming them."""
    r = _post(sandbox, "agent/register", json=_register_body(**{field: value}))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_register_accepts_a_ten_character_ticker(sandbox: Sandbox) -> None:
    """A ticker of exactly 10 characters is within the platform's limit."""
    assert _post(sandbox, "agent/register",
                 json=_register_body(ticker="ABCDEFGHIJ")).status_code == 200


def test_register_rejects_a_body_that_is_not_json(sandbox: Sandbox) -> None:
    """A malformed JSON body is a 400, not a server error."""
    r = _post(sandbox, "agent/register", content=b"{nope",
              headers={"content-type": "application/json"})
    assert r.status_code == 400


# auth ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", AUTH_ENDPOINTS)
def test_auth_endpoints_need_a_token(sandbox: Sandbox, method: str, path: str) -> None:
    """Every authenticated endpoint answers 401 without a token and with a wrong one."""
    url = f"{sandbox.base_url}/{path}"
    assert sandbox.http.request(method, url).status_code == 401
    wrong = {"Authorization": "Bearer rtk_" + "0" * 48}
    assert sandbox.http.request(method, url, headers=wrong).status_code == 401


def test_access_token_body_field_is_accepted(sandbox: Sandbox,
                                             sandbox_agent: SandboxAgent) -> None:
    """A POST body field `access_token` authenticates like the Bearer header."""
    r = _post(sandbox, "agent/rtmp", json={"access_token": sandbox_agent.token})
    assert r.status_code == 200 and r.json()["key"].startswith("sk_")


# verification -----------------------------------------------------------------------------
def test_verify_before_prepare_verify_is_400(sandbox: Sandbox) -> None:
    """verify without a prior prepare-verify is refused."""
    agent = sandbox.register_agent(verify=False)
    r = agent.request("POST", "agent/verify", json={"tweet_url": "https://x.com/a/status/1"})
    assert r.status_code == 400 and "prepare-verify" in r.json()["error"]
    assert agent.request("GET", "agent/verification-status").json() == {"verified": False}


@pytest.mark.parametrize("url", [
    "https://example.com/user/status/123",
    "https://x.com/user",
    "http://x.com/user/status/123",
    "https://x.com/user/status/abc",
    "https://twitter.com.evil.test/user/status/1",
    "",
])
def test_verify_accepts_only_tweet_status_urls(sandbox: Sandbox, url: str) -> None:
    """verify refuses anything but a twitter.com / x.com status URL."""
    agent = sandbox.register_agent(verify=False)
    msg = agent.request("POST", "agent/prepare-verify").json()["verification_message"]
    assert re.fullmatch(r"Claiming my Livestreaming Agent on @retakedottv\. Code: \w+", msg)
    r = agent.request("POST", "agent/verify", json={"tweet_url": url})
    assert r.status_code == 400
    assert agent.request("GET", "agent/verification-status").json() == {"verified": False}


def test_verify_follows_the_tweet_contains_code_switch(sandbox: Sandbox) -> None:
    """With the admin switch off the tweet 'lacks the code' (400); on, verify succeeds."""
    agent = sandbox.register_agent(verify=False)
    agent.request("POST", "agent/prepare-verify")
    sandbox.set_verification(False)
    url = "https://twitter.com/someone/status/1790000000000000000"
    r = agent.request("POST", "agent/verify", json={"tweet_url": url})
    assert r.status_code == 400 and "code" in r.json()["error"]
    sandbox.set_verification(True)
    r = agent.request("POST", "agent/verify", json={"tweet_url": url})
    assert r.status_code == 200 and r.json() == {"verified": True}
    assert agent.request("GET", "agent/verification-status").json() == {"verified": True}


# rtmp and stream lifecycle -------------------------------------------------------------------
def test_rtmp_issues_a_new_key_each_call(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """Each rtmp call returns a fresh sk_ key and the sandbox's loopback RTMP URL."""
    url1, key1 = sandbox_agent.rtmp()
    url2, key2 = sandbox_agent.rtmp()
    assert url1 == url2 == sandbox.rtmp_url
    assert re.fullmatch(r"rtmp://127\.0\.0\.1:\d+/live", url1)
    assert key1.startswith("sk_") and key2.startswith("sk_") and key1 != key2


def test_stream_start_refuses_unverified_agents(sandbox: Sandbox) -> None:
    """stream/start before verification is 400 and creates no token."""
    agent = sandbox.register_agent(verify=False)
    r = agent.request("POST", "agent/stream/start")
    assert r.status_code == 400 and "verif" in r.json()["error"]
    assert sandbox.agent_state(agent)["token"] is None


def test_stream_start_creates_the_token_once(sandbox_agent: SandboxAgent) -> None:
    """The first stream/start creates the token fields; a later start keeps the same token."""
    first = sandbox_agent.start()
    assert first["success"] is True
    token = first["token"]
    assert set(token) == {"name", "ticker", "imageUrl", "tokenAddress", "tokenType"}
    assert token["name"] == sandbox_agent.name and token["ticker"] == sandbox_agent.ticker
    assert len(base58.b58decode(token["tokenAddress"])) == 32
    assert sandbox_agent.start()["token"] == token


def test_stream_status_shape_when_not_live(sandbox_agent: SandboxAgent) -> None:
    """stream/status has the documented fields; nothing publishes, so it is not live."""
    sandbox_agent.start()
    status = sandbox_agent.status()
    assert status["is_live"] is False and status["viewers"] == 0
    assert status["uptime_seconds"] == 0
    assert status["userDbId"] == sandbox_agent.user_db_id
    assert status["token_address"]


def test_stream_stop_needs_a_session_and_returns_stats(sandbox_agent: SandboxAgent) -> None:
    """stream/stop is 409 without a session; after start it returns status/duration/viewers."""
    assert sandbox_agent.stop().status_code == 409
    sandbox_agent.start()
    r = sandbox_agent.stop()
    assert r.status_code == 200
    stats = r.json()
    assert stats["status"] == "stopped"
    assert isinstance(stats["duration_seconds"], int) and isinstance(stats["viewers"], int)
    assert sandbox_agent.stop().status_code == 409


# thumbnails -------------------------------------------------------------------------------------
def test_update_thumbnail_needs_a_session(sandbox_agent: SandboxAgent) -> None:
    """update-thumbnail without an active session is 409."""
    r = sandbox_agent.request("POST", "agent/update-thumbnail",
                              files={"image": ("t.png", _png(), "image/png")})
    assert r.status_code == 409


@pytest.mark.parametrize("fmt,ctype", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_update_thumbnail_stores_png_and_jpeg(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                              fmt: str, ctype: str) -> None:
    """A decodable PNG/JPEG is stored and served back at the returned thumbnail_url."""
    sandbox_agent.start()
    data = _png(fmt=fmt)
    r = sandbox_agent.request("POST", "agent/update-thumbnail",
                              files={"image": ("thumb", data, ctype)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"]
    got = sandbox.http.get(body["thumbnail_url"])
    assert got.status_code == 200 and got.content == data


@pytest.mark.parametrize("files", [
    {"image": ("t.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")},
    {"image": ("t.gif", b"GIF89a" + bytes(20), "image/gif")},
    {"picture": ("t.png", b"", "image/png")},
])
def test_update_thumbnail_rejects_bad_images(sandbox_agent: SandboxAgent,
                                             files: dict[str, Any]) -> None:
    """Undecodable data, another format, or no `image` field is 400."""
    sandbox_agent.start()
    if "picture" in files:
        files = {"picture": ("t.png", _png(), "image/png")}
    r = sandbox_agent.request("POST", "agent/update-thumbnail", files=files)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "image"


# chat and comments -------------------------------------------------------------------------------
def test_chat_send_needs_an_active_session(sandbox_agent: SandboxAgent) -> None:
    """chat/send to a stream without a session is 409."""
    r = sandbox_agent.request("POST", "agent/stream/chat/send", json={
        "message": "hi", "destination_user_id": sandbox_agent.user_db_id})
    assert r.status_code == 409


def test_chat_send_validates_message_and_destination(sandbox_agent: SandboxAgent) -> None:
    """An empty message is 400; an unknown destination_user_id is 404."""
    sandbox_agent.start()
    r = sandbox_agent.request("POST", "agent/stream/chat/send", json={
        "message": "", "destination_user_id": sandbox_agent.user_db_id})
    assert r.status_code == 400 and r.json()["field"] == "message"
    r = sandbox_agent.request("POST", "agent/stream/chat/send", json={
        "message": "hi", "destination_user_id": "no-such-user"})
    assert r.status_code == 404


def test_comments_shape_order_and_own_messages(sandbox: Sandbox,
                                               sandbox_agent: SandboxAgent) -> None:
    """Comments come newest first in the documented shape, ids increase, our chat/send included."""
    sandbox_agent.start()
    sandbox.post_comment(sandbox_agent, "hello agent", viewer="alice")
    r = sandbox_agent.request("POST", "agent/stream/chat/send", json={
        "message": "hi alice", "destination_user_id": sandbox_agent.user_db_id})
    assert r.status_code == 200
    sandbox.post_comment(sandbox_agent, "second", viewer="bob")
    r = sandbox_agent.request("GET", "agent/stream/comments",
                              params={"userDbId": sandbox_agent.user_db_id, "limit": 50})
    assert r.status_code == 200
    comments = r.json()["comments"]
    assert [c["text"] for c in comments] == ["second", "hi alice", "hello agent"]
    ids = [c["_id"] for c in comments]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    for c in comments:
        assert set(c) == {"_id", "streamId", "text", "timestamp", "author"}
        assert set(c["author"]) == {"walletAddress", "fusername", "fid", "favatar"}
        assert c["streamId"]
    own = comments[1]["author"]
    assert own["fusername"] == sandbox_agent.name and own["walletAddress"] == sandbox_agent.wallet
    assert comments[0]["author"]["fusername"] == "bob"


def test_comments_paging_with_before_id(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """limit caps a page and beforeId returns strictly older comments."""
    sandbox_agent.start()
    for i in range(5):
        sandbox.post_comment(sandbox_agent, f"c{i}")
    params = {"userDbId": sandbox_agent.user_db_id, "limit": 2}
    page1 = sandbox_agent.request("GET", "agent/stream/comments", params=params).json()
    assert [c["text"] for c in page1["comments"]] == ["c4", "c3"]
    params["beforeId"] = page1["comments"][-1]["_id"]
    page2 = sandbox_agent.request("GET", "agent/stream/comments", params=params).json()
    assert [c["text"] for c in page2["comments"]] == ["c2", "c1"]


@pytest.mark.parametrize("params,status", [
    ({"limit": 101}, 400), ({"limit": 0}, 400), ({"limit": "ten"}, 400),
    ({"beforeId": "xyz"}, 400), ({"userDbId": None}, 400), ({"userDbId": "nobody"}, 404),
    ({"limit": 100}, 200),
])
def test_comments_parameter_errors(sandbox_agent: SandboxAgent, params: dict[str, Any],
                                   status: int) -> None:
    """limit must be 1-100, beforeId an _id, userDbId present (400) and known (404)."""
    query = {"userDbId": sandbox_agent.user_db_id, **params}
    query = {k: v for k, v in query.items() if v is not None}
    r = sandbox_agent.request("GET", "agent/stream/comments", params=query)
    assert r.status_code == status, r.text


# public endpoints and skill.json ------------------------------------------------------
def test_public_streamer_and_active_session(sandbox: Sandbox,
                                            sandbox_agent: SandboxAgent) -> None:
    """users/streamer/:id finds by name or id; sessions/active/:id is 404 until stream/start."""
    for ident in (sandbox_agent.name, sandbox_agent.user_db_id):
        r = sandbox.http.get(f"{sandbox.base_url}/users/streamer/{ident}")
        assert r.status_code == 200 and r.json()["userDbId"] == sandbox_agent.user_db_id
    assert sandbox.http.get(f"{sandbox.base_url}/users/streamer/nobody-here").status_code == 404
    url = f"{sandbox.base_url}/sessions/active/{sandbox_agent.user_db_id}"
    assert sandbox.http.get(url).status_code == 404
    sandbox_agent.start()
    r = sandbox.http.get(url)
    assert r.status_code == 200 and r.json()["streamer_id"] == sandbox_agent.user_db_id


def test_public_discovery_endpoints(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """metadata, recorded sessions, tokens, trades, chat and top-tippers answer as documented."""
    b, uid = sandbox.base_url, sandbox_agent.user_db_id
    token = sandbox_agent.start()["token"]
    sandbox.post_comment(sandbox_agent, "public hello")
    sandbox_agent.stop()
    get = sandbox.http.get
    assert get(f"{b}/users/metadata/{uid}").json()["username"] == sandbox_agent.name
    recorded = get(f"{b}/sessions/recorded/").json()["sessions"]
    assert any(r["streamer_id"] == uid for r in recorded)
    for path in ("tokens/top/", "tokens/trending/"):
        assert token["tokenAddress"] in {t["tokenAddress"] for t in get(f"{b}/{path}").json()[
            "tokens"]}
    assert get(f"{b}/tokens/{token['tokenAddress']}/stats").json()["ticker"] == token["ticker"]
    assert get(f"{b}/tokens/nope/stats").status_code == 404
    assert get(f"{b}/trades/recent/").json() == {"trades": []}
    chat = get(f"{b}/chat/", params={"streamer_id": uid, "limit": 50}).json()["comments"]
    assert chat[0]["text"] == "public hello"
    assert get(f"{b}/chat/", params={"streamer_id": uid, "limit": 101}).status_code == 400
    assert get(f"{b}/chat/").status_code == 400
    assert get(f"{b}/chat/top-tippers", params={"streamer_id": uid}).json() == {"tippers": []}


def test_skill_json_version_is_changeable(sandbox: Sandbox) -> None:
    """skill.json reports 2.1.2 by default and the version the admin sets."""
    assert sandbox.http.get(sandbox.skill_url).json()["version"] == "2.1.2"
    sandbox.set_skill_version("2.2.0")
    assert sandbox.http.get(sandbox.skill_url).json()["version"] == "2.2.0"


def test_unknown_endpoint_and_wrong_method(sandbox: Sandbox) -> None:
    """An unknown API path is a JSON 404; a known path with the wrong method is 405."""
    r = sandbox.http.get(f"{sandbox.base_url}/agent/nope")
    assert r.status_code == 404 and "error" in r.json()
    assert sandbox.http.get(f"{sandbox.base_url}/agent/register").status_code == 405


# the call log ---------------------------------------------------------------------------
def test_call_log_records_requests_with_secrets_masked(sandbox: Sandbox,
                                                       sandbox_agent: SandboxAgent) -> None:
    """Calls are recorded with method, path, query, status, masked auth and a body summary."""
    mark = sandbox.mark()
    sandbox_agent.start()
    sandbox_agent.request("POST", "agent/update-thumbnail",
                          files={"image": ("t.png", _png(), "image/png")})
    sandbox_agent.request("GET", "agent/stream/comments",
                          params={"userDbId": sandbox_agent.user_db_id, "limit": 7})
    _post(sandbox, "agent/rtmp", json={"access_token": sandbox_agent.token})
    calls = sandbox.calls(since=mark)
    assert [c["path"].rsplit("/v1/", 1)[1] for c in calls] == [
        "agent/stream/start", "agent/update-thumbnail", "agent/stream/comments", "agent/rtmp"]
    thumb, comments, rtmp = calls[1], calls[2], calls[3]
    assert thumb["status"] == 200 and thumb["method"] == "POST"
    image = thumb["body"]["form"]["image"]
    assert image["size"] == len(_png()) and image["content_type"] == "image/png"
    assert comments["query"] == {"userDbId": sandbox_agent.user_db_id, "limit": "7"}
    assert thumb["auth"].startswith("Bearer rtk_…") and thumb["agent"] == sandbox_agent.name
    assert rtmp["body"]["access_token"].startswith("rtk_…")
    text = sandbox.http.get(f"{sandbox.admin_url}/calls").text
    assert sandbox_agent.token not in text
