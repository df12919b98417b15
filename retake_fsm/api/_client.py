"""`RetakeClient`: the one door to the retake.tv agent API (httpx.AsyncClient underneath).

- Every endpoint takes and returns pydantic models (see `_models.py`).
- Every failure is an `ApiError` subclass (see `_errors.py`); no httpx exception
  leaves this package.
- The Bearer token is attached per request, only to the configured base URL's
  scheme+host+port; redirects are never followed (a 3xx is an
  `UnsafeRequestError`), so the token cannot be walked to another host.
- Timeouts are on by default (`api.timeout`, `api.connect_timeout`).
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from loguru import logger
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..errors import ApiError, AuthError, ConfigError, NotFoundError, UnsafeRequestError
from ..redact import register_secret
from ._errors import error_for_exception, error_for_response, payload_error
from ._models import (
    Comment,
    RegisterRequest,
    RegisterResponse,
    RtmpCredentials,
    StreamStart,
    StreamStatus,
    StreamStop,
    ThumbnailResult,
    normalise_comments,
)

if TYPE_CHECKING:
    from ..credentials import Credentials
    from ..settings import Settings

M = TypeVar("M", bound=BaseModel)
Origin = tuple[str, str, int]

SKILL_TIMEOUT = 3.0  # the skill check must never hold up a go-live for long
MAX_COMMENTS = 100  # the platform's cap on `limit`


def origin_of(url: httpx.URL) -> Origin:
    """scheme, host, port (the default port made explicit): what "the same host" means."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, (url.host or "").lower(), port)


def _check_base_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"api.base_url {base_url!r} is not a URL: {exc}",
                          hint="set RETAKE_BASE_URL to e.g. https://retake.tv/api/v1") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"api.base_url {base_url!r} must be an http(s) URL with a host",
                          hint="set RETAKE_BASE_URL to e.g. https://retake.tv/api/v1")
    return url


class _Flag(BaseModel):
    verified: bool


class _Message(BaseModel):
    verification_message: str


class RetakeClient:
    """Async client for the retake.tv agent API; use as `async with RetakeClient(...) as api`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = _check_base_url(base_url)
        self.base_url = str(url).rstrip("/")
        self._origin = origin_of(url)
        self._token: str | None = None
        self.token = token
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": f"retake-fsm/{__version__}"},
            event_hooks={"request": [self._guard]},
        )

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None) -> RetakeClient:
        return cls(
            settings.api.base_url,
            credentials.access_token if credentials else None,
            timeout=settings.api.timeout,
            connect_timeout=settings.api.connect_timeout,
        )

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        register_secret(value)
        self._token = value or None

    def __repr__(self) -> str:
        return f"RetakeClient({self.base_url!r}, token={'set' if self._token else 'unset'})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RetakeClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # -- the agent endpoints ------------------------------------------------------------

    async def register(self, req: RegisterRequest) -> RegisterResponse:
        endpoint = "agent/register"
        response = await self._send("POST", endpoint, auth=False, json=req.model_dump())
        body = self._json(response, endpoint)
        if isinstance(body, dict) and isinstance(body.get("access_token"), str):
            register_secret(body["access_token"])
        return self._model(RegisterResponse, body, endpoint)

    async def prepare_verify(self) -> str:
        """The exact text the human must tweet."""
        endpoint = "agent/prepare-verify"
        response = await self._send("POST", endpoint)
        return self._model(_Message, self._json(response, endpoint), endpoint).verification_message

    async def verify(self, tweet_url: str) -> bool:
        endpoint = "agent/verify"
        response = await self._send("POST", endpoint, json={"tweet_url": tweet_url})
        return self._model(_Flag, self._json(response, endpoint), endpoint).verified

    async def verification_status(self) -> bool:
        endpoint = "agent/verification-status"
        response = await self._send("GET", endpoint)
        return self._model(_Flag, self._json(response, endpoint), endpoint).verified

    async def rtmp(self) -> RtmpCredentials:
        """A fresh ingest URL and key (the key is registered as a secret at once)."""
        endpoint = "agent/rtmp"
        response = await self._send("POST", endpoint)
        body = self._json(response, endpoint)
        if isinstance(body, dict) and isinstance(body.get("key"), str):
            register_secret(body["key"])
        return self._model(RtmpCredentials, body, endpoint)

    async def stream_start(self) -> StreamStart:
        endpoint = "agent/stream/start"
        response = await self._send("POST", endpoint)
        return self._model(StreamStart, self._json(response, endpoint), endpoint)

    async def stream_status(self) -> StreamStatus:
        endpoint = "agent/stream/status"
        response = await self._send("GET", endpoint)
        return self._model(StreamStatus, self._json(response, endpoint), endpoint)

    async def update_thumbnail(self, image: bytes, *, filename: str = "thumbnail.png",
                               content_type: str = "image/png") -> ThumbnailResult:
        endpoint = "agent/update-thumbnail"
        files = {"image": (filename, image, content_type)}
        response = await self._send("POST", endpoint, files=files)
        return self._model(ThumbnailResult, self._json(response, endpoint), endpoint)

    async def chat_send(self, message: str, destination_user_id: str) -> None:
        await self._send("POST", "agent/stream/chat/send",
                         json={"message": message, "destination_user_id": destination_user_id})

    async def comments(self, user_db_id: str, *, limit: int = 50,
                       before_id: str | None = None) -> list[Comment]:
        """Comments on our stream, normalised from either shape, OLDEST FIRST."""
        endpoint = "agent/stream/comments"
        params: dict[str, str | int] = {
            "userDbId": user_db_id, "limit": max(1, min(MAX_COMMENTS, limit)),
        }
        if before_id:
            params["beforeId"] = before_id
        response = await self._send("GET", endpoint, params=params)
        body = self._json(response, endpoint)
        try:
            return normalise_comments(body)
        except (ValueError, ValidationError) as exc:
            raise payload_error(endpoint, str(exc)) from exc

    async def stream_stop(self) -> StreamStop:
        endpoint = "agent/stream/stop"
        response = await self._send("POST", endpoint)
        return self._model(StreamStop, self._json(response, endpoint), endpoint)

    # -- public look-ups (no token) -----------------------------------------------------

    async def streamer(self, identifier: str) -> dict[str, Any]:
        """`users/streamer/:identifier` (name, id or wallet), as the platform serves it."""
        endpoint = "users/streamer"
        response = await self._send("GET", f"users/streamer/{quote(identifier, safe='')}",
                                    auth=False, endpoint=endpoint)
        body = self._json(response, endpoint)
        if not isinstance(body, dict):
            raise payload_error(endpoint, f"expected a JSON object, got {type(body).__name__}")
        return body

    async def active_session(self, streamer_id: str) -> dict[str, Any] | None:
        """`sessions/active/:streamer_id/`; None when the streamer has no live session."""
        endpoint = "sessions/active"
        try:
            response = await self._send("GET", f"sessions/active/{quote(streamer_id, safe='')}/",
                                        auth=False, endpoint=endpoint)
        except NotFoundError:
            return None
        body = self._json(response, endpoint) if response.content.strip() else None
        if body in (None, {}, []):
            return None
        if not isinstance(body, dict):
            raise payload_error(endpoint, f"expected a JSON object, got {type(body).__name__}")
        return body

    async def skill_version(self, url: str) -> str:
        """The `version` of the platform's skill.json at `url` (no token; short timeout)."""
        endpoint = "skill.json"
        response = await self._send("GET", self._public_url(url, endpoint), auth=False,
                                    absolute=True, endpoint=endpoint, timeout=SKILL_TIMEOUT)
        body = self._json(response, endpoint)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version.strip():
            raise payload_error(endpoint, "no `version` string")
        return version.strip()

    async def fetch_text(self, url: str) -> str:
        """A public text document (the skill.md for the operator to read; never executed)."""
        endpoint = url.rsplit("/", 1)[-1]
        response = await self._send("GET", self._public_url(url, endpoint), auth=False,
                                    absolute=True, endpoint=endpoint, timeout=SKILL_TIMEOUT)
        return response.text

    # -- plumbing -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @staticmethod
    def _public_url(url: str, endpoint: str) -> str:
        """An absolute http(s) URL of a public document (fetched without the token)."""
        if not url.startswith(("http://", "https://")):
            raise ApiError(f"{endpoint}: {url!r} is not an http(s) URL",
                           endpoint=endpoint, hint="check api.skill_url / RETAKE_SKILL_URL")
        return url

    async def _guard(self, request: httpx.Request) -> None:
        """Last line of defence: a request carrying our token goes only to the base origin."""
        if "authorization" in request.headers and origin_of(request.url) != self._origin:
            raise UnsafeRequestError(
                f"refusing to send the access token to {request.url.host}: "
                f"it goes only to {self._origin[1]}",
                hint="check api.base_url",
            )

    async def _send(self, method: str, path: str, *, auth: bool = True, absolute: bool = False,
                    endpoint: str | None = None, timeout: float | None = None,
                    **kw: Any) -> httpx.Response:
        endpoint = endpoint or path
        url = path if absolute else self._url(path)
        headers: dict[str, str] = {}
        if auth:
            if not self._token:
                raise AuthError(f"{endpoint}: no access token",
                                hint="run `retake-fsm register` or set RETAKE_ACCESS_TOKEN",
                                endpoint=endpoint)
            headers["Authorization"] = f"Bearer {self._token}"
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        started = time.monotonic()
        try:
            response = await self._http.request(method, url, headers=headers, **kw, **extra)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.debug("api {} {} failed: {}", method, endpoint, type(exc).__name__)
            raise error_for_exception(exc, endpoint) from exc
        logger.debug("api {} {} -> {} in {:.0f} ms", method, endpoint, response.status_code,
                     (time.monotonic() - started) * 1000)
        if not response.is_success:
            raise error_for_response(response, endpoint)
        return response

    @staticmethod
    def _json(response: httpx.Response, endpoint: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = response.text.strip() or "an empty body"
            raise payload_error(endpoint, f"not JSON: {text}") from None

    @staticmethod
    def _model(cls: type[M], body: Any, endpoint: str) -> M:
        if not isinstance(body, dict):
            raise payload_error(endpoint, f"expected a JSON object, got {type(body).__name__}")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise payload_error(endpoint, exc) from None
