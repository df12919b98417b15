"""Error mapping at the API client's edge (httpx MockTransport: the one allowed double).

Every failure is a `retake_fsm.errors.ApiError` subclass with the right
`retryable` flag, and the token never appears in its message.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from retake_fsm.api import RegisterRequest, RetakeClient
from retake_fsm.errors import (
    ApiError,
    ApiTimeout,
    AuthError,
    BadRequestError,
    ConfigError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PayloadError,
    ServerError,
    UnsafeRequestError,
)

TOKEN = "rtk_errormapping0123456789abcd"
BASE = "http://127.0.0.1:8787/api/v1"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, token: str | None = TOKEN) -> RetakeClient:
    return RetakeClient(BASE, token, transport=httpx.MockTransport(handler))


def answer(status: int, **kw: object) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kw)  # type: ignore[arg-type]
    return handler


def assert_clean(exc: ApiError) -> None:
    text = str(exc)
    assert TOKEN not in text and TOKEN not in exc.message
    assert "\n" not in text, "one line for the user"


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "kind"),
    [
        (400, BadRequestError, False, "input"),
        (401, AuthError, False, "auth"),
        (404, NotFoundError, False, "not_found"),
        (409, ConflictError, False, "conflict"),
        (500, ServerError, True, "server"),
        (502, ServerError, True, "server"),
        (503, ServerError, True, "server"),
        (429, ServerError, True, "server"),
    ],
)
async def test_status_maps_to_error_class(status: int, cls: type[ApiError], retryable: bool,
                                          kind: str) -> None:
    """Each HTTP status becomes its error class, kind and retryable flag, token-free."""
    body = {"error": f"something about {TOKEN}"}  # a platform echoing the token
    async with client(answer(status, json=body)) as api:
        with pytest.raises(ApiError) as info:
            await api.stream_status()
    exc = info.value
    assert type(exc) is cls
    assert exc.retryable is retryable and exc.kind == kind
    assert exc.status_code == status and exc.endpoint == "agent/stream/status"
    assert_clean(exc)
    assert "rtk_…abcd" in str(exc), "the echoed token is shown masked"


async def test_400_names_the_field_from_the_body() -> None:
    """A 400 whose body names a field says which flag to fix."""
    body = {"error": "wallet_address must be a Solana public key", "field": "wallet_address"}
    async with client(answer(400, json=body)) as api:
        with pytest.raises(BadRequestError) as info:
            await api.verify("https://x.com/someone/status/1876543210987654321")
    assert info.value.field == "wallet_address"
    assert "--wallet" in str(info.value) and "Solana public key" in str(info.value)
    assert_clean(info.value)


async def test_400_field_found_in_the_message() -> None:
    """Without a `field` key, a field named in the platform's message is still found."""
    async with client(answer(400, json={"message": "ticker must be at most 10 chars"})) as api:
        with pytest.raises(BadRequestError) as info:
            await api.stream_start()
    assert info.value.field == "ticker" and "--ticker" in str(info.value)


async def test_401_tells_how_to_fix_the_token() -> None:
    """A 401 says the token was rejected and how to get a good one."""
    async with client(answer(401, json={"error": "invalid access token"})) as api:
        with pytest.raises(AuthError) as info:
            await api.rtmp()
    assert "token rejected: re-register or set RETAKE_ACCESS_TOKEN" in str(info.value)
    assert_clean(info.value)


async def test_no_token_fails_before_any_request() -> None:
    """An authenticated call without a token is an AuthError and sends nothing."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"verified": True})

    async with client(handler, token=None) as api:
        with pytest.raises(AuthError) as info:
            await api.verification_status()
    assert seen == [] and "RETAKE_ACCESS_TOKEN" in str(info.value)


@pytest.mark.parametrize(
    ("raised", "cls"),
    [
        (httpx.ReadTimeout("read timed out"), ApiTimeout),
        (httpx.ConnectTimeout("connect timed out"), ApiTimeout),
        (httpx.PoolTimeout("pool timed out"), ApiTimeout),
        (httpx.WriteTimeout("write timed out"), ApiTimeout),
        (httpx.ConnectError("connection refused"), NetworkError),
        (httpx.ReadError("connection reset by peer"), NetworkError),
        (httpx.RemoteProtocolError("server disconnected"), NetworkError),
    ],
)
async def test_transport_failures_are_retryable(raised: httpx.HTTPError,
                                                cls: type[ApiError]) -> None:
    """Timeouts and transport errors become retryable ApiErrors; no httpx exception leaks."""
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async with client(handler) as api:
        with pytest.raises(ApiError) as info:
            await api.comments("user_1")
    assert type(info.value) is cls and info.value.retryable
    assert not isinstance(info.value, httpx.HTTPError)
    assert_clean(info.value)


async def test_connection_refused_on_a_real_closed_port() -> None:
    """A real refused connection on loopback is a retryable NetworkError."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with RetakeClient(f"http://127.0.0.1:{port}/api/v1", TOKEN, connect_timeout=2) as api:
        with pytest.raises(NetworkError) as info:
            await api.stream_stop()
    assert type(info.value) is NetworkError and info.value.retryable
    assert "cannot reach the platform" in str(info.value)
    assert_clean(info.value)


async def test_malformed_json_is_a_payload_error_quoting_the_body() -> None:
    """A 2xx that is not JSON is a PayloadError that quotes what came back."""
    async with client(answer(200, text="<html>Gateway says hi</html>")) as api:
        with pytest.raises(PayloadError) as info:
            await api.stream_status()
    assert not info.value.retryable
    assert "not JSON" in str(info.value) and "Gateway says hi" in str(info.value)


async def test_wrong_field_type_is_a_payload_error_naming_the_field() -> None:
    """A 2xx whose JSON breaks the contract names the field and the bad value."""
    async with client(answer(200, json={"is_live": "maybe", "viewers": 3})) as api:
        with pytest.raises(PayloadError) as info:
            await api.stream_status()
    assert "`is_live`" in str(info.value) and '"maybe"' in str(info.value)


async def test_missing_secret_field_is_reported_without_leaking() -> None:
    """A register answer without userDbId is a PayloadError; the token in it stays masked."""
    body = {"access_token": TOKEN, "agent_id": "agent_1"}
    async with client(answer(200, json=body), token=None) as api:
        req = RegisterRequest(agent_name="a", agent_description="d", image_url="https://e/a.png",
                              wallet_address="11111111111111111111111111111111", ticker="A")
        with pytest.raises(PayloadError) as info:
            await api.register(req)
    assert "userDbId" in str(info.value)
    assert_clean(info.value)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("target", ["https://evil.example/api/v1/agent/rtmp",
                                    BASE + "/agent/rtmp-moved"])
async def test_redirects_are_refused(status: int, target: str) -> None:
    """Any redirect, to another host or the same one, is refused and never followed."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"location": target})

    async with client(handler) as api:
        with pytest.raises(UnsafeRequestError) as info:
            await api.rtmp()
    assert len(seen) == 1, "the redirect was not followed"
    assert not info.value.retryable and "never followed" in str(info.value)
    assert_clean(info.value)


async def test_token_only_goes_to_the_base_origin() -> None:
    """Requests carrying the token go to the base URL's scheme+host+port and nowhere else."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"version": "2.1.2", "verified": True})

    async with client(handler) as api:
        assert await api.skill_version("https://retake.example/skill.json") == "2.1.2"
        assert await api.verification_status() is True
    foreign, own = seen
    assert foreign.url.host == "retake.example"
    assert "authorization" not in foreign.headers, "no token for a foreign host"
    assert (own.url.host, own.url.port) == ("127.0.0.1", 8787)
    assert own.headers["authorization"] == f"Bearer {TOKEN}"


def test_base_url_must_be_http() -> None:
    """A base URL that is not http(s) is a clear ConfigError, before any request."""
    with pytest.raises(ConfigError, match="RETAKE_BASE_URL"):
        RetakeClient("ftp://retake.tv/api/v1", TOKEN)


async def test_token_bearing_request_to_another_host_is_blocked() -> None:
    """The last-line guard: a request with the token to any other origin never leaves."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async with client(handler) as api:
        for url in ("https://evil.example/api/v1/agent/rtmp",
                    "http://127.0.0.1:8788/api/v1/agent/rtmp",  # same host, other port
                    "https://127.0.0.1:8787/api/v1/agent/rtmp"):  # same port, other scheme
            with pytest.raises(UnsafeRequestError) as info:
                await api._send("POST", url, absolute=True)
            assert_clean(info.value)
    assert seen == []
