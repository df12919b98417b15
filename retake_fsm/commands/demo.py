"""`retake-fsm demo`: a real go-live on this machine, in one command.

Starts the sandbox (API + nginx-rtmp) on loopback, then drives the real tool
against it exactly as an operator would, as subprocesses with RETAKE_BASE_URL
and an isolated HOME / XDG_STATE_HOME under a temp dir:

    retake-fsm register --name demo-XXXX ...     (a throwaway wallet and ticker)
    retake-fsm verify                            (prepare-verify: the message to tweet)
    retake-fsm verify --tweet-url https://x.com/retake_demo/status/...   (the sandbox accepts it)
    retake-fsm run --display auto                (Xvfb + ffmpeg to live, then stay live)

and prints the viewer page URL. Ctrl-C (or SIGTERM) stops `run` first (it ends
the stream and its processes), then the sandbox; nothing is left running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExitCode, ProcessExitedError, RetakeError

if TYPE_CHECKING:
    from ..app import App

SANDBOX_START_TIMEOUT = 30.0
RUN_STOP_TIMEOUT = 45.0
DEMO_TWEET = "https://x.com/retake_demo/status/1862451908723413504"


class _Stop(Exception):
    """SIGTERM turned into an exception so the cleanup below always runs."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wallet() -> str:
    import base58

    return str(base58.b58encode(secrets.token_bytes(32)).decode())


class Demo:
    def __init__(self, root: Path, port: int, display: str) -> None:
        self.root = root
        self.port = port
        self.display = display
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.run_proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, object] = {}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("RETAKE_") or k == "RETAKE_STATES"}
        self.env.update(HOME=str(root / "home"), XDG_STATE_HOME=str(root / "state"))
        for d in ("home", "state", "sandbox"):
            (root / d).mkdir(parents=True, exist_ok=True)

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "retake_fsm", *args]

    def start_sandbox(self) -> None:
        data = self.root / "sandbox"
        with open(self.root / "sandbox.log", "ab") as log:
            self.sandbox = subprocess.Popen(
                self._cli("sandbox", "--port", str(self.port), "--rtmp-port", "0",
                          "--data-dir", str(data)),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                cwd=self.root, start_new_session=True,
            )
        ready = data / "sandbox.json"
        deadline = time.monotonic() + SANDBOX_START_TIMEOUT
        while not ready.is_file():
            if self.sandbox.poll() is not None or time.monotonic() > deadline:
                raise ProcessExitedError("sandbox", self.sandbox.poll(), self._tail("sandbox.log"))
            time.sleep(0.05)
        self.info = json.loads(ready.read_text("utf-8"))
        self.env["RETAKE_BASE_URL"] = str(self.info["base_url"])
        self.env["RETAKE_SKILL_URL"] = str(self.info["skill_url"])

    def _tail(self, name: str) -> str:
        try:
            lines = (self.root / name).read_text("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def step(self, *args: str, ok: tuple[int, ...] = (0,)) -> None:
        """Run one `retake-fsm` command to completion; a failure ends the demo with its line."""
        print(f"$ retake-fsm {' '.join(args)}", flush=True)
        proc = subprocess.run(self._cli(*args), env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=120, check=False)
        for line in proc.stdout.splitlines():
            print(f"  {line}", flush=True)
        if proc.returncode not in ok:
            detail = (proc.stderr.strip().splitlines() or [""])[-1]
            raise ProcessExitedError(f"retake-fsm {args[0]}", proc.returncode, detail)

    def start_run(self) -> None:
        print(f"$ retake-fsm run --display {self.display}", flush=True)
        self.run_proc = subprocess.Popen(
            self._cli("run", "--display", self.display), env=self.env, cwd=self.root,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def stop(self) -> None:
        """`run` first (SIGINT: it stops the stream and its processes), then the sandbox."""
        for proc, name, timeout in ((self.run_proc, "run", RUN_STOP_TIMEOUT),
                                    (self.sandbox, "sandbox", 15.0)):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGINT if name == "run" else signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"demo: {name} did not stop in {timeout:g}s; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(5)


def main(args: argparse.Namespace, app: App) -> int:
    port = int(getattr(args, "port", 0) or 0)
    display = str(getattr(args, "display", None) or "auto")
    with tempfile.TemporaryDirectory(prefix="retake-demo-") as tmp, _sigterm_raises():
        demo = Demo(Path(tmp), port, display)
        name = f"demo-{secrets.token_hex(3)}"
        try:
            demo.start_sandbox()
            print(f"sandbox: {demo.info['root_url']}  (RTMP {demo.info['rtmp_url']})", flush=True)
            demo.step("register", "--name", name, "--description", "a retake-fsm demo agent",
                      "--image-url", "https://retake.tv/favicon.png", "--wallet", _wallet(),
                      "--ticker", "DEMO")
            demo.step("verify", ok=(0, int(ExitCode.WAITING_FOR_HUMAN)))
            demo.step("verify", "--tweet-url", DEMO_TWEET)
            demo.start_run()
            print(f"\nwatch it: {demo.info['root_url']}/{name}   (Ctrl-C stops everything)\n",
                  flush=True)
            assert demo.run_proc is not None
            code = demo.run_proc.wait()
            if code != 0:
                raise ProcessExitedError("retake-fsm run", code,
                                         f"its journal is under {tmp}/state")
            return 0
        except (KeyboardInterrupt, _Stop):
            print("\ndemo: stopping (run, then the sandbox)...", file=sys.stderr, flush=True)
            return int(ExitCode.INTERRUPTED)
        except RetakeError:
            raise
        finally:
            demo.stop()
