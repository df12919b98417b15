"""bench/run.py in its tiny mode: one pair, time to live only, against the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]


def _running_in(root: Path) -> list[str]:
    """Processes whose working directory or command line is under `root`."""
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "cwd"]):
        where = " ".join([p.info["cwd"] or "", *(p.info["cmdline"] or [])])
        if str(root) in where:
            found.append(f"{p.info['name']} {p.info['pid']}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_bench_tiny_run_writes_a_well_formed_result(tmp_path: Path) -> None:
    """One A/B pair of time-to-live runs writes JSON with both contenders' numbers and a table."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the bench's scratch dir goes under tmp_path
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--pairs", "1", "--only", "ttl",
         "--out", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=80, cwd=REPO, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = sorted((tmp_path / "results").glob("bench-*.json"))
    assert len(results) == 1, proc.stderr[-2000:]
    doc = json.loads(results[0].read_text("utf-8"))
    assert doc["pairs"] == 1 and doc["metrics"] == ["ttl"]
    assert [r["contender"] for r in doc["runs"]] == ["retake-fsm", "baseline"]
    for run in doc["runs"]:
        assert "error" not in run and "leftovers" not in run, run
        assert isinstance(run["ttl_s"], float) and run["ttl_s"] > 0, run
        assert run["exit_code"] == 0, run
    ttl = doc["summary"]["ttl_s"]
    for who in ("retake-fsm", "baseline"):
        assert ttl[who]["n"] == 1 and ttl[who]["median"] == ttl[who]["min"] == ttl[who]["max"]
    assert ttl["ratio"] == pytest.approx(ttl["retake-fsm"]["median"] / ttl["baseline"]["median"],
                                         rel=1e-2)
    table = results[0].with_suffix(".md").read_text("utf-8")
    assert "| time to live" in table and "retake-fsm median" in table
    assert "| time to live" in proc.stdout
    assert not (tmp_path / "results" / "README-table.md").exists()  # partial: never replaced
    secrets = [w for w in (results[0].read_text("utf-8") + table + proc.stdout + proc.stderr)
               .split() if w.startswith(("rtk_", "sk_")) and "…" not in w]
    assert not secrets
    assert not _running_in(tmp_path)  # the sandbox, nginx, both tools and their children: gone


def test_bench_rejects_an_unknown_metric() -> None:
    """`--only` with a name that is not a metric is a one-line usage error, not a traceback."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--only", "ttl,speed"],
        capture_output=True, text=True, timeout=30, cwd=REPO, check=False,
    )
    assert proc.returncode == 2
    assert "choose from ttl,chat,overhead,recovery,stall,resume" in proc.stderr
    assert "Traceback" not in proc.stderr
