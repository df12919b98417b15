#!/usr/bin/env python3
"""Chaos run: N cycles of go-live / one random fault / recover / stop, everything real.

    python bench/chaos.py --cycles 50 --seed 7          (by hand; `make chaos`)
    python bench/chaos.py --cycles 5 --seed 3 --sandbox-dir DIR --json out.json   (CI)

Against the sandbox platform (started here unless `--sandbox-dir` names a running
one's data dir), with real nginx-rtmp, Xvfb, ffmpeg and scrot. A fresh agent is
registered and verified through the CLI in an isolated HOME. Then each cycle:

1. `retake-fsm run` (a separate process, as an operator starts it) goes live;
2. a viewer comment must get its reply (the responder plug-in is
   tests/e2e/echo_responder.py: it answers `re <comment id>`);
3. one fault, drawn with the seeded RNG (every fault once per round, shuffled):
   ffmpeg-kill, freeze, 503-burst, latency, conflict-409, rotate-key,
   drop-publisher, orchestrator-kill (SIGKILL `run`, a comment while it is
   down, a new `run` that must adopt or restart);
4. recovered: live again (for a fault that breaks the stream: a new ffmpeg and
   an accepted publish after the fault) and a new comment answered;
5. `retake-fsm stop`; every process of ours must be gone (PID + start time).

It prints live-reached, recoveries and time to recover per fault, duplicate
replies (comment ids answered more than once, counted from the sandbox's own
call log), orphans, corrupt state files, unanswered comments and secret leaks,
and exits 1 if live was not reached in every cycle or any of duplicates,
orphans, corrupt state files (or leaks) is non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from retake_fsm.procs import same_process
from retake_fsm.sandbox.launch import die_with_parent
from retake_fsm.store import read_journal

REPO = Path(__file__).resolve().parents[1]
ECHO_RESPONDER = REPO / "tests" / "e2e" / "echo_responder.py"  # answers `re <comment id>`
T = TypeVar("T")

FAULTS = ("ffmpeg-kill", "freeze", "503-burst", "latency", "conflict-409", "rotate-key",
          "drop-publisher", "orchestrator-kill")
RIDDEN = {"503-burst", "latency"}  # nothing breaks: the stream must ride them out
TWEET = "https://x.com/retake_chaos/status/1862451908723413504"
# Short cadences (the operator's `run --set`), so a cycle takes seconds, not minutes.
SETTINGS = [
    "chat.poll=500ms", "chat.poll_active=300ms", "chat.poll_quiet=1s",
    "chat.reply_interval=100ms", "chat.keepalive=1h", "live.poll=300ms",
    "live.status_poll=1s", "live.not_live_polls=2", "encoder.stall=2s",
    "encoder.stats_period=200ms", "thumbnail.interval=1h",
]
LIVE_TIMEOUT = 45.0
REPLY_TIMEOUT = 15.0
RECOVER_TIMEOUT = 45.0


# --- small helpers ------------------------------------------------------------------------

def wait_for(predicate: Callable[[], T | None], timeout: float,
             tick: Callable[[], None] | None = None) -> T | None:
    """Poll `predicate` (short sleeps, real deadline); its value, or None at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if tick is not None:
            tick()
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


# --- the platform -------------------------------------------------------------------------

class Platform:
    """The sandbox: started here (and stopped at the end) or one already running."""

    def __init__(self, data_dir: Path | None, work: Path) -> None:
        import httpx

        self.proc: subprocess.Popen[bytes] | None = None
        if data_dir is None:
            data_dir = work / "sandbox"
            self.proc = self._start(data_dir, work / "sandbox.log")
        self.info: dict[str, Any] = json.loads((data_dir / "sandbox.json").read_text("utf-8"))
        self.http = httpx.Client(timeout=15.0)

    @staticmethod
    def _start(data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETAKE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "retake_fsm", "sandbox", "--port", "0",
                 "--rtmp-port", "0", "--data-dir", str(data_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=REPO,
                start_new_session=True, preexec_fn=die_with_parent)
        ready = wait_for(lambda: (data_dir / "sandbox.json").is_file() or proc.poll() is not None,
                         30.0)
        if not ready or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise SystemExit(f"chaos: the sandbox did not start; see {log_path}")
        return proc

    def env(self) -> dict[str, str]:
        return {"RETAKE_BASE_URL": self.info["base_url"],
                "RETAKE_SKILL_URL": self.info["skill_url"]}

    def admin(self, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, f"{self.info['admin_url']}/{path}", json=body,
                              params=params)
        r.raise_for_status()
        return r.json()

    def mark(self) -> int:
        return int(self.admin("GET", "calls", params={"limit": 1})["seq"])

    def calls(self, path: str | None = None, since: int = 0, kind: str | None = "api",
              event: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        for k, v in (("path", path), ("kind", kind), ("event", event)):
            if v is not None:
                params[k] = v
        return list(self.admin("GET", "calls", params=params)["calls"])

    def is_live(self, agent: str) -> bool:
        return bool(self.admin("GET", f"agents/{agent}")["is_live"])

    def comment(self, agent: str, text: str) -> str:
        return str(self.admin("POST", "comments",
                              {"agent": agent, "text": text, "viewer": "chaos-viewer"})["_id"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.admin("DELETE", "faults")
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- the tool, as an operator runs it ----------------------------------------------------

@dataclass
class Agent:
    """One isolated HOME / XDG_STATE_HOME, and every process of ours seen in it."""

    root: Path
    name: str
    env: dict[str, str]
    seen: dict[int, tuple[str, float]] = field(default_factory=dict)  # PID -> (name, ctime)
    keys: set[str] = field(default_factory=set)  # every RTMP key ffmpeg was given

    @property
    def state_dir(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "retake-fsm" / "default"

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "retake_fsm", *args], env=self.env,
                              cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state_dir / "state.json").read_text("utf-8")))
        except (FileNotFoundError, ValueError):
            return {}

    def journal_len(self) -> int:
        try:
            return len((self.state_dir / "journal.jsonl").read_bytes().splitlines())
        except FileNotFoundError:
            return 0

    def journal(self, start: int = 0) -> list[dict[str, Any]]:
        return read_journal(self.state_dir / "journal.jsonl", start)

    def observe(self, *roots: int) -> None:
        """Remember our processes: what state.json records, and the children of `roots`."""
        import psutil

        for name, rec in self.state().get("processes", {}).items():
            self.seen.setdefault(int(rec["pid"]), (name, float(rec["create_time"])))
            if name == "ffmpeg":
                with contextlib.suppress(psutil.Error, IndexError):
                    url = psutil.Process(int(rec["pid"])).cmdline()[-1]
                    self.keys.add(url.rsplit("/", 1)[-1])
        for root in [*roots, *self.seen]:
            with contextlib.suppress(psutil.Error):
                for kid in psutil.Process(root).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.seen.setdefault(kid.pid, (kid.name(), kid.create_time()))

    def leftovers(self, skip: set[int]) -> list[str]:
        return [f"{name}:{pid}" for pid, (name, ct) in self.seen.items()
                if pid not in skip and same_process(pid, ct)]

    def ffmpeg(self) -> tuple[int, float] | None:
        rec = self.state().get("processes", {}).get("ffmpeg")
        return (int(rec["pid"]), float(rec["create_time"])) if rec else None


class Run:
    """One `retake-fsm run` process, its output in a file (never a pipe that could fill)."""

    def __init__(self, agent: Agent, log: Path, args: list[str]) -> None:
        self.agent = agent
        self.log = log
        self.journal_start = agent.journal_len()
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "retake_fsm", "run", *args], env=agent.env,
                cwd=agent.root, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                start_new_session=True, preexec_fn=die_with_parent)
        self.started = time.monotonic()

    def tick(self) -> None:
        self.agent.observe(self.proc.pid)

    def live(self) -> bool:
        """state.json says live, the loops of this run are running, the platform says live."""
        if self.proc.poll() is not None or self.agent.state().get("state") != "live":
            return False
        if not any(e.get("event") == "live.loops" for e in self.agent.journal(self.journal_start)):
            return False
        return True

    def kill(self) -> None:
        self.tick()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def end(self, timeout: float = 60.0, finishing: float = 10.0) -> int | None:
        """Its exit code: it may be finishing already (after `stop`), else SIGTERM it."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(finishing)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None


# --- one cycle ------------------------------------------------------------------------------

@dataclass
class Cycle:
    index: int
    fault: str
    live: bool = False
    recovered: bool = False
    recover_seconds: float | None = None
    to_live_seconds: float | None = None
    unanswered: int = 0
    orphans: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # problems
    info: list[str] = field(default_factory=list)  # what happened (e.g. ffmpeg adopted)


class Chaos:
    def __init__(self, platform: Platform, agent: Agent, work: Path, responder: str) -> None:
        self.platform = platform
        self.agent = agent
        self.work = work
        self.args = ["--display", "auto", "--responder", responder,
                     *[a for s in SETTINGS for a in ("--set", s)]]
        self.mark = platform.mark()
        self.runs: list[Run] = []

    def start_run(self, cycle: Cycle, suffix: str = "") -> Run:
        run = Run(self.agent, self.work / f"cycle-{cycle.index:03d}{suffix}.log", self.args)
        self.runs.append(run)
        return run

    def await_live(self, run: Run, timeout: float = LIVE_TIMEOUT) -> bool:
        name = self.agent.name
        return bool(wait_for(lambda: run.live() and self.platform.is_live(name), timeout,
                             run.tick))

    def answered(self, run: Run, comment: str, cycle: Cycle) -> bool:
        ok = wait_for(lambda: self.replies(comment), REPLY_TIMEOUT, run.tick)
        if not ok:
            cycle.unanswered += 1
            cycle.notes.append(f"comment {comment} unanswered")
        return bool(ok)

    def replies(self, comment: str) -> int:
        return sum(1 for c in self.platform.calls("stream/chat/send", since=self.mark)
                   if c.get("agent") == self.agent.name
                   and c["body"].get("message") == f"re {comment}")

    def cycle(self, cycle: Cycle) -> None:
        run = self.start_run(cycle)
        if not self.await_live(run):
            cycle.notes.append(f"not live within {LIVE_TIMEOUT:g}s; see {run.log}")
            self.stop(run, cycle)
            return
        cycle.live = True
        cycle.to_live_seconds = round(time.monotonic() - run.started, 2)
        self.answered(run, self.platform.comment(self.agent.name, "hello chaos"), cycle)
        run = self.inject(run, cycle)
        if cycle.recovered:
            self.answered(run, self.platform.comment(self.agent.name, "still there?"), cycle)
        self.stop(run, cycle)

    def inject(self, run: Run, cycle: Cycle) -> Run:
        """Apply the cycle's fault; wait until recovered; the run now in charge."""
        p, name, fault = self.platform, self.agent.name, cycle.fault
        old = self.agent.ffmpeg()
        mark = p.mark()
        t0 = time.monotonic()
        if fault == "ffmpeg-kill" and old is not None and same_process(*old):
            os.kill(old[0], signal.SIGKILL)
        elif fault == "freeze":
            p.admin("POST", "ingest/freeze", {"agent": name})
        elif fault == "503-burst":
            p.admin("PUT", "faults", {"rules": ["status=503,count=12"]})
        elif fault == "latency":
            p.admin("PUT", "faults", {"rules": ["latency=700ms,count=10"]})
        elif fault == "conflict-409":
            p.admin("PUT", "faults", {"rules": ["path=stream/comments,status=409,count=1"]})
        elif fault == "rotate-key":
            p.admin("POST", "ingest/rotate-key", {"agent": name})
        elif fault == "drop-publisher":
            p.admin("POST", "ingest/drop", {"agent": name})
        elif fault == "orchestrator-kill":
            run.kill()
            down = p.comment(name, "while the orchestrator is down")
            run = self.start_run(cycle, "-resumed")
            if self.await_live(run, RECOVER_TIMEOUT):
                cycle.recovered = True
                cycle.recover_seconds = round(time.monotonic() - t0, 2)
                now = self.agent.ffmpeg()
                how = "adopted" if now is not None and old is not None and now[0] == old[0] \
                    else "restarted"
                cycle.info.append(f"ffmpeg {how}")
                self.answered(run, down, cycle)
            return run
        if fault in RIDDEN:
            wait_for(lambda: all(r["count"] is not None and r["fired"] >= r["count"]
                                 for r in p.admin("GET", "faults")["rules"]), 20.0, run.tick)
            p.admin("DELETE", "faults")
            ok = run.proc.poll() is None and self.await_live(run, RECOVER_TIMEOUT)
        else:
            def back() -> bool:
                now = self.agent.ffmpeg()
                if now is None or (old is not None and now[0] == old[0]) or not run.live():
                    return False
                published = [c for c in p.calls(kind="ingest", event="publish", since=mark)
                             if c.get("agent") == name and c.get("reason") == "accepted"]
                return bool(published) and p.is_live(name)

            ok = bool(wait_for(back, RECOVER_TIMEOUT, run.tick))
            p.admin("DELETE", "faults")  # also thaws a frozen connection
        if ok:
            cycle.recovered = True
            cycle.recover_seconds = round(time.monotonic() - t0, 2)
        else:
            cycle.notes.append(f"not live again within {RECOVER_TIMEOUT:g}s; see {run.log}")
        return run

    def stop(self, run: Run, cycle: Cycle) -> None:
        run.tick()
        res = self.agent.cli("stop")
        if res.returncode != 0:
            cycle.notes.append(f"stop exited {res.returncode}: {res.stderr.strip()[-200:]}")
        rc = run.end(60.0)
        if rc != 0:
            cycle.notes.append(f"run exited {rc}; see {run.log}")
        skip = {r.proc.pid for r in self.runs}
        left = wait_for(lambda: not self.agent.leftovers(skip), 10.0)
        if not left:
            cycle.orphans = self.agent.leftovers(skip)
            for pid, (_n, ct) in list(self.agent.seen.items()):  # ours, by PID + start time
                if pid not in skip and same_process(pid, ct):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        cycle.corrupt = check_files(self.agent)
        if self.agent.state().get("state") != "stopped":
            cycle.notes.append(f"state after stop: {self.agent.state().get('state')}")


def check_files(agent: Agent) -> list[str]:
    """state.json must load as the tool's own model; every journal line but a torn last one
    must parse."""
    from retake_fsm.state import RunState

    bad = []
    path = agent.state_dir / "state.json"
    try:
        RunState.model_validate_json(path.read_text("utf-8"))
    except Exception as exc:  # any failure is what we count
        bad.append(f"{path}: {type(exc).__name__}")
    lines = (agent.state_dir / "journal.jsonl").read_text("utf-8").splitlines()
    for n, line in enumerate(lines[:-1], 1):
        try:
            json.loads(line)
        except ValueError:
            bad.append(f"journal.jsonl:{n}")
    return bad


def secret_leaks(agent: Agent, token: str, outputs: list[Path]) -> list[str]:
    """Files of ours (state dir, run outputs) holding the token or any RTMP key in clear."""
    secrets_ = [s for s in [token, *agent.keys] if s]
    files = [p for p in agent.state_dir.rglob("*") if p.is_file()] + outputs
    leaks = []
    for path in files:
        with contextlib.suppress(OSError):
            text = path.read_text("utf-8", "replace")
            leaks += [f"{path.name}: {s[:4]}..." for s in secrets_ if s in text]
    return leaks


# --- the whole run ---------------------------------------------------------------------------

def register(platform: Platform, work: Path) -> tuple[Agent, str]:
    import base58

    name = f"chaos-{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAKE_")}
    env.update(platform.env(), HOME=str(work / "home"), XDG_STATE_HOME=str(work / "state"),
               RETAKE_STATES=str(REPO / "states.yaml"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    for d in ("home", "state"):
        (work / d).mkdir(parents=True, exist_ok=True)
    agent = Agent(root=work, name=name, env=env)
    wallet = base58.b58encode(secrets.token_bytes(32)).decode()
    steps = [(("register", "--name", name, "--description", "chaos agent", "--image-url",
               "https://example.invalid/chaos.png", "--wallet", wallet, "--ticker", "CHAOS"), 0),
             (("verify",), 3), (("verify", "--tweet-url", TWEET), 0)]
    for args, expected in steps:
        res = agent.cli(*args)
        if res.returncode != expected:
            raise SystemExit(f"chaos: `retake-fsm {' '.join(args[:1])}` exited "
                             f"{res.returncode}: {res.stderr.strip()}")
    creds = json.loads((work / "home" / ".config" / "retake" / "credentials.json").read_text())
    return agent, str(creds["access_token"])


def schedule(cycles: int, seed: int, faults: tuple[str, ...]) -> list[str]:
    """Every fault once per round, each round shuffled by the seeded RNG."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < cycles:
        round_ = list(faults)
        rng.shuffle(round_)
        out += round_
    return out[:cycles]


def summarize(cycles: list[Cycle], duplicates: dict[str, int], leaks: list[str],
              recover_transitions: int, seed: int, seconds: float) -> dict[str, Any]:
    per_fault: dict[str, list[float]] = {}
    for c in cycles:
        if c.recover_seconds is not None:
            per_fault.setdefault(c.fault, []).append(c.recover_seconds)

    def stats(faults: dict[str, list[float]]) -> dict[str, dict[str, float]]:
        return {f: {"median": round(statistics.median(v), 2), "max": round(max(v), 2),
                    "n": len(v)} for f, v in sorted(faults.items())}

    return {
        "cycles": len(cycles), "seed": seed, "seconds": round(seconds, 1),
        "live_reached": sum(c.live for c in cycles),
        "recoveries": sum(c.recovered for c in cycles),
        "recover_transitions": recover_transitions,
        # breaking faults: fault to live again; 503-burst / latency: how long it was ridden out
        "time_to_recover": stats({f: v for f, v in per_fault.items() if f not in RIDDEN}),
        "ridden_out": stats({f: v for f, v in per_fault.items() if f in RIDDEN}),
        "time_to_live_median": round(statistics.median(
            [c.to_live_seconds for c in cycles if c.to_live_seconds is not None] or [0.0]), 2),
        "duplicate_replies": sum(n - 1 for n in duplicates.values()),
        "orphans": sum(len(c.orphans) for c in cycles),
        "corrupt_state_files": sum(len(c.corrupt) for c in cycles),
        "unanswered": sum(c.unanswered for c in cycles),
        "secret_leaks": len(leaks),
        "secrets_checked": 0,
        "failures": [{"cycle": c.index, "fault": c.fault, "notes": c.notes,
                      "orphans": c.orphans, "corrupt": c.corrupt}
                     for c in cycles if c.notes or c.orphans or c.corrupt
                     or not (c.live and c.recovered)],
    }


def verdict(summary: dict[str, Any]) -> bool:
    return (summary["live_reached"] == summary["cycles"] and summary["duplicate_replies"] == 0
            and summary["orphans"] == 0 and summary["corrupt_state_files"] == 0
            and summary["secret_leaks"] == 0)


def print_summary(s: dict[str, Any], ok: bool) -> None:
    print(f"\nchaos: {s['cycles']} cycles, seed {s['seed']}, {s['seconds']}s")
    print(f"  live reached         {s['live_reached']}/{s['cycles']} "
          f"(median {s['time_to_live_median']}s from `run` to live)")
    print(f"  recoveries           {s['recoveries']}/{s['cycles']} faults survived "
          f"({s['recover_transitions']} recover transitions)")
    for title, key in (("time to live again", "time_to_recover"), ("ridden out", "ridden_out")):
        for fault, t in s[key].items():
            print(f"    {title:<18} {fault:<18} median {t['median']}s, max {t['max']}s "
                  f"(n={t['n']})")
    for key in ("duplicate_replies", "orphans", "corrupt_state_files", "unanswered",
                "secret_leaks"):
        print(f"  {key.replace('_', ' '):<20} {s[key]}")
    print(f"  (secrets looked for: the token and {s['secrets_checked'] - 1} RTMP keys, in the "
          "state dir and every run's output)")
    for f in s["failures"]:
        print(f"  cycle {f['cycle']} ({f['fault']}): {'; '.join(f['notes'])} "
              f"{f['orphans'] or ''} {f['corrupt'] or ''}".rstrip())
    print(f"verdict: {'PASS' if ok else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default=",".join(FAULTS),
                    help=f"comma-separated subset of: {', '.join(FAULTS)}")
    ap.add_argument("--sandbox-dir", type=Path,
                    help="data dir of a running sandbox (its sandbox.json); default: start one")
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, state)")
    args = ap.parse_args(argv)
    faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown or not faults or args.cycles < 1:
        ap.error(f"--faults: unknown {unknown}" if unknown else "need --cycles >= 1 and a fault")

    work = Path(tempfile.mkdtemp(prefix="retake-chaos-"))
    t0 = time.monotonic()
    platform = Platform(args.sandbox_dir, work)
    cycles: list[Cycle] = []
    chaos: Chaos | None = None
    try:
        agent, token = register(platform, work)
        responder = shlex.join([sys.executable, str(ECHO_RESPONDER)])
        chaos = Chaos(platform, agent, work, responder)
        for i, fault in enumerate(schedule(args.cycles, args.seed, faults), 1):
            cycle = Cycle(index=i, fault=fault)
            cycles.append(cycle)
            chaos.cycle(cycle)
            said = "; ".join(cycle.info + cycle.notes)
            took = f" in {cycle.recover_seconds}s" if cycle.recover_seconds else ""
            print(f"cycle {i:>3} {fault:<18} live={'yes' if cycle.live else 'NO'} "
                  f"recovered={'yes' if cycle.recovered else 'NO'}{took} {said}".rstrip(),
                  flush=True)
        replies = Counter(c["body"]["message"][3:]
                          for c in platform.calls("stream/chat/send", since=chaos.mark)
                          if c.get("agent") == agent.name
                          and str(c["body"].get("message", "")).startswith("re "))
        duplicates = {k: n for k, n in replies.items() if n > 1}
        leaks = secret_leaks(agent, token, [r.log for r in chaos.runs])
        transitions = sum(1 for e in agent.journal()
                          if e.get("event") == "transition" and e.get("transition") == "recover")
    except KeyboardInterrupt:
        print("\nchaos: interrupted; stopping what runs", file=sys.stderr)
        return 130
    finally:
        for run in chaos.runs if chaos else []:
            if run.proc.poll() is None:
                run.end(60.0, finishing=0)
        platform.close()
    summary = summarize(cycles, duplicates, leaks, transitions, args.seed, time.monotonic() - t0)
    summary["duplicates"] = duplicates
    summary["leaks"] = leaks
    summary["secrets_checked"] = 1 + len(agent.keys)
    summary["work_dir"] = str(work) if args.keep else None
    ok = verdict(summary)
    print_summary(summary, ok)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
