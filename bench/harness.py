"""What the benchmark drives: the sandbox platform, fresh agents, and the two contenders.

- `Sandbox`: `python -m retake_fsm sandbox --port 0 --rtmp-port 0` as a child
  process (it dies with us), plus plain-httpx access to its API and admin API.
- `RetakeFsm`: `python -m retake_fsm run --display auto` with its own HOME and
  XDG_STATE_HOME; its children (ffmpeg, Xvfb, scene) are read from state.json.
- `Baseline`: `bash bench/baseline_skill.sh`, the platform's published
  sequence; its children are read from the script's `EVENT` lines.

Every process is signalled by the PID we learnt AND its start time (`Tracked`):
never anything found by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import base58
import httpx
import psutil

from retake_fsm.sandbox.launch import SandboxHandle, die_with_parent, launch
from retake_fsm.store import read_journal

REPO = Path(__file__).resolve().parents[1]
BASELINE_SCRIPT = REPO / "bench" / "baseline_skill.sh"
STOP_TIMEOUT = 45.0
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float,
             interval: float = 0.05) -> T | None:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def iso_to_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Tracked:
    """A process we started (directly or through a contender): PID plus its start time."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> Tracked | None:
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def process(self) -> psutil.Process | None:
        """The live process, or None if it is gone (or the PID now belongs to someone else)."""
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.create_time) > 0.05:
                return None
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except psutil.Error:
            return None

    @property
    def alive(self) -> bool:
        return self.process() is not None

    def signal(self, sig: int) -> bool:
        p = self.process()
        if p is None:
            return False
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)
            return True
        return False

    def terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL; returns once it is gone."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.signal(sig):
                return
            if wait_for(lambda: not self.alive, timeout):
                return


@dataclass
class Agent:
    name: str
    token: str
    user_db_id: str
    agent_id: str
    wallet: str
    ticker: str

    def credentials(self) -> dict[str, str]:
        """The credentials.json shape of the published skill."""
        return {"access_token": self.token, "agent_name": self.name, "agent_id": self.agent_id,
                "userDbId": self.user_db_id, "wallet_address": self.wallet,
                "ticker": self.ticker, "token_address": "", "token_ticker": ""}


class Sandbox(SandboxHandle):
    """The local retake.tv, started as our child; gone when `stop()` returns."""

    def __init__(self, data_dir: Path) -> None:
        self.proc, self.info = launch(data_dir, cwd=REPO)
        self.http = httpx.Client(timeout=10.0)

    def calls(self, *, since: int = 0, kind: str = "api", path: str | None = None,
              method: str | None = None, event: str | None = None,
              agent: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since, "kind": kind}
        for k, v in (("path", path), ("method", method), ("event", event)):
            if v is not None:
                params[k] = v
        out = list(self.admin("GET", "calls", params=params)["calls"])
        return [c for c in out if agent is None or c.get("agent") == agent]

    def agent_state(self, agent: Agent) -> dict[str, Any]:
        return dict(self.admin("GET", f"agents/{agent.user_db_id}"))

    def post_comment(self, agent: Agent, text: str, viewer: str) -> dict[str, Any]:
        return dict(self.admin("POST", "comments",
                               {"agent": agent.user_db_id, "text": text, "viewer": viewer}))

    def freeze(self, agent: Agent) -> list[int]:
        return list(self.admin("POST", "ingest/freeze", {"agent": agent.user_db_id})["frozen"])

    def unfreeze(self) -> None:
        self.admin("POST", "ingest/unfreeze")

    def register_agent(self, label: str) -> Agent:
        """A fresh agent, registered and verified with plain httpx (not the project's client)."""
        name = f"bench-{label}-{secrets.token_hex(3)}"
        wallet = base58.b58encode(secrets.token_bytes(32)).decode()
        ticker = "B" + secrets.token_hex(2).upper()
        r = self.http.post(f"{self.base_url}/agent/register", json={
            "agent_name": name, "agent_description": "a benchmark agent",
            "image_url": "https://example.invalid/bench.png",
            "wallet_address": wallet, "ticker": ticker,
        })
        r.raise_for_status()
        reg = r.json()
        agent = Agent(name=name, token=reg["access_token"], user_db_id=reg["userDbId"],
                      agent_id=reg["agent_id"], wallet=wallet, ticker=ticker)
        auth = {"Authorization": f"Bearer {agent.token}"}
        self.http.post(f"{self.base_url}/agent/prepare-verify", headers=auth).raise_for_status()
        v = self.http.post(f"{self.base_url}/agent/verify", headers=auth,
                           json={"tweet_url": "https://x.com/bench/status/1234567890"})
        v.raise_for_status()
        return agent

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_display() -> int:
    """An X display number nobody uses now (no socket, no lock file), from a high range."""
    for _ in range(200):
        n = 200 + secrets.randbelow(600)
        if not (Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists()):
            return n
    raise RuntimeError("no free X display number found in :200-:799")


@dataclass
class Contender:
    """One go-live tool under test, run in its own scratch dir as one agent."""

    label: str = field(init=False, default="")
    workdir: Path
    sandbox: Sandbox
    agent: Agent
    proc: subprocess.Popen[bytes] | None = field(init=False, default=None)
    started_at: float = field(init=False, default=0.0)  # time.time() just before the spawn
    orchestrator: Tracked | None = field(init=False, default=None)
    seen: dict[str, set[Tracked]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    # what each contender defines -----------------------------------------------------------
    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def children(self) -> dict[str, Tracked]:
        """The contender's long-lived children now: "ffmpeg", "xvfb", maybe "scene"."""
        raise NotImplementedError

    def stop_signal(self) -> int:
        return signal.SIGTERM

    # shared ------------------------------------------------------------------------------
    def start(self) -> None:
        log = open(self.workdir / f"{self.label}.log", "ab")
        try:
            self.started_at = time.time()
            self.proc = subprocess.Popen(self.argv(), env=self.env(), cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=die_with_parent)
        finally:
            log.close()
        self.orchestrator = Tracked.of(self.proc.pid)

    def child(self, name: str) -> Tracked | None:
        found = self.children().get(name)
        if found is not None:
            self.seen.setdefault(name, set()).add(found)
        return found

    def kill_orchestrator(self) -> None:
        """SIGKILL the orchestrator alone (its children live on)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int | None:
        """Ask the orchestrator to stop (it ends the stream and its children); then make sure.

        Returns the orchestrator's exit code (None if it had to be killed)."""
        for name in ("ffmpeg", "xvfb", "scene"):
            with contextlib.suppress(Exception):
                self.child(name)
        code: int | None = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal())
            try:
                code = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        elif self.proc is not None:
            code = self.proc.returncode
        self.reap()
        return code

    def leftovers(self) -> list[str]:
        return [f"{name} {t.pid}" for name, ts in self.seen.items() for t in ts if t.alive]

    def reap(self) -> list[str]:
        """Terminate any child of this contender still running (by PID + start time)."""
        left = self.leftovers()
        for ts in self.seen.values():
            for t in ts:
                t.terminate()
        return left


class RetakeFsm(Contender):
    """`retake-fsm run --display auto` with credentials present and verified."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.label = "retake-fsm"
        self.home = self.workdir / "home"
        self.state_home = self.workdir / "state"
        creds = self.home / ".config" / "retake" / "credentials.json"
        creds.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.agent.credentials(), fh)
        self.state_home.mkdir(parents=True, exist_ok=True)

    @property
    def state_dir(self) -> Path:
        return self.state_home / "retake-fsm" / "default"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "retake_fsm", "run", "--display", "auto"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETAKE_")}
        env.update(HOME=str(self.home), XDG_STATE_HOME=str(self.state_home),
                   RETAKE_BASE_URL=self.sandbox.base_url, RETAKE_SKILL_URL=self.sandbox.skill_url,
                   RETAKE_STATES=str(REPO / "states.yaml"))
        return env

    def stop_signal(self) -> int:
        return signal.SIGINT

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state_dir / "state.json").read_text("utf-8")))
        except (OSError, ValueError):
            return {}

    def children(self) -> dict[str, Tracked]:
        out: dict[str, Tracked] = {}
        for name, rec in (self.state().get("processes") or {}).items():
            t = Tracked(int(rec["pid"]), float(rec["create_time"]))
            if t.alive:
                out[name] = t
        return out

    def journal(self) -> list[dict[str, Any]]:
        return read_journal(self.state_dir / "journal.jsonl")

    def restart(self) -> None:
        """A new `run` for the same profile (what systemd's Restart=always does)."""
        self.start()


class Baseline(Contender):
    """bench/baseline_skill.sh: curl per call, Xvfb + the published ffmpeg, cron-style watchdog."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.label = "baseline"
        self.display = free_display()

    def argv(self) -> list[str]:
        return ["bash", str(BASELINE_SCRIPT)]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETAKE_")}
        env.update(RETAKE_BASE_URL=self.sandbox.base_url, RETAKE_SKILL_URL=self.sandbox.skill_url,
                   RETAKE_ACCESS_TOKEN=self.agent.token, USER_DB_ID=self.agent.user_db_id,
                   AGENT_NAME=self.agent.name, DISPLAY_NUM=str(self.display),
                   WORK=str(self.workdir))
        return env

    def events(self) -> list[tuple[str, float, str]]:
        """The script's `EVENT name epoch [detail]` lines, in order."""
        try:
            text = (self.workdir / f"{self.label}.log").read_text("utf-8", "replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split(maxsplit=3)
            if len(parts) >= 3 and parts[0] == "EVENT":
                with contextlib.suppress(ValueError):
                    out.append((parts[1], float(parts[2]), parts[3] if len(parts) > 3 else ""))
        return out

    def children(self) -> dict[str, Tracked]:
        out: dict[str, Tracked] = {}
        for name, _, detail in self.events():
            if name in ("ffmpeg_started", "xvfb_started") and detail.isdigit():
                t = Tracked.of(int(detail))
                parent = self.orchestrator
                if t is not None and parent is not None and _is_child(t, parent):
                    out["ffmpeg" if name == "ffmpeg_started" else "xvfb"] = t
        return out


def _is_child(t: Tracked, parent: Tracked) -> bool:
    p = t.process()
    try:
        return p is not None and p.ppid() == parent.pid
    except psutil.Error:
        return False
