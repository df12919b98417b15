"""`retake-fsm demo`: one command from nothing to a live stream on the local sandbox, and back."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.env import Env
from tests.fixtures.sandbox import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_goes_live_and_ctrl_c_leaves_nothing_running(env: Env, tmp_path: Path) -> None:
    """demo registers, verifies and runs to live (viewer page says live); Ctrl-C stops it all."""
    out = tmp_path / "demo.out"
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "retake_fsm", "demo"], env=env.vars,
                                cwd=env.home, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT)
    try:
        m = wait_until(lambda: re.search(r"watch it: (http://127\.0\.0\.1:\d+)/(\S+)",
                                         out.read_text()),
                       timeout=60, interval=0.2, message="the viewer URL")
        root, name = m.group(1), m.group(2)
        view = f"{root}/_sandbox/view/agents/{name}"
        wait_until(lambda: httpx.get(view).json().get("is_live"), timeout=60, interval=0.3,
                   message=f"the demo agent live:\n{out.read_text()}")
        assert httpx.get(f"{root}/{name}").status_code == 200
        ours = psutil.Process(proc.pid).children(recursive=True)
        names = {p.name() for p in ours}
        assert {"nginx", "ffmpeg", "Xvfb"} <= names, names
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    alive = [p for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[(p.pid, p.name()) for p in alive]}"
    text = out.read_text()
    assert "rtk_" not in re.sub(r"rtk_…\w{4}", "", text)
    assert not re.search(r"sk_[0-9a-f]{8,}", text)
