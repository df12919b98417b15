"""The skill version check, once per run before going live.

The platform publishes its agent contract as a skill; `skill.json` carries its
`version`. We compare it with the version we last saw (the cache file, else the
one this release was written against, `api.skill_version`). A change is a
warning for the operator (and the new `skill.md` is saved next to the cache for
them to read); an unreachable skill.json is a warning too, never a failure.
Nothing fetched is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from ..errors import ApiError
from ..fsutil import write_atomic
from ._client import RetakeClient


@dataclass(frozen=True)
class SkillCheck:
    outcome: Literal["same", "changed", "unreachable"]
    known: str  # the version we had
    current: str | None  # what skill.json says now (None if unreachable)
    reason: str | None = None  # why it was unreachable
    doc: Path | None = None  # where the new skill.md was saved, when it changed


def cached_version(cache: Path, shipped: str) -> str:
    """The version last seen (the cache file), else the shipped one."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return shipped
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) and version else shipped


def skill_doc_url(skill_url: str) -> str:
    """skill.json's sibling skill.md (the text for the operator)."""
    base, _, name = skill_url.rpartition("/")
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return f"{base}/{stem}.md"


async def check_skill(api: RetakeClient, url: str, shipped: str, cache: Path,
                      now: datetime) -> SkillCheck:
    """Fetch skill.json's version, compare with the cached one, remember a new one."""
    known = cached_version(cache, shipped)
    try:
        current = await api.skill_version(url)
    except ApiError as exc:
        return SkillCheck("unreachable", known, None, reason=exc.message)
    if current == known:
        return SkillCheck("same", known, current)
    doc: Path | None = None
    try:
        text = await api.fetch_text(skill_doc_url(url))
    except ApiError:
        text = None
    try:
        if text is not None:
            write_atomic(cache.with_name(f"skill-{current}.md"), text, mode=0o644)
            doc = cache.with_name(f"skill-{current}.md")
        record = {"version": current, "previous": known, "seen_at": now.isoformat(),
                  "url": url}
        write_atomic(cache, json.dumps(record, indent=2) + "\n", mode=0o644)
    except OSError:
        pass  # a read-only state dir must not block a go-live; we warn again next run
    return SkillCheck("changed", known, current, doc=doc)
