"""HTTP plumbing shared by the API, admin and viewer routes: errors, bodies, the call wrapper.

Every `/api/v1` endpoint goes through `api_endpoint`, which records the call,
applies the fault rules (latency, forced status, hang, down), authenticates
(Bearer header or an `access_token` body field) and turns `HttpError` into the
platform's JSON error body `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .platform import Platform
from .records import mask_auth
from .store import Agent

API_PREFIX = "/api/v1/"
HANG_LIMIT = 600.0


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


@dataclass
class Call:
    """One API request, parsed once."""

    request: Request
    platform: Platform
    json: dict[str, Any] = field(default_factory=dict)
    form: FormData | None = None
    agent: Agent | None = None

    def field(self, name: str) -> Any:
        if name in self.json:
            return self.json[name]
        if self.form is not None:
            value = self.form.get(name)
            return value if isinstance(value, str) else None
        return None

    def require_agent(self) -> Agent:
        assert self.agent is not None
        return self.agent


Handler = Callable[[Call], Awaitable[Response | dict[str, Any]]]


async def _parse_body(request: Request) -> tuple[dict[str, Any], FormData | None, Any]:
    """-> (json object, form, summary for the call log)."""
    if request.method in ("GET", "HEAD", "DELETE"):
        return {}, None, None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=4, max_fields=50)
        except Exception as exc:  # malformed multipart: the platform says 400
            raise HttpError(400, f"malformed form body: {exc}") from None
        summary: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                await value.seek(0)
                summary[name] = {"filename": value.filename, "content_type": value.content_type,
                                 "size": len(data)}
            else:
                summary[name] = value
        return {}, form, {"form": summary}
    raw = await request.body()
    if not raw.strip():
        return {}, None, None
    try:
        body = json.loads(raw)
    except ValueError:
        raise HttpError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object")
    return body, None, body


async def hang(request: Request, platform: Platform) -> None:
    """Never answer: wait until the client gives up or the sandbox stops."""
    deadline = time.monotonic() + HANG_LIMIT
    while time.monotonic() < deadline and not platform.shutting_down.is_set():
        if await _disconnected(request):
            return
        await asyncio.sleep(0.1)


async def _disconnected(request: Request) -> bool:
    try:
        async with asyncio.timeout(0.01):
            message = await request.receive()
    except TimeoutError:
        return False
    return bool(message.get("type") == "http.disconnect")


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def api_endpoint(platform: Platform, handler: Handler, *, auth: bool) -> Callable[
        [Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        path = request.url.path
        rel = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path.lstrip("/")
        rec: dict[str, Any] = {
            "method": request.method, "path": path, "query": dict(request.query_params),
            "auth": mask_auth(request.headers.get("authorization")),
        }
        status: int | None = None
        error: str | None = None
        call = Call(request=request, platform=platform)
        decision = platform.faults.decide(request.method, rel)
        if decision.rules:
            rec["fault"] = decision.rules
        try:
            call.json, call.form, rec["body"] = await _parse_body(request)
            if decision.latency:
                await asyncio.sleep(decision.latency)
            if decision.hang:
                await hang(request, platform)
                status, error = 504, "injected hang"
                return error_response(504, "injected hang: no answer")
            if decision.status:
                status = decision.status
                error = "injected fault"
                return error_response(status, f"injected fault: HTTP {status}")
            if auth:
                token = bearer(request) or call.field("access_token")
                agent = platform.store.agent_by_token(token) if isinstance(token, str) else None
                if agent is None:
                    raise HttpError(401, "missing or invalid access token" if token is None
                                    else "invalid access token")
                call.agent = agent
                rec["agent"] = agent.name
            result = await handler(call)
            response = result if isinstance(result, Response) else JSONResponse(result)
            status = response.status_code
            return response
        except HttpError as exc:
            status, error = exc.status, exc.message
            return error_response(exc.status, exc.message, **exc.extra)
        finally:
            rec["status"] = status
            if error:
                rec["error"] = error
            rec["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            platform.calls.add("api", **rec)

    return endpoint
