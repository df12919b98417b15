"""The systemd template unit shipped in docs/ is one systemd accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.e2e import REPO

pytestmark = pytest.mark.e2e

UNIT = REPO / "docs" / "systemd" / "retake-fsm@.service"
INSTALLED = "/usr/local/bin/retake-fsm"  # where the unit expects `pip install` to put it


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit (commands pointed at this install) silently."""
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is missing: `make test` installs Debian's systemd"
    exe = Path(sys.executable).with_name("retake-fsm")
    assert exe.is_file(), f"no console script at {exe}: pip install -e . first"
    text = UNIT.read_text("utf-8")
    assert f"ExecStart={INSTALLED} run" in text and f"ExecStop={INSTALLED} stop" in text
    unit = tmp_path / "retake-fsm@demo.service"
    unit.write_text(text.replace(INSTALLED, str(exe)), "utf-8")
    res = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    about_unit = [ln for ln in (res.stdout + res.stderr).splitlines()
                  if "retake-fsm@" in ln or str(tmp_path) in ln]
    assert res.returncode == 0 and about_unit == [], res.stdout + res.stderr
