"""Start `retake-fsm sandbox` as a child process on free loopback ports.

The one launcher for everything that needs a sandbox of its own: the test
fixtures, the benchmarks and the chaos run. The child gets SIGTERM if its
parent dies (PR_SET_PDEATHSIG), so a killed test run or benchmark leaves no
platform (nor its nginx) behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in a child before exec: SIGTERM it when its parent dies (no orphans)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(data_dir: Path, *extra: str, cwd: Path | None = None,
           extra_env: dict[str, str] | None = None,
           timeout: float = START_TIMEOUT) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the sandbox with its state in `data_dir`; return once it wrote its ready
    file (`sandbox.json`: ports, URLs). RuntimeError with its log if it did not start."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = data_dir / "sandbox.json"
    ready.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAKE_")}
    env.update(extra_env or {})
    with open(data_dir / "sandbox.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retake_fsm", "sandbox", "--port", "0", "--rtmp-port", "0",
             "--data-dir", str(data_dir), *extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=cwd,
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + timeout
    while not ready.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            text = (data_dir / "sandbox.log").read_text("utf-8", "replace")
            raise RuntimeError(f"sandbox did not start (exit {proc.returncode}):\n{text}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text("utf-8"))


class SandboxHandle:
    """A launched sandbox: its URLs (from its ready file) and a plain-httpx handle on its
    admin API. Tests and benchmarks add their own helpers on top."""

    proc: subprocess.Popen[bytes]
    info: dict[str, Any]
    http: httpx.Client

    @property
    def root_url(self) -> str:
        return str(self.info["root_url"])

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def admin_url(self) -> str:
        return str(self.info["admin_url"])

    @property
    def rtmp_url(self) -> str:
        return str(self.info["rtmp_url"])

    @property
    def skill_url(self) -> str:
        return str(self.info["skill_url"])

    def env(self) -> dict[str, str]:
        """The RETAKE_* variables pointing a `retake-fsm` command at this sandbox."""
        return {"RETAKE_BASE_URL": self.base_url, "RETAKE_SKILL_URL": self.skill_url}

    def admin(self, method: str, path: str, json_body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        """One call to `/_sandbox/<path>`; RuntimeError naming the status on failure."""
        r = self.http.request(method, f"{self.admin_url}/{path.lstrip('/')}", json=json_body,
                              params=params)
        if r.status_code >= 400:
            raise RuntimeError(f"sandbox admin {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def mark(self) -> int:
        """The newest call-log sequence number: pass it as `since=` to see only later calls."""
        return int(self.admin("GET", "calls", params={"limit": 1})["seq"])
