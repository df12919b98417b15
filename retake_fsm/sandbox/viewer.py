"""The viewer page: `/` lists the agents, `/<agent_name>` shows one stream.

Plain HTML and a little JS from `static/`, no build step. The page polls
`/_sandbox/view/...` (JSON) for live state, viewers, the newest thumbnail and
the chat transcript, and posts chat as a named viewer. A page that polls
counts as a viewer while it keeps polling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .api import MESSAGE_MAX, profile
from .http import error_response
from .platform import Platform

STATIC = Path(__file__).with_name("static")
VIEWER_MAX = 40


def _platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


async def index_page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def agent_page(request: Request) -> Response:
    agent = _platform(request).store.find_agent(request.path_params["name"])
    if agent is None:
        return FileResponse(STATIC / "agent.html", status_code=404, media_type="text/html")
    return FileResponse(STATIC / "agent.html", media_type="text/html")


async def view_agents(request: Request) -> Response:
    p = _platform(request)
    agents = sorted(p.store.data.agents.values(), key=lambda a: a.created_at, reverse=True)
    return JSONResponse({"agents": [profile(p, a) for a in agents]})


async def view_agent(request: Request) -> Response:
    p = _platform(request)
    agent = p.store.find_agent(request.path_params["name"])
    if agent is None:
        return error_response(404, f"no agent named {request.path_params['name']!r}")
    viewer = request.query_params.get("viewer")
    if viewer:
        p.note_watcher(agent, viewer[:64])
    recs = p.store.comments_for(agent, limit=100)
    data: dict[str, Any] = profile(p, agent)
    data["uptime_seconds"] = p.uptime(agent)
    data["comments"] = [r.public() for r in reversed(recs)]  # oldest first for a transcript
    return JSONResponse(data)


async def view_chat(request: Request) -> Response:
    p = _platform(request)
    agent = p.store.find_agent(request.path_params["name"])
    if agent is None:
        return error_response(404, f"no agent named {request.path_params['name']!r}")
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "body must be JSON: {\"viewer\": ..., \"text\": ...}")
    viewer = str(body.get("viewer") or "").strip()[:VIEWER_MAX] if isinstance(body, dict) else ""
    text = str(body.get("text") or "").strip() if isinstance(body, dict) else ""
    if not viewer or not text:
        return error_response(400, "both a viewer name and a message are needed")
    if len(text) > MESSAGE_MAX:
        return error_response(400, f"message longer than {MESSAGE_MAX} characters")
    rec = p.store.add_comment(agent, text, p.viewer_author(viewer), from_agent=False)
    p.calls.add("viewer", event="chat", agent=agent.name, viewer=viewer, comment_id=rec.id)
    return JSONResponse(rec.public())


def routes() -> list[Route | Mount]:
    return [
        Route("/_sandbox/view/agents", view_agents, methods=["GET"]),
        Route("/_sandbox/view/agents/{name}", view_agent, methods=["GET"]),
        Route("/_sandbox/view/agents/{name}/chat", view_chat, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/", index_page, methods=["GET"]),
    ]


def agent_page_route() -> Route:
    """Last in the table: `/<agent_name>` must not shadow any other route."""
    return Route("/{name}", agent_page, methods=["GET"])
