"""The edge where httpx meets retake-fsm: every failure becomes an `ApiError`.

    status / failure            raised               retryable
    400                         BadRequestError      no   (names the field when the body does)
    401                         AuthError            no   "re-register or set RETAKE_ACCESS_TOKEN"
    404                         NotFoundError        no
    409                         ConflictError        no   (the engine's recover edge)
    429, 5xx                    ServerError          yes
    other 4xx                   ApiError             no
    3xx                         UnsafeRequestError   no   (redirects are never followed)
    timeout                     ApiTimeout           yes
    connection refused/reset    NetworkError         yes
    2xx, malformed body         PayloadError         no

Messages are redacted (no token, no stream key) and carry the endpoint.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import ValidationError

from ..errors import (
    ApiError,
    ApiTimeout,
    AuthError,
    BadRequestError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PayloadError,
    ServerError,
    UnsafeRequestError,
)
from ..redact import redact

# Request fields a 400 may be about, as the platform names them -> as the operator sets them.
FIELD_HINTS: dict[str, str] = {
    "agent_name": "--name",
    "agent_description": "--description",
    "image_url": "--image-url",
    "wallet_address": "--wallet",
    "ticker": "--ticker",
    "tweet_url": "--tweet-url",
    "access_token": "RETAKE_ACCESS_TOKEN",
    "message": "the chat message",
    "destination_user_id": "userDbId",
    "image": "the thumbnail image",
}
_MAX_QUOTE = 200


def _short(text: str) -> str:
    text = " ".join(text.split())
    return redact(text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + "…")


def platform_reason(response: httpx.Response) -> tuple[str, str | None]:
    """What the platform said (its `error`/`message`/`detail`), and the field if it names one."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _short(response.text) or response.reason_phrase, None
    reason = ""
    field: str | None = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                reason = value
                break
            if isinstance(value, dict | list) and value:
                reason = json.dumps(value)
                break
        named = body.get("field") or body.get("param")
        if isinstance(named, str) and named:
            field = named
    if not reason:
        reason = json.dumps(body) if body not in (None, "", {}) else response.reason_phrase
    if field is None:
        for name in FIELD_HINTS:
            if re.search(rf"\b{re.escape(name)}\b", reason):
                field = name
                break
    return _short(reason), field


def error_for_response(response: httpx.Response, endpoint: str) -> ApiError:
    """The ApiError for a non-2xx answer."""
    status = response.status_code
    reason, field = platform_reason(response)
    kw: dict[str, Any] = {"status_code": status, "endpoint": endpoint}
    if 300 <= status < 400:
        target = response.headers.get("location", "?")
        return UnsafeRequestError(
            f"{endpoint}: the platform answered {status} redirecting to {_short(target)}; "
            "redirects are never followed (the token stays with api.base_url)",
            hint="set RETAKE_BASE_URL / api.base_url to the final URL", **kw,
        )
    if status == 400:
        fix = f"fix {FIELD_HINTS.get(field, field)} and retry" if field else None
        return BadRequestError(f"{endpoint}: the platform refused the request (400): {reason}",
                               field=field, hint=fix, **kw)
    if status == 401:
        return AuthError(f"{endpoint}: token rejected: re-register or set RETAKE_ACCESS_TOKEN "
                         f"(platform said: {reason})", **kw)
    if status == 404:
        return NotFoundError(f"{endpoint}: not found (404): {reason}",
                             hint="check the agent / streamer id", **kw)
    if status == 409:
        return ConflictError(f"{endpoint}: conflict (409): {reason}",
                             hint="no active session: stream/start must come first", **kw)
    if status == 429 or status >= 500:
        return ServerError(f"{endpoint}: the platform failed ({status}): {reason}",
                           hint="the platform may be down; retry later, report it if it persists",
                           **kw)
    return ApiError(f"{endpoint}: unexpected answer {status}: {reason}", **kw)


def error_for_exception(exc: httpx.HTTPError | httpx.InvalidURL, endpoint: str) -> ApiError:
    """The ApiError for an httpx failure before any answer arrived."""
    detail = _short(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ApiTimeout(f"{endpoint}: the platform did not answer in time ({type(exc).__name__})",
                          endpoint=endpoint, hint="check the network, or raise api.timeout")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ApiError(f"{endpoint}: unusable URL: {detail}", endpoint=endpoint,
                        hint="api.base_url must be an http(s) URL")
    if isinstance(exc, httpx.TransportError):
        return NetworkError(f"{endpoint}: cannot reach the platform: {detail}",
                            endpoint=endpoint, hint="check the network and api.base_url")
    return NetworkError(f"{endpoint}: request failed: {detail}", endpoint=endpoint)


def payload_error(endpoint: str, problem: str | ValidationError, body: Any = None) -> PayloadError:
    """A 2xx whose body is not what the contract says, quoting what was wrong."""
    if isinstance(problem, ValidationError):
        first = problem.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        got = first.get("input")
        shown = "" if isinstance(got, dict) else f" (got {_short(json.dumps(got, default=str))})"
        more = f" and {problem.error_count() - 1} more" if problem.error_count() > 1 else ""
        text = f"`{where}`: {first['msg']}{shown}{more}"
    else:
        text = problem
    return PayloadError(f"{endpoint}: malformed answer from the platform: {_short(text)}",
                        endpoint=endpoint, hint="the platform contract may have moved; "
                        "check `retake-fsm status` and the skill version")
