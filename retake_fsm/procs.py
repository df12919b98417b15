"""The one subprocess wrapper: start, watch, stop and adopt our children by PID + start time.

Every child (Xvfb, the scene window, ffmpeg, scrot) goes through `ProcessRunner`:

- `start()` logs the argv (secrets redacted), sends stdout/stderr to
  `<state>/logs/<name>.log`, starts the child in its own session (a Ctrl-C to
  `run` does not reach it; it survives a SIGKILL of `run` so the next run can
  adopt it) and records PID + psutil create_time in `state.processes[name]`,
  saved at once.
- A child whose argv carries a secret (an RTMP key) has its output relayed
  through `redact()` by us instead of writing the log file itself; ffmpeg
  ignores SIGPIPE, so it outlives us even then.
- `adopt()` takes back a recorded child after a crash: PID alive AND the same
  create_time (a reused PID is never taken for ours). `wait()` on an adopted
  child polls psutil.
- `stop()` is polite then firm: ffmpeg gets `q` on stdin, then SIGINT,
  SIGTERM, SIGKILL; anything else SIGTERM then SIGKILL, each with a short
  grace. The create_time is checked again before every signal: we never signal
  a process we did not start. Never `pkill`/`killall`.
- With `progress=`, ffmpeg's `-progress` file is tailed into `Proc.progress`
  (a file, not a pipe: ffmpeg survives our death and an adopter keeps reading).

Waits on real processes (grace periods, psutil polls, file tails) are real
time; timestamps (`Progress.last_advance`) come from the injected clock, so a
watchdog driven by `FakeClock` sees a frozen counter age as its clock advances.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from .clock import Clock
from .context import Emit
from .encoder import ProgressParser
from .errors import MissingBinaryError, ProcessError
from .redact import redact
from .settings import Paths
from .state import ProcRecord, RunState

# The Debian package that provides each binary we may run.
PACKAGES: dict[str, str] = {
    "ffmpeg": "ffmpeg",
    "Xvfb": "xvfb",
    "scrot": "scrot",
    "xterm": "xterm",
    "nginx": "nginx",
    "xdpyinfo": "x11-utils",
}

CREATE_TIME_TOLERANCE = 0.02  # seconds; psutil's create_time has clock-tick resolution
POLL = 0.05  # while stopping: how often we look whether the child is gone (real seconds)
ADOPTED_POLL = 0.25  # how often an adopted child (not our child: no wait()) is looked at
TAIL_POLL = 0.1  # how often the -progress file is read
TAIL_LINES = 50


def package_for(binary: str) -> str:
    return PACKAGES.get(Path(binary).name, Path(binary).name)


def resolve_binary(binary: str) -> str:
    """The full path of `binary`, or MissingBinaryError naming the Debian package."""
    found = shutil.which(binary)
    if found is None:
        raise MissingBinaryError(Path(binary).name, package_for(binary))
    return found


def same_process(pid: int, create_time: float) -> bool:
    """True when `pid` is running (not a zombie) and started at `create_time`."""
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) > CREATE_TIME_TOLERANCE:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def is_ffmpeg(argv: list[str]) -> bool:
    return bool(argv) and Path(argv[0]).name.startswith("ffmpeg")


@dataclass
class Progress:
    """The latest ffmpeg `-progress` block."""

    frame: int = 0
    fps: float = 0.0
    bitrate: str = ""
    speed: str = ""
    drop_frames: int = 0
    dup_frames: int = 0
    total_size: int = 0
    out_time: str = ""
    ended: bool = False  # ffmpeg wrote `progress=end`
    blocks: int = 0  # blocks read so far
    last_advance: float = 0.0  # clock.monotonic() when `frame` last increased

    def update(self, block: Mapping[str, str], now: float) -> None:
        def num(key: str, cast: Callable[[str], float | int], default: float | int) -> float | int:
            try:
                return cast(block[key].strip())
            except (KeyError, ValueError):
                return default

        frame = int(num("frame", int, self.frame))
        if frame > self.frame:
            self.last_advance = now
        self.frame = frame
        self.fps = float(num("fps", float, self.fps))
        self.bitrate = block.get("bitrate", self.bitrate).strip()
        self.speed = block.get("speed", self.speed).strip()
        self.drop_frames = int(num("drop_frames", int, self.drop_frames))
        self.dup_frames = int(num("dup_frames", int, self.dup_frames))
        self.total_size = int(num("total_size", int, self.total_size))
        self.out_time = block.get("out_time", self.out_time).strip()
        self.ended = block.get("progress", "").strip() == "end"
        self.blocks += 1


@dataclass
class Proc:
    """One child of ours, started now or adopted after a crash."""

    name: str
    pid: int
    record: ProcRecord
    adopted: bool = False
    returncode: int | None = None
    progress: Progress | None = None
    _popen: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _exited: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _relay: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        """Running AND still the process we started (same create_time)."""
        if self.returncode is not None:
            return False
        return same_process(self.pid, self.record.create_time)

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self._popen.stdin if self._popen is not None else None

    async def wait(self) -> int:
        """The exit code (negative: killed by that signal; -1 when adopted and unknowable)."""
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def last_lines(self, n: int = 5) -> list[str]:
        """The child's last output lines, redacted (from memory, else from its log file)."""
        lines = list(self._tail)
        if not lines and self.record.log:
            with contextlib.suppress(OSError):
                data = Path(self.record.log).read_bytes()[-8192:]
                lines = [redact(x) for x in data.decode("utf-8", "replace").splitlines()]
        lines = [x for x in lines if x.strip() and not x.startswith("# ")]
        return lines[-n:]

    def last_line(self) -> str:
        lines = self.last_lines(1)
        return lines[0] if lines else ""


class ProcessRunner:
    """Starts, watches, stops and adopts our children; the only place that signals them."""

    def __init__(self, paths: Paths, state: RunState, clock: Clock, emit: Emit,
                 save: Callable[[], None], *, grace: float = 3.0) -> None:
        self.paths = paths
        self.state = state
        self.clock = clock
        self.emit = emit
        self.save = save
        self.grace = grace  # seconds each polite step gets before the next, firmer one
        self._procs: dict[str, Proc] = {}

    # -- start ---------------------------------------------------------------------------

    async def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                    stdin: bool = False, progress: Path | None = None,
                    pass_fds: tuple[int, ...] = ()) -> Proc:
        """Start `argv` as child `name` (an old live child of that name is stopped first).

        `env` entries are added to the inherited environment. `stdin=True` keeps a pipe
        to the child's stdin (ffmpeg's `q`). `progress` is ffmpeg's `-progress` file.
        """
        if not argv:
            raise ProcessError(f"{name}: empty command line")
        exe = resolve_binary(argv[0])
        old = self._procs.get(name)
        if old is not None and old.alive:
            await self.stop(name)
        self.paths.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.paths.logs_dir / f"{name}.log"
        shown = [redact(a) for a in argv]
        secret_output = shown != argv
        if progress is not None:
            progress.unlink(missing_ok=True)
        child_env = {**os.environ, **(env or {})}
        log: IO[bytes] = open(log_path, "ab")  # the child's, or our relay's (closed by it)
        try:
            log.write(f"# {self.clock.now().isoformat()} start: {' '.join(shown)}\n".encode())
            log.flush()
            popen = await asyncio.create_subprocess_exec(
                exe, *argv[1:],
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if secret_output else log,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env, start_new_session=True, pass_fds=pass_fds,
            )
        except OSError as exc:
            log.close()
            raise ProcessError(f"{name}: cannot start {Path(exe).name}: {exc.strerror}",
                               hint="check the binary and its permissions") from exc
        if not secret_output:
            log.close()
        create_time = _create_time(popen.pid)
        record = ProcRecord(name=name, pid=popen.pid, create_time=create_time, argv=shown,
                            log=str(log_path),
                            progress=str(progress) if progress is not None else None,
                            started_at=self.clock.now())
        proc = Proc(name=name, pid=popen.pid, record=record, _popen=popen)
        self._procs[name] = proc
        self.state.processes[name] = record
        self.save()
        self.emit("process.start", name=name, pid=popen.pid, argv=shown, log=str(log_path))
        if secret_output:
            proc._relay = asyncio.create_task(self._relay_output(proc, popen, log))
            proc._tasks.append(proc._relay)
        proc._tasks.append(asyncio.create_task(self._watch_child(proc, popen)))
        if progress is not None:
            self._tail_progress(proc, progress, from_start=True)
        return proc

    async def _relay_output(self, proc: Proc, popen: asyncio.subprocess.Process,
                            log: IO[bytes]) -> None:
        """Copy a child's output to its log, redacted line by line."""
        try:
            assert popen.stdout is not None
            while True:
                line = await popen.stdout.readline()
                if not line:
                    break
                text = redact(line.decode("utf-8", "replace").rstrip("\r\n"))
                for part in text.split("\r"):
                    if part.strip():
                        proc._tail.append(part)
                log.write((text + "\n").encode())
                log.flush()
        finally:
            log.close()

    async def _watch_child(self, proc: Proc, popen: asyncio.subprocess.Process) -> None:
        rc = await popen.wait()
        if proc._relay is not None:  # let the relay drain what the child wrote last
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc._relay), 1.0)
        if popen.stdin is not None:
            popen.stdin.close()
        self._exited(proc, rc)

    async def _watch_adopted(self, proc: Proc) -> None:
        while same_process(proc.pid, proc.record.create_time):
            await asyncio.sleep(ADOPTED_POLL)
        self._exited(proc, -1)

    def _exited(self, proc: Proc, rc: int) -> None:
        if proc.returncode is not None:
            return
        proc.returncode = rc
        proc._exited.set()
        rec = self.state.processes.get(proc.name)
        if rec is not None and rec.pid == proc.pid:
            del self.state.processes[proc.name]
            self.save()
        self.emit("process.exit", name=proc.name, pid=proc.pid, returncode=rc,
                  last=proc.last_line())

    # -- progress ------------------------------------------------------------------------

    def _tail_progress(self, proc: Proc, path: Path, *, from_start: bool) -> None:
        proc.progress = Progress(last_advance=self.clock.monotonic())
        proc._tasks.append(asyncio.create_task(self._tail(proc, path, from_start)))

    async def _tail(self, proc: Proc, path: Path, from_start: bool) -> None:
        assert proc.progress is not None
        parser = ProgressParser()
        pos = 0
        if not from_start:  # an adopted ffmpeg: only the newest blocks matter
            with contextlib.suppress(OSError):
                size = path.stat().st_size
                pos = max(0, size - 4096)
                parser.skip_partial = pos > 0
        while True:
            try:
                with open(path, "rb") as fh:
                    if fh.seek(0, os.SEEK_END) < pos:  # truncated: a new ffmpeg
                        pos = 0
                    fh.seek(pos)
                    data = fh.read()
                    pos += len(data)
            except FileNotFoundError:
                data = b""
            if data:
                for block in parser.feed(data.decode("utf-8", "replace")):
                    proc.progress.update(block, self.clock.monotonic())
            if proc.returncode is not None:
                return
            await asyncio.sleep(TAIL_POLL)

    # -- adopt / get ---------------------------------------------------------------------

    def adopt(self, record: ProcRecord) -> Proc | None:
        """Take back a child recorded by an earlier run; None if it is dead or the PID reused."""
        current = self._procs.get(record.name)
        if current is not None and current.pid == record.pid and current.alive:
            return current
        if not same_process(record.pid, record.create_time):
            self.emit("process.gone", name=record.name, pid=record.pid)
            return None
        proc = Proc(name=record.name, pid=record.pid, record=record, adopted=True)
        self._procs[record.name] = proc
        self.state.processes[record.name] = record
        self.emit("process.adopt", name=record.name, pid=record.pid)
        proc._tasks.append(asyncio.create_task(self._watch_adopted(proc)))
        if record.progress:
            self._tail_progress(proc, Path(record.progress), from_start=False)
        return proc

    def get(self, name: str) -> Proc | None:
        return self._procs.get(name)

    # -- stop ----------------------------------------------------------------------------

    async def stop(self, name: str) -> None:
        """Stop child `name` politely, then firmly. A dead, unknown or foreign PID: no signal."""
        proc = self._procs.get(name)
        if proc is None:
            rec = self.state.processes.get(name)
            if rec is None:
                return
            proc = self.adopt(rec)
            if proc is None:
                self.state.processes.pop(name, None)
                self.save()
                return
        if proc.returncode is None:
            steps: list[tuple[str, float]] = []
            if is_ffmpeg(proc.record.argv):
                if proc.stdin is not None:
                    steps.append(("q", self.grace))
                steps.append(("SIGINT", self.grace))
            steps += [("SIGTERM", self.grace), ("SIGKILL", max(self.grace, 2.0))]
            for how, grace in steps:
                if not await self._send(proc, how):
                    break
                if await self._wait_exit(proc, grace):
                    break
            else:
                raise ProcessError(f"{name} (PID {proc.pid}) did not exit after SIGKILL",
                                   hint="check it with `ps`; it may be stuck in the kernel")
        await self._wait_exit(proc, max(self.grace, 2.0))
        for task in proc._tasks:
            task.cancel()
        for task in proc._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if proc.returncode is None:  # gone, but not reaped by us (adopted, or lost watch)
            self._exited(proc, -1)
        self._procs.pop(name, None)

    async def _send(self, proc: Proc, how: str) -> bool:
        """Deliver one stop step; False when the process is already gone (or not ours)."""
        if proc.returncode is not None or not same_process(proc.pid, proc.record.create_time):
            return False
        self.emit("process.signal", name=proc.name, pid=proc.pid, signal=how)
        if how == "q":
            stdin = proc.stdin
            assert stdin is not None
            try:
                stdin.write(b"q")
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                pass  # it is exiting already; the next step checks
            return True
        try:
            os.kill(proc.pid, getattr(signal, how))
        except ProcessLookupError:
            return False
        return True

    async def _wait_exit(self, proc: Proc, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if proc.returncode is not None:
                return True
            if not same_process(proc.pid, proc.record.create_time) and proc._popen is None:
                return True  # adopted: gone (or a zombie waiting for a reaper that is not us)
            await asyncio.sleep(min(POLL, max(0.0, deadline - loop.time())))
        return proc.returncode is not None

    async def stop_all(self) -> None:
        """Stop every child of ours, newest first (ffmpeg before the scene before Xvfb)."""
        names = list(dict.fromkeys([*reversed(self._procs), *reversed(self.state.processes)]))
        errors: list[ProcessError] = []
        for name in names:
            try:
                await self.stop(name)
            except ProcessError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        """Stop watching (children keep running; a later run may adopt them)."""
        for proc in self._procs.values():
            for task in proc._tasks:
                task.cancel()
            for task in proc._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- short tools ---------------------------------------------------------------------

    async def run_once(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                       timeout: float = 10.0) -> tuple[int, bytes]:
        """Run a short tool (scrot) to completion: (exit code, stdout). stderr goes to its log."""
        exe = resolve_binary(argv[0])
        self.paths.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.logs_dir / f"{name}.log", "ab") as log:
            popen = await asyncio.create_subprocess_exec(
                exe, *argv[1:], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )
            try:
                out, _ = await asyncio.wait_for(popen.communicate(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    popen.kill()  # our own child, still unreaped: its PID cannot be reused
                await popen.wait()
                raise ProcessError(f"{name} did not finish within {timeout:g}s",
                                   hint=f"see {self.paths.logs_dir / (name + '.log')}") from None
        assert popen.returncode is not None
        return popen.returncode, out


def _create_time(pid: int) -> float:
    """The child's start time; 0.0 if it was already reaped (then it is never signalled)."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0
