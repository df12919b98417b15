#!/usr/bin/env python3
"""`make bench`: retake-fsm against the platform's published bash sequence, side by side.

One sandbox platform (API + nginx-rtmp ingest on loopback) serves both
contenders, run alternately (retake-fsm, baseline, retake-fsm, baseline, ...),
each as a fresh verified agent with credentials present. One session per
contender and pair measures, in this order, whatever `--only` selects:

  ttl       process start -> first thumbnail accepted (the sandbox's call log)
  chat      reply latency p50/p95 for --comments viewer comments (a seeded
            schedule, the same for both; exponential gaps, mean 3 s)
  overhead  after --settle s of quiet: CPU % of one core and peak RSS of the
            orchestrator over --window s (ffmpeg, Xvfb, scene apart), and the
            comment polls of that quiet window scaled to an hour
  recovery  ffmpeg SIGKILLed -> live again on a new key (cap --recovery-cap)
  stall     ingest frozen -> live again on a new key (cap --stall-cap)
  resume    orchestrator SIGKILLed, a new one started at once -> it adopted
            the stream (retake-fsm only; the baseline has none)

Prints a markdown table (median, min, max, ratio retake-fsm/baseline) and writes
bench/results/bench-<UTC>.json and .md; a full run (every metric, >= 5 pairs) also
writes bench/results/README-table.md. Machines are shared and noisy: read the
ratios, not the absolute times.

    .venv/bin/python bench/run.py                      # the full run (about 50 min)
    .venv/bin/python bench/run.py --pairs 1 --only ttl # a quick look (about 20 s)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import measure
from harness import REPO, Baseline, Contender, RetakeFsm, Sandbox
from report import summarize, table

METRICS = ("ttl", "chat", "overhead", "recovery", "stall", "resume")
BINARIES = {"nginx": "nginx libnginx-mod-rtmp", "ffmpeg": "ffmpeg", "Xvfb": "xvfb",
            "scrot": "scrot", "curl": "curl", "xterm": "xterm"}
FULL_PAIRS = 5


class BenchError(Exception):
    """An expected failure: one line for the user."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=FULL_PAIRS, help="A B pairs (default 5)")
    p.add_argument("--only", default=",".join(METRICS),
                   help=f"comma-separated metrics (default all: {','.join(METRICS)})")
    p.add_argument("--out", default=str(REPO / "bench" / "results"), help="results directory")
    p.add_argument("--comments", type=int, default=50, help="viewer comments per chat run")
    p.add_argument("--window", type=float, default=60.0, help="overhead window (s)")
    p.add_argument("--settle", type=float, default=35.0,
                   help="quiet time before the overhead window (s; chat.quiet_after is 30 s)")
    p.add_argument("--ttl-cap", type=float, default=45.0)
    p.add_argument("--recovery-cap", type=float, default=90.0,
                   help="the baseline's watchdog runs once a minute")
    p.add_argument("--stall-cap", type=float, default=45.0)
    p.add_argument("--resume-cap", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=7, help="seeds the chat schedule")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, journals)")
    args = p.parse_args(argv)
    only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in only if m not in METRICS]
    if unknown or not only:
        p.error(f"--only {args.only!r}: choose from {','.join(METRICS)}")
    if args.pairs < 1:
        p.error("--pairs must be at least 1")
    args.metrics = [m for m in METRICS if m in only]
    return args


def host_facts() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(),
            "ffmpeg": (ffmpeg.stdout.splitlines() or [""])[0]}


def session(sb: Sandbox, kind: type[Contender], pair: int, args: argparse.Namespace,
            scratch: Path) -> dict[str, Any]:
    """One contender, one agent, one go-live: every selected metric in order."""
    label = "rf" if kind is RetakeFsm else "bl"
    agent = sb.register_agent(f"{label}{pair}")
    c = kind(scratch / f"{pair}-{label}", sb, agent)
    result: dict[str, Any] = {"contender": c.label, "pair": pair}
    since = sb.mark()
    try:
        c.start()
        result.update(measure.time_to_live(sb, c, since, args.ttl_cap))
        if "chat" in args.metrics:
            offsets = measure.schedule(args.comments, args.seed * 1000 + pair)
            result.update(measure.chat(sb, c, offsets, tag=f"{label}{pair}"))
        if "overhead" in args.metrics:
            time.sleep(args.settle)
            result.update(measure.overhead(sb, c, args.window))
        if "recovery" in args.metrics:
            result.update(measure.recovery(sb, c, args.recovery_cap))
            measure.settle_live(sb, c)
        if "stall" in args.metrics:
            result.update(measure.stall(sb, c, args.stall_cap))
            measure.settle_live(sb, c)
        if "resume" in args.metrics and isinstance(c, RetakeFsm):
            result.update(measure.resume(sb, c, args.resume_cap))
    except measure.Failed as exc:
        result["error"] = str(exc)
    finally:
        result["exit_code"] = c.stop()
        left = c.reap()
        if left:
            result["leftovers"] = left
    return result


def _progress(r: dict[str, Any]) -> str:
    keys = ("ttl_s", "chat_p50_s", "chat_p95_s", "cpu_pct", "rss_mb", "quiet_requests_per_hour",
            "recovery_s", "stall_s", "resume_s", "error", "leftovers")
    shown = " ".join(f"{k}={r[k]}" for k in keys if k in r)
    return f"[pair {r['pair']}] {r['contender']:<10} {shown}"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_results(out: Path, doc: dict[str, Any], text: str, full: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = doc["started"].replace(":", "").replace("-", "").split(".")[0] + "Z"
    written = [out / f"bench-{stamp}.json", out / f"bench-{stamp}.md"]
    tmp = written[0].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    tmp.replace(written[0])
    written[1].write_text(text, "utf-8")
    if full:
        written.append(out / "README-table.md")
        written[-1].write_text(text, "utf-8")
    return written


def render(doc: dict[str, Any]) -> str:
    h = doc["host"]
    return (f"Measured {doc['started'][:10]} on {h['cpus']} cores ({h['cpu_model']}), "
            f"load average {doc['load_before'][0]} before / {doc['load_after'][0]} after, "
            f"{doc['pairs']} pairs run alternately (retake-fsm, baseline, ...), "
            f"with `{doc['command']}`.\n"
            f"Baseline: bench/baseline_skill.sh (the published skill's bash sequence). "
            f"Ratio = retake-fsm median / baseline median.\n\n" + table(doc["summary"]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [f"{b} (apt-get install {pkg})" for b, pkg in BINARIES.items() if not shutil.which(b)]
    if missing:
        print(f"bench: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    doc: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds").replace("+00:00", ""),
        "command": " ".join(["bench/run.py", *map(shlex.quote, sys.argv[1:] if argv is None
                                                  else argv)]),
        "pairs": args.pairs, "metrics": args.metrics, "host": host_facts(),
        "load_before": _load(),
        "settings": {k: getattr(args, k) for k in ("comments", "window", "settle", "ttl_cap",
                                                   "recovery_cap", "stall_cap", "resume_cap",
                                                   "seed")},
        "runs": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="retake-bench-"))
    failed = False
    sb: Sandbox | None = None
    try:
        sb = Sandbox(scratch / "sandbox")
        for pair in range(1, args.pairs + 1):
            for kind in (RetakeFsm, Baseline):
                r = session(sb, kind, pair, args, scratch)
                print(_progress(r), file=sys.stderr, flush=True)
                failed |= "error" in r or "leftovers" in r
                doc["runs"].append(r)
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; nothing written", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        if sb is not None:
            sb.stop()
        if args.keep:
            print(f"bench: scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    doc["load_after"] = _load()
    doc["finished"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "")
    doc["summary"] = summarize(doc["runs"])
    text = render(doc)
    print(text)
    full = args.pairs >= FULL_PAIRS and args.metrics == list(METRICS)
    for path in write_results(Path(args.out), doc, text, full):
        print(f"wrote {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
