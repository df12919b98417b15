"""`retake-fsm history [--json] [-n N]`: the journal's last entries (transitions, retries...)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import App

_SKIP = {"ts", "event", "pid", "transition", "action", "attempt", "source", "dest"}


def _what(e: dict[str, Any]) -> str:
    step = "/".join(str(e[k]) for k in ("transition", "action") if e.get(k))
    n = f" #{e['attempt']}" if e.get("attempt") else ""
    cause = f"{e.get('kind')}: {e.get('message')}" if e.get("kind") else ""
    event = e.get("event")
    if event == "transition":
        return f"{e.get('transition')}: {e.get('source')} -> {e.get('dest')}"
    if event == "run":
        return f"run from {e.get('source')} until {e.get('dest')} (pid {e.get('pid')})"
    if event == "attempt":
        return f"{step}{n} started"
    if event == "attempt.ok":
        return f"{step}{n} ok"
    if event == "retry":
        return f"{step}{n} failed ({cause}); next attempt in {e.get('wait')}s"
    if event == "failure":
        return f"{step}{n} failed for good ({e.get('reason')}): {cause}"
    if event == "on_error":
        return f"{e.get('transition')} failed ({cause}) -> {e.get('dest')}"
    head = " ".join(str(e[k]) for k in ("source", "dest") if e.get(k))
    rest = " ".join(f"{k}={v}" for k, v in e.items() if k not in _SKIP)
    return " ".join(p for p in (step, head, rest) if p)


def format_entry(entry: dict[str, Any]) -> str:
    ts = str(entry.get("ts", ""))[:19].replace("T", " ")
    return f"{ts}  {entry.get('event', '?'):<14} {_what(entry)}"


def main(args: argparse.Namespace, app: App) -> int:
    from ..redact import redact, redact_obj
    from ..store import Store

    entries = Store(app.paths).journal(max(0, args.n))
    if args.json:
        print(json.dumps(redact_obj(entries), indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print(f"no journal yet for profile {app.paths.profile!r}")
    for entry in entries:
        print(redact(format_entry(entry)))
    return 0
