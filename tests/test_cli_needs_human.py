"""Errors only a human can fix end the run with their one-line fix, not a recovery loop."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest


def _path_without(tmp_path: Path, missing: str, keep: list[str]) -> str:
    """A PATH holding the tools in `keep` (symlinks) but not `missing`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in keep:
        found = shutil.which(tool)
        if found and tool != missing:
            (bindir / tool).symlink_to(found)
    return str(bindir)


def test_missing_ffmpeg_exits_2_naming_the_package_and_stops(env: Any, sandbox: Any,
                                                             sandbox_agent: Any,
                                                             tmp_path: Path) -> None:
    """Without ffmpeg on PATH, `run` exits 2 with `apt-get install ffmpeg`, after one
    encode attempt (no recover loop), and leaves the stream stopped with no process of ours."""
    path = _path_without(tmp_path, "ffmpeg", ["Xvfb", "xterm", "tail", "xdpyinfo", "scrot"])
    mark = sandbox.mark()
    proc = env.cli("--set", "display.size=640x360", "run", "--display", "auto",
                   extra_env={**sandbox_agent.env(), "PATH": path}, timeout=60)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "ffmpeg not found" in last and "apt-get install ffmpeg" in last
    assert "Traceback" not in proc.stderr
    paths = [c["path"].rsplit("/api/v1/", 1)[-1] for c in sandbox.calls(since=mark)]
    assert paths.count("agent/stream/start") == 1, paths  # no recover -> start again loop
    assert "agent/stream/stop" in paths
    state = json.loads(next(env.state_home.glob("retake-fsm/*/state.json")).read_text())
    assert state["state"] == "stopped"
    assert state["last_error"]["kind"] == "missing_binary"
    for record in state["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(record["pid"], 0)


def test_bad_display_setting_is_a_usage_error_before_anything_runs(env: Any) -> None:
    """`--display foo` is refused when settings load: exit 2, one line, nothing started."""
    proc = env.cli("run", "--display", "foo")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "retake-fsm: setting display.display: Value error, 'foo' is not an X display: "
        "use ':N' (e.g. :99) or 'auto'"
    ]
