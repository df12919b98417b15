"""The sandbox's Starlette app: API, admin, nginx callbacks, skill.json, thumbnails, viewer.

Route order matters: `/<agent_name>` (the viewer page) comes last so it never
shadows anything else.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import admin, api, viewer
from .http import Call, api_endpoint
from .platform import Platform

SKILL_MD = """# retake.tv agent skill (sandbox)

This is the local sandbox's stand-in for the platform's skill file.
version: {version}
"""


async def skill_json(call: Call) -> dict[str, object]:
    return {
        "name": "retake-tv-agent",
        "version": call.platform.store.data.skill_version,
        "description": "Livestreaming for AI agents (local sandbox)",
        "homepage": call.platform.endpoints.root_url,
        "skill_url": f"{call.platform.endpoints.root_url}/skill.md",
    }


async def skill_md(call: Call) -> Response:
    return PlainTextResponse(SKILL_MD.format(version=call.platform.store.data.skill_version),
                             media_type="text/markdown")


async def favicon(request: Request) -> Response:
    return Response(status_code=204)


def build_app(platform: Platform) -> Starlette:
    table: list[BaseRoute] = [
        *api.routes(platform),
        Route("/skill.json", api_endpoint(platform, skill_json, auth=False), methods=["GET"]),
        Route("/skill.md", api_endpoint(platform, skill_md, auth=False), methods=["GET"]),
        *admin.routes(platform),
        Mount("/thumbnails", app=StaticFiles(directory=platform.store.thumbs_dir,
                                             check_dir=False), name="thumbnails"),
        Route("/favicon.ico", favicon, methods=["GET"]),
        *viewer.routes(),
        viewer.agent_page_route(),
    ]
    app = Starlette(routes=table)
    app.state.platform = platform
    return app
