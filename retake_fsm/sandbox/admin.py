"""`/_sandbox/...`: the admin API (loopback only, no agent token) and nginx's callbacks.

See docs/sandbox.md for every route. Admin calls are not recorded in the call
log (tests read it to see what the *client* did); ingest events are.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InputError
from ..redact import mask
from ..settings import parse_duration
from .faults import FaultRule, make_rule, parse_spec
from .http import HttpError, error_response
from .platform import Platform
from .store import Agent

AdminHandler = Callable[[Request, Platform, dict[str, Any]], Awaitable[Any]]


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return host.startswith("127.") or host == "::1"


def admin_endpoint(platform: Platform, handler: AdminHandler) -> Callable[
        [Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not _loopback(request):
            return error_response(403, "the sandbox admin API answers loopback clients only")
        try:
            body: dict[str, Any] = {}
            raw = await request.body()
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise HttpError(400, "admin body must be JSON") from None
                if not isinstance(parsed, dict):
                    raise HttpError(400, "admin body must be a JSON object")
                body = parsed
            result = await handler(request, platform, body)
        except HttpError as exc:
            return error_response(exc.status, exc.message, **exc.extra)
        except InputError as exc:
            return error_response(400, str(exc))
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


def _agent(p: Platform, body: dict[str, Any], *, required: bool = True) -> Agent | None:
    ident = body.get("agent")
    if ident is None:
        if required:
            raise HttpError(400, "'agent' (name or userDbId) is required")
        return None
    agent = p.store.find_agent(str(ident))
    if agent is None:
        raise HttpError(404, f"no agent {ident!r}")
    return agent


def _seconds(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise HttpError(400, f"{key}: {exc}") from None


# info and records -------------------------------------------------------------
async def info(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    e = p.endpoints
    return {
        "root_url": e.root_url, "base_url": e.base_url, "rtmp_url": e.rtmp_url,
        "skill_url": f"{e.root_url}/skill.json", "admin_url": f"{e.root_url}/_sandbox",
        "api_port": e.api_port, "rtmp_port": e.rtmp_port, "nginx_port": e.nginx_port,
        "nginx_pid": p.nginx.pid if p.nginx else None,
        "nginx_workers": p.nginx.worker_pids() if p.nginx else [],
        "data_dir": str(p.data_dir), "skill_version": p.store.data.skill_version,
        "tweet_has_code": p.store.data.tweet_has_code, "seq": p.calls.seq,
    }


async def get_calls(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    q = request.query_params
    try:
        since = int(q.get("since", "0"))
        limit = int(q["limit"]) if "limit" in q else None
    except ValueError:
        raise HttpError(400, "since and limit must be integers") from None
    calls = p.calls.query(since=since, kind=q.get("kind"), path=q.get("path"),
                          method=q.get("method"), event=q.get("event"), limit=limit)
    return {"seq": p.calls.seq, "calls": calls}


async def clear_calls(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    p.calls.clear()
    return {"seq": p.calls.seq}


# faults --------------------------------------------------------------------------
def _rules(body: dict[str, Any]) -> tuple[list[FaultRule], int | None]:
    items = body.get("rules", [])
    if isinstance(items, str | dict):
        items = [items]
    if not isinstance(items, list):
        raise HttpError(400, "'rules' must be a list of specs (strings) or objects")
    rules: list[FaultRule] = []
    seed = body.get("seed")
    for item in items:
        if isinstance(item, str):
            found, spec_seed = parse_spec(item)
            rules.extend(found)
            seed = spec_seed if spec_seed is not None else seed
        elif isinstance(item, dict):
            rules.append(make_rule(item))
        else:
            raise HttpError(400, f"fault rule {item!r}: a spec string or an object")
    if seed is not None and not isinstance(seed, int):
        raise HttpError(400, "seed must be an integer")
    return rules, seed


async def get_faults(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    return p.faults.snapshot()


async def put_faults(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    rules, seed = _rules(body)
    if request.method == "PUT":
        p.faults.set(rules, seed)
    else:
        if seed is not None:
            p.faults.seed = seed
        p.faults.add(rules)
    p.calls.add("admin", event="faults", rules=[r.describe() for r in p.faults.rules],
                seed=p.faults.seed)
    return p.faults.snapshot()


async def clear_faults(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    p.faults.clear()
    thawed = p.unfreeze()
    continued = p.nginx.continue_workers() if p.nginx else []
    if thawed or continued:
        p.calls.add("ingest", event="faults_cleared", unfrozen=thawed, continued=continued)
    return p.faults.snapshot()


# switches --------------------------------------------------------------------------
async def post_comment(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = _agent(p, body)
    assert agent is not None
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise HttpError(400, "'text' is required")
    viewer = str(body.get("viewer") or "viewer")
    rec = p.store.add_comment(agent, text.strip(), p.viewer_author(viewer), from_agent=False)
    return rec.public()


async def set_verification(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    value = body.get("tweet_has_code")
    if not isinstance(value, bool):
        raise HttpError(400, "'tweet_has_code' must be true or false")
    p.store.data.tweet_has_code = value
    p.store.save()
    return {"tweet_has_code": value}


async def set_skill(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    version = body.get("version")
    if not isinstance(version, str) or not version.strip():
        raise HttpError(400, "'version' must be a non-empty string")
    p.store.data.skill_version = version.strip()
    p.store.save()
    return {"version": p.store.data.skill_version}


async def set_viewers(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = _agent(p, body)
    assert agent is not None
    value = body.get("viewers")
    if value is not None and (not isinstance(value, int) or value < 0):
        raise HttpError(400, "'viewers' must be a non-negative integer or null")
    agent.viewers = value
    p.store.save()
    return {"agent": agent.name, "viewers": value}


async def reset(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    p.drop()
    p.faults.clear()
    p.unfreeze()
    p.store.reset(keep_switches=False)
    p.calls.clear()
    return {"reset": True}


async def agent_state(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = p.store.find_agent(request.path_params["agent"])
    if agent is None:
        raise HttpError(404, f"no agent {request.path_params['agent']!r}")
    conn = p.publisher(agent)
    return {
        "name": agent.name, "userDbId": agent.user_db_id, "agent_id": agent.agent_id,
        "verified": agent.verified, "verification_code": agent.verification_code,
        "key": agent.key_hint, "keys_issued": agent.keys_issued,
        "session": agent.session.model_dump() if agent.session else None,
        "sessions": len(agent.sessions), "token": agent.token.model_dump() if agent.token
        else None, "thumbnail_url": agent.thumbnail_url, "thumbnails": agent.thumbnails,
        "is_live": p.is_live(agent), "viewers": p.viewers(agent), "uptime": p.uptime(agent),
        "publisher": conn.info() if conn else None,
    }


# ingest controls --------------------------------------------------------------------
async def connections(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    conns = p.relay.conns.values() if p.relay else []
    return {"connections": [c.info() for c in conns]}


async def ingest_drop(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = _agent(p, body, required=False)
    dropped = p.drop(agent)
    p.calls.add("ingest", event="drop", agent=agent.name if agent else None,
                connections=dropped)
    return {"dropped": dropped}


async def ingest_freeze(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = _agent(p, body, required=False)
    seconds = _seconds(body, "seconds")
    frozen = p.freeze(agent, seconds)
    p.calls.add("ingest", event="freeze", agent=agent.name if agent else None,
                connections=frozen, seconds=seconds)
    return {"frozen": frozen, "seconds": seconds}


async def ingest_unfreeze(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    thawed = p.unfreeze()
    p.calls.add("ingest", event="unfreeze", connections=thawed)
    return {"unfrozen": thawed}


async def ingest_rotate(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    agent = _agent(p, body)
    assert agent is not None
    dropped = p.rotate_key(agent)
    p.calls.add("ingest", event="rotate_key", agent=agent.name, connections=dropped)
    return {"rotated": True, "dropped": dropped}


async def ingest_stop_worker(request: Request, p: Platform, body: dict[str, Any]) -> Any:
    seconds = _seconds(body, "seconds") or 2.0
    if p.nginx is None:
        raise HttpError(409, "no nginx running in this sandbox")
    pids = p.stop_worker(seconds)
    p.calls.add("ingest", event="worker_stopped", pids=pids, seconds=seconds)
    return {"stopped": pids, "seconds": seconds}


# nginx's callbacks (form-encoded, not JSON) ---------------------------------------
async def _callback_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def on_publish(request: Request) -> Response:
    if not _loopback(request):
        return error_response(403, "loopback only")
    p: Platform = request.app.state.platform
    form = await _callback_form(request)
    key = form.get("name", "")
    accepted, reason, agent = p.on_publish(addr=form.get("addr", ""), app=form.get("app", ""),
                                           key=key)
    status = 200 if accepted else 403
    p.calls.add("ingest", event="publish" if accepted else "publish_refused", status=status,
                agent=agent.name if agent else None, key=mask(key) if key else None,
                addr=form.get("addr"), reason=reason)
    return JSONResponse({"accepted": accepted, "reason": reason}, status_code=status)


async def on_publish_done(request: Request) -> Response:
    p: Platform = request.app.state.platform
    form = await _callback_form(request)
    conn = p.on_publish_done(addr=form.get("addr", ""))
    key = form.get("name", "")
    p.calls.add("ingest", event="publish_done", key=mask(key) if key else None,
                addr=form.get("addr"), connection=conn.id if conn else None,
                rx_bytes=conn.rx_bytes if conn else None)
    return JSONResponse({"ok": True})


ADMIN: list[tuple[str, list[str], AdminHandler]] = [
    ("/info", ["GET"], info),
    ("/calls", ["GET"], get_calls),
    ("/calls", ["DELETE"], clear_calls),
    ("/faults", ["GET"], get_faults),
    ("/faults", ["PUT", "POST"], put_faults),
    ("/faults", ["DELETE"], clear_faults),
    ("/comments", ["POST"], post_comment),
    ("/verification", ["PUT", "POST"], set_verification),
    ("/skill", ["PUT", "POST"], set_skill),
    ("/viewers", ["PUT", "POST"], set_viewers),
    ("/reset", ["POST"], reset),
    ("/agents/{agent}", ["GET"], agent_state),
    ("/ingest/connections", ["GET"], connections),
    ("/ingest/drop", ["POST"], ingest_drop),
    ("/ingest/freeze", ["POST"], ingest_freeze),
    ("/ingest/unfreeze", ["POST"], ingest_unfreeze),
    ("/ingest/rotate-key", ["POST"], ingest_rotate),
    ("/ingest/stop-worker", ["POST"], ingest_stop_worker),
]


def routes(platform: Platform) -> list[Route]:
    out = [
        Route("/_sandbox/ingest/on_publish", on_publish, methods=["POST", "GET"]),
        Route("/_sandbox/ingest/on_publish_done", on_publish_done, methods=["POST", "GET"]),
    ]
    for path, methods, handler in ADMIN:
        out.append(Route(f"/_sandbox{path}", admin_endpoint(platform, handler),
                         methods=methods))
    return out
