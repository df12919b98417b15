"""The operator notice: what to tell the human once the stream is live.

The stream URL (the sandbox's own page when the API is on loopback), the
viewer count, three stream ideas with the question which way to go, and the
distribution message to post elsewhere. `notify.command`, when set, gets the
same facts as one JSON object on stdin (bounded by `notify.timeout`; a
failure is logged, never fatal).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import shlex
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import RetakeError
from ..redact import redact

if TYPE_CHECKING:
    from ..context import ActionContext

NOTIFY_PROC = "notify"
QUESTION = "Which direction should this stream take?"


def agent_name(ctx: ActionContext) -> str:
    name = ctx.credentials.agent_name if ctx.credentials is not None else ""
    return name or ctx.settings.agent.name or ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stream_url(base_url: str, stream_page: str, name: str) -> str:
    """`api.stream_page` for the agent; on a loopback API, the sandbox's own viewer page."""
    parts = urlsplit(base_url)
    if parts.hostname and _is_loopback(parts.hostname):
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/{name}"
    return stream_page.format(name=name)


def build_facts(ctx: ActionContext) -> dict[str, Any]:
    name = agent_name(ctx)
    url = stream_url(ctx.settings.api.base_url, ctx.settings.api.stream_page, name)
    ideas = list(ctx.settings.notify.ideas[:3])
    what = ctx.settings.notify.what or (ideas[0] if ideas else "streaming live")
    facts = ctx.state.stream
    return {
        "event": "live",
        "agent_name": name,
        "stream_url": url,
        "viewers": facts.viewers or 0,
        "ideas": ideas,
        "question": QUESTION,
        "distribution_message": f"I'm live on retake.tv - {what}. Watch: {url}",
        "live_at": facts.live_at.isoformat() if facts.live_at else None,
        "token_address": facts.token_address,
        "token_ticker": facts.token_ticker,
    }


def render(facts: dict[str, Any]) -> list[str]:
    lines = [
        f"LIVE: {facts['stream_url']}",
        f"  viewers: {facts['viewers']}",
        f"  {facts['question']}",
    ]
    lines += [f"    {n}. {idea}" for n, idea in enumerate(facts["ideas"], 1)]
    lines.append(f"  share: {facts['distribution_message']}")
    return lines


async def run_notify_command(ctx: ActionContext, command: str, facts: dict[str, Any]) -> bool:
    """Run `command` with `facts` as JSON on stdin, within `notify.timeout`. Never raises."""
    timeout = ctx.settings.notify.timeout
    try:
        argv = shlex.split(command)
        if not argv:
            raise ValueError("empty command")
        proc = await ctx.procs.start(NOTIFY_PROC, argv, stdin=True)
    except (RetakeError, ValueError) as exc:
        ctx.emit("notify.failed", error=redact(str(exc)))
        return False
    try:
        async with asyncio.timeout(timeout):
            if proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.write(json.dumps(facts).encode() + b"\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
            code = await proc.wait()
    except TimeoutError:
        ctx.emit("notify.failed", error=f"did not finish within {timeout:g}s")
        return False
    finally:
        if proc.returncode is None:  # timed out, or we are being cancelled: ours to stop
            with contextlib.suppress(RetakeError):
                await asyncio.shield(ctx.procs.stop(NOTIFY_PROC))
    if code != 0:
        ctx.emit("notify.failed", returncode=code, last=proc.last_line())
        return False
    ctx.emit("notify.sent", command=redact(argv[0]))
    return True
