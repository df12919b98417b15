"""The virtual display (Xvfb) and the optional scene window on it.

`ensure_display()` reuses our Xvfb while it is alive (across recoveries),
refuses a display someone else holds (`DisplayInUseError`: a live lock file
`/tmp/.X<N>-lock` or a socket `/tmp/.X11-unix/X<N>` that accepts connections,
not ours), or with `auto` lets Xvfb pick a free display (`-displayfd`). It is
ready when its X socket accepts a connection: no fixed sleep.

`start_scene()` puts something on screen so the stream is not blank: a
terminal-like window (`xterm ... -e tail -F <text file>`) showing a file the
agent appends to, or `scene.command`. A missing tool means no scene (a warning).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import psutil

from .context import Emit
from .errors import DisplayInUseError, InputError, MissingBinaryError, ProcessExitedError
from .procs import Proc, ProcessRunner
from .settings import DisplaySettings, Paths, SceneSettings
from .state import RunState

XVFB = "Xvfb"
LOCK_DIR = Path("/tmp")
SOCKET_DIR = Path("/tmp/.X11-unix")
XVFB_NAME = "xvfb"
SCENE_NAME = "scene"
READY_POLL = 0.02  # seconds between connection attempts while Xvfb starts


def parse_display(value: str) -> int | None:
    """':99' -> 99, 'auto' -> None; anything else is an InputError."""
    if value.strip().lower() == "auto":
        return None
    m = re.fullmatch(r"\s*:(\d{1,5})(?:\.0)?\s*", value)
    if not m:
        raise InputError(f"display {value!r}: expected ':N' (e.g. :99) or 'auto'",
                         field="display.display", hint="e.g. --display :99 or --display auto")
    return int(m.group(1))


def lock_file(n: int) -> Path:
    return LOCK_DIR / f".X{n}-lock"


def socket_path(n: int) -> Path:
    return SOCKET_DIR / f"X{n}"


def lock_pid(n: int) -> int | None:
    """The PID written in the display's lock file, if any."""
    try:
        return int(lock_file(n).read_text().strip())
    except (OSError, ValueError):
        return None


def accepts(n: int) -> bool:
    """True when the display's X socket accepts a connection right now."""
    path = socket_path(n)
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def holder(n: int, ours: int | None = None) -> str | None:
    """Why display :n is taken by someone other than PID `ours`; None when it is free (or ours)."""
    pid = lock_pid(n)
    if pid is not None and pid != ours and _pid_alive(pid):
        return f"its lock file {lock_file(n)} names PID {pid}, which is not ours"
    if (pid is None or not _pid_alive(pid)) and accepts(n):
        return f"its socket {socket_path(n)} accepts connections from a server that is not ours"
    return None


async def wait_ready(n: int, proc: Proc, timeout: float) -> None:
    """Until display :n accepts connections; ProcessExitedError if Xvfb dies first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not accepts(n):
        if not proc.alive:
            rc = await proc.wait()
            raise ProcessExitedError(XVFB, rc, proc.last_line())
        if loop.time() >= deadline:
            raise ProcessExitedError(XVFB, None, f"display :{n} not ready after {timeout:g}s")
        await asyncio.sleep(READY_POLL)


async def _read_displayfd(fd: int, proc: Proc, timeout: float) -> int:
    """The display number Xvfb writes to `-displayfd` once it is listening."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    buf = b""
    os.set_blocking(fd, False)
    while not buf.endswith(b"\n"):
        try:
            chunk = os.read(fd, 16)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
            continue
        if chunk == b"" or not proc.alive:  # EOF: Xvfb is gone
            rc = await proc.wait()
            raise ProcessExitedError(XVFB, rc, proc.last_line())
        if loop.time() >= deadline:
            raise ProcessExitedError(XVFB, None, f"no display picked after {timeout:g}s")
        await asyncio.sleep(READY_POLL)
    return int(buf.strip())


async def ensure_display(runner: ProcessRunner, settings: DisplaySettings, state: RunState,
                         emit: Emit) -> str:
    """Our Xvfb, running and accepting connections: reused if alive, else started. ':N'."""
    wanted = parse_display(settings.display)
    record = state.processes.get(XVFB_NAME)
    proc = runner.get(XVFB_NAME) or (runner.adopt(record) if record else None)
    if proc is not None and proc.alive and state.display:
        current = parse_display(state.display)
        if current is not None and (wanted is None or wanted == current) and accepts(current):
            emit("display.reuse", display=state.display, pid=proc.pid)
            return state.display
        await runner.stop(XVFB_NAME)
    elif proc is not None:
        await runner.stop(XVFB_NAME)  # dead, or not answering: forget it
    screen = f"{settings.size}x{settings.depth}"
    base = [XVFB, "-screen", "0", screen, "-ac", "-nolisten", "tcp", "-noreset"]
    if wanted is not None:
        why = holder(wanted)
        if why:
            raise DisplayInUseError(
                f"display :{wanted} is in use: {why}",
                hint="stop that X server, or pick another with --display :N or --display auto",
            )
        proc = await runner.start(XVFB_NAME, [XVFB, f":{wanted}", *base[1:]])
        n = wanted
    else:
        r, w = os.pipe()
        try:
            try:
                proc = await runner.start(XVFB_NAME, [*base, "-displayfd", str(w)],
                                          pass_fds=(w,))
            finally:
                os.close(w)  # only Xvfb writes to it now: EOF once Xvfb is gone
            try:
                n = await _read_displayfd(r, proc, settings.ready_timeout)
            except BaseException:
                await runner.stop(XVFB_NAME)
                raise
        finally:
            os.close(r)
    try:
        await wait_ready(n, proc, settings.ready_timeout)
    except BaseException:
        await runner.stop(XVFB_NAME)
        raise
    state.display = f":{n}"
    runner.save()
    emit("display.ready", display=state.display, pid=proc.pid)
    return state.display


# -- the scene ---------------------------------------------------------------------------

DEFAULT_SCENE_TEXT = "retake-fsm: live. This window shows {file}; append lines to it.\n"


def scene_text_file(scene: SceneSettings, paths: Paths) -> Path:
    return Path(scene.text_file) if scene.text_file else paths.state_dir / "scene.txt"


def scene_argv(scene: SceneSettings, text_file: Path, size: str) -> list[str]:
    """`scene.command`, or a full-screen terminal-like window tailing `text_file`."""
    if scene.command:
        return [part.replace("{file}", str(text_file)) for part in scene.command]
    width, _, height = size.partition("x")
    cols, rows = max(20, int(width) // 9), max(5, int(height) // 18)
    return [
        "xterm", "-geometry", f"{cols}x{rows}+0+0", "-fa", "Monospace", "-fs", "12",
        "-bg", "black", "-fg", "#d0d0d0", "-bw", "0", "-T", "retake-fsm",
        "-e", "tail", "-n", "200", "-F", str(text_file),
    ]


async def start_scene(runner: ProcessRunner, scene: SceneSettings, paths: Paths, display: str,
                      size: str, emit: Emit) -> Proc | None:
    """Start the scene window (reusing ours if alive); None (with a warning) when it cannot."""
    if not scene.enabled:
        return None
    record = runner.state.processes.get(SCENE_NAME)
    proc = runner.get(SCENE_NAME) or (runner.adopt(record) if record else None)
    if proc is not None and proc.alive and _proc_display(proc.pid) == display:
        emit("scene.reuse", pid=proc.pid)
        return proc
    if proc is not None:
        await runner.stop(SCENE_NAME)
    text_file = scene_text_file(scene, paths)
    if not text_file.exists():
        text_file.parent.mkdir(parents=True, exist_ok=True)
        text_file.write_text(DEFAULT_SCENE_TEXT.format(file=text_file))
    argv = scene_argv(scene, text_file, size)
    try:
        proc = await runner.start(SCENE_NAME, argv, env={"DISPLAY": display})
    except MissingBinaryError as exc:
        emit("scene.skipped", reason=str(exc))
        from loguru import logger

        logger.warning("no scene window: {} (the stream shows an empty screen)", exc)
        return None
    emit("scene.started", pid=proc.pid, display=display, text_file=str(text_file))
    return proc


def _proc_display(pid: int) -> str | None:
    """The DISPLAY a (our own) process was started with."""
    try:
        return psutil.Process(pid).environ().get("DISPLAY")
    except psutil.Error:
        return None
