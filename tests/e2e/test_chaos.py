"""The chaos run (bench/chaos.py) in CI: a few seeded cycles against the session's sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.e2e import REPO
from tests.fixtures.sandbox import Sandbox

pytestmark = pytest.mark.e2e

CYCLES = 5
SEED = 3


def test_chaos_cycles_meet_the_bar(sandbox: Sandbox, tmp_path: Path) -> None:
    """chaos.py --cycles 5: live each cycle, faults survived, 0 duplicates/orphans/corrupt."""
    out = tmp_path / "chaos.json"
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "chaos.py"), "--cycles", str(CYCLES),
         "--seed", str(SEED), "--sandbox-dir", str(sandbox.data_dir), "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    print(res.stdout)
    summary = json.loads(out.read_text())
    assert res.returncode == 0, res.stdout + res.stderr
    assert summary["cycles"] == CYCLES
    assert summary["live_reached"] == CYCLES
    assert summary["recoveries"] == CYCLES
    assert summary["duplicate_replies"] == 0
    assert summary["orphans"] == 0
    assert summary["corrupt_state_files"] == 0
    assert summary["secret_leaks"] == 0 and summary["secrets_checked"] > CYCLES
    assert summary["unanswered"] == 0
