"""`retake-fsm status [--json] [--offline]`: where the agent stands.

Persisted facts first (state, since when, last error, next retry, the run
holding the profile, our processes); then, unless `--offline` and when
credentials exist, what the platform says (`stream/status`). A platform
failure is a warning: the persisted facts still print. Nothing secret is
ever printed (everything goes through `redact`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import RetakeError

if TYPE_CHECKING:
    from ..app import App
    from ..state import RunState

STREAMING = ("started", "encoding", "live")


def _ago(when: datetime, now: datetime) -> str:
    from ..settings import format_duration

    seconds = max(0.0, (now - when).total_seconds())
    return f"{format_duration(float(round(seconds)) or 0.001)} ago" if seconds >= 1 else "just now"


def _facts(app: App, state: RunState, holder: int | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "profile": app.paths.profile,
        "state": state.state,
        "since": state.since.isoformat(),
        "last_transition": state.last_transition,
        "last_error": state.last_error.model_dump(mode="json") if state.last_error else None,
        "next_retry": state.next_retry.isoformat() if state.next_retry else None,
        "running_pid": holder,
        "streams": state.streams,
        "recoveries": len(state.recoveries),
    }
    if state.state in STREAMING or state.processes:
        from ..procs import same_process

        facts["processes"] = {
            name: {"pid": rec.pid, "alive": same_process(rec.pid, rec.create_time)}
            for name, rec in state.processes.items()
        }
        facts["stream"] = state.stream.model_dump(mode="json", exclude_none=True)
        # the flat view scripts rely on: our live children by name, and the last known verdict
        facts["pids"] = {name: p["pid"] for name, p in facts["processes"].items() if p["alive"]}
        facts["is_live"] = state.stream.is_live
        facts["viewers"] = state.stream.viewers
    if state.final_stats and state.state == "stopped":
        facts["final_stats"] = state.final_stats
    return facts


async def _platform(app: App) -> tuple[dict[str, Any] | None, str | None]:
    """What the platform says, or why we could not ask (a warning, never fatal)."""
    from ..api import RetakeClient
    from ..credentials import load_credentials

    try:
        creds = load_credentials(app.paths)
        if creds is None:
            return None, None
        async with RetakeClient.from_settings(app.settings, creds) as api:
            st = await api.stream_status()
    except RetakeError as exc:
        return None, f"could not ask the platform: {exc}"
    page = app.settings.api.stream_page.format(name=creds.agent_name) \
        if creds.agent_name else None
    return {"is_live": st.is_live, "viewers": st.viewers, "uptime_seconds": st.uptime_seconds,
            "stream_url": page}, None


def _print_human(facts: dict[str, Any], now: datetime) -> None:
    since = datetime.fromisoformat(facts["since"])
    rows = [("profile", facts["profile"]),
            ("state", f"{facts['state']} (since {facts['since'][:19]}Z, {_ago(since, now)})")]
    if facts["last_transition"]:
        rows.append(("last", facts["last_transition"]))
    run = facts["running_pid"]
    rows.append(("run", f"PID {run} holds this profile" if run else "not running"))
    err = facts["last_error"]
    if err:
        during = f" during {err['transition']}" if err.get("transition") else ""
        rows.append(("error", f"{err['kind']}{during} at {err['at'][:19]}Z: {err['message']}"))
    if facts["next_retry"]:
        rows.append(("retry", f"next attempt at {facts['next_retry'][:19]}Z"))
    for name, proc in (facts.get("processes") or {}).items():
        rows.append((name, f"PID {proc['pid']} ({'alive' if proc['alive'] else 'gone'})"))
    platform = facts.get("platform")
    if platform:
        rows.append(("live", f"{'yes' if platform['is_live'] else 'no'}, "
                             f"{platform['viewers']} viewers, up {platform['uptime_seconds']}s"))
    # what the run recorded wins over the page the settings would guess
    watch = (facts.get("stream") or {}).get("stream_url") or (platform or {}).get("stream_url")
    if watch:
        rows.append(("watch", watch))
    if facts.get("final_stats"):
        rows.append(("stats", ", ".join(f"{k}={v}" for k, v in facts["final_stats"].items())))
    for key, value in rows:
        print(f"{key:<9} {value}")


def main(args: argparse.Namespace, app: App) -> int:
    from ..clock import SystemClock
    from ..redact import redact, redact_obj
    from ..store import Store

    store = Store(app.paths)
    state = store.load()
    facts = _facts(app, state, store.lock_holder())
    warnings: list[str] = []
    if not args.offline:
        platform, warning = asyncio.run(_platform(app))
        facts["platform"] = platform
        if platform is not None and "pids" in facts:  # what the platform says now wins
            facts["is_live"], facts["viewers"] = platform["is_live"], platform["viewers"]
        if warning:
            warnings.append(warning)
    facts = redact_obj(facts)
    for warning in warnings:
        print(f"retake-fsm: warning: {redact(warning)}", file=sys.stderr)
    if args.json:
        facts["warnings"] = [redact(w) for w in warnings]
        print(json.dumps(facts, indent=2, ensure_ascii=False))
    else:
        _print_human(facts, SystemClock().now())
    return 0
