"""Summaries (median, min, max per contender; ratio retake-fsm/baseline) and the markdown table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

CONTENDERS = ("retake-fsm", "baseline")


@dataclass(frozen=True)
class Row:
    key: str  # the per-session result field
    label: str
    unit: str
    metric: str  # the --only name that produces it
    target: str = ""


ROWS = (
    Row("ttl_s", "time to live (start -> first thumbnail accepted)", "s", "ttl",
        "<= 1.5 s and <= 0.4x"),
    Row("recovery_s", "recovery (ffmpeg SIGKILL -> live on a new key)", "s", "recovery", "<= 2 s"),
    Row("stall_s", "stall recovery (ingest frozen -> live on a new key)", "s", "stall", "<= 12 s"),
    Row("resume_s", "resume (orchestrator SIGKILL -> new process adopted)", "s", "resume",
        "<= 2 s"),
    Row("cpu_pct", "orchestrator CPU while live", "% of a core", "overhead", "<= 1 %"),
    Row("rss_mb", "orchestrator peak RSS while live", "MB", "overhead", "<= 80 MB"),
    Row("ffmpeg_cpu_pct", "ffmpeg CPU", "% of a core", "overhead"),
    Row("ffmpeg_rss_mb", "ffmpeg peak RSS", "MB", "overhead"),
    Row("xvfb_cpu_pct", "Xvfb CPU", "% of a core", "overhead"),
    Row("xvfb_rss_mb", "Xvfb peak RSS", "MB", "overhead"),
    Row("scene_cpu_pct", "scene window CPU", "% of a core", "overhead"),
    Row("scene_rss_mb", "scene window peak RSS", "MB", "overhead"),
    Row("chat_p50_s", "chat reply latency p50", "s", "chat", "<= 1.6 s"),
    Row("chat_p95_s", "chat reply latency p95", "s", "chat"),
    Row("quiet_requests_per_hour", "comment polls per quiet hour", "req/h", "overhead",
        "< baseline"),
)


def _num(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row and contender: n, median, min, max over sessions, plus misses (value None)."""
    out: dict[str, Any] = {}
    for row in ROWS:
        entry: dict[str, Any] = {}
        for who in CONTENDERS:
            mine = [r for r in runs if r["contender"] == who and row.key in r]
            values = [float(r[row.key]) for r in mine if r[row.key] is not None]
            notes = sorted({str(r.get(row.metric + "_note", ""))
                            for r in mine if r[row.key] is None} - {""})
            if not mine:
                continue
            entry[who] = {
                "n": len(values), "missed": len(mine) - len(values), "notes": notes,
                "median": statistics.median(values) if values else None,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
            }
        a, b = entry.get("retake-fsm", {}), entry.get("baseline", {})
        if a.get("median") is not None and b.get("median"):
            entry["ratio"] = round(a["median"] / b["median"], 3)
        if entry:
            out[row.key] = entry
    return out


def _cell(entry: dict[str, Any] | None) -> list[str]:
    if not entry:
        return ["-", "-", "-"]
    if entry["median"] is None:
        note = "; ".join(entry["notes"]) or "no value"
        return [f"{note} ({entry['missed']}/{entry['missed']})", "-", "-"]
    med = _num(entry["median"])
    if entry["missed"]:
        of = entry["n"] + entry["missed"]
        med += f" ({entry['missed']} of {of}: {'; '.join(entry['notes'])})"
    return [med, _num(entry["min"]), _num(entry["max"])]


def table(summary: dict[str, Any]) -> str:
    head = ["metric", "retake-fsm median", "min", "max", "baseline median", "min", "max",
            "ratio", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        entry = summary.get(row.key)
        if not entry:
            continue
        a, b = entry.get("retake-fsm"), entry.get("baseline")
        if b is None and row.metric == "resume":
            b_cells = ["none (no resume)", "-", "-"]
        else:
            b_cells = _cell(b)
        ratio = f"{entry['ratio']:.2f}x" if "ratio" in entry else "-"
        lines.append("| " + " | ".join([f"{row.label} ({row.unit})", *_cell(a), *b_cells, ratio,
                                        row.target]) + " |")
    return "\n".join(lines) + "\n"
