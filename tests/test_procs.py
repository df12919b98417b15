"""The process runner with real children: start, stop politely then firmly, adopt, no strangers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from retake_fsm.errors import MissingBinaryError
from retake_fsm.procs import ProcessRunner
from retake_fsm.state import ProcRecord, RunState
from tests.fixtures.procs import ProcKit, become_subreaper, gone, reap, wait_gone

IGNORE_TERM = ("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "print('ready', flush=True); signal.pause()")


async def wait_for(cond: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_start_records_pid_and_create_time_and_stops_politely(kit: ProcKit) -> None:
    """A started child is recorded (PID + create_time, saved at once) and SIGTERM ends it."""
    proc = await kit.runner.start("sleeper", ["sleep", "60"])
    saved = RunState.model_validate_json(kit.paths.state_file.read_text())
    rec = saved.processes["sleeper"]
    assert rec.pid == proc.pid
    assert rec.create_time == psutil.Process(proc.pid).create_time()
    assert proc.alive and os.getsid(proc.pid) == proc.pid  # its own session: Ctrl-C misses it
    assert (kit.paths.logs_dir / "sleeper.log").read_text().splitlines()[0].endswith("sleep 60")
    await kit.runner.stop("sleeper")
    assert proc.returncode == -signal.SIGTERM and gone(proc.pid)
    assert "sleeper" not in kit.state.processes
    assert [f["signal"] for e, f in kit.events if e == "process.signal"] == ["SIGTERM"]


async def test_stop_is_firm_with_a_child_that_ignores_sigterm(kit: ProcKit) -> None:
    """A child ignoring SIGTERM gets SIGKILL after the grace period."""
    proc = await kit.runner.start("stubborn", [sys.executable, "-c", IGNORE_TERM])
    await wait_for(lambda: "ready" in proc.last_lines())
    await kit.runner.stop("stubborn")
    assert proc.returncode == -signal.SIGKILL and gone(proc.pid)
    assert [f["signal"] for e, f in kit.events if e == "process.signal"] == ["SIGTERM", "SIGKILL"]


async def test_ffmpeg_stops_on_q_and_reports_progress(kit: ProcKit) -> None:
    """ffmpeg gets `q` on stdin first and exits 0; its -progress file feeds Proc.progress."""
    progress = kit.paths.logs_dir / "ff.progress"
    argv = ["ffmpeg", "-hide_banner", "-nostats", "-progress", str(progress), "-stats_period",
            "0.1", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-f", "null", "-"]
    proc = await kit.runner.start("ffmpeg", argv, stdin=True, progress=progress)
    assert proc.progress is not None
    await wait_for(lambda: proc.progress is not None and proc.progress.frame >= 5)
    first = proc.progress.last_advance
    await wait_for(lambda: proc.progress is not None and proc.progress.last_advance > first)
    assert proc.progress.speed.endswith("x") and proc.progress.drop_frames == 0
    await kit.runner.stop("ffmpeg")
    assert proc.returncode == 0
    assert [f["signal"] for e, f in kit.events if e == "process.signal"] == ["q"]


async def test_ffmpeg_that_ignores_q_gets_sigint(kit: ProcKit) -> None:
    """An ffmpeg that does not read stdin (-nostdin) ignores `q`; SIGINT follows after the grace."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i",
            "testsrc=size=160x120:rate=30", "-f", "null", "-"]
    proc = await kit.runner.start("ffmpeg", argv, stdin=True)
    await kit.runner.stop("ffmpeg")
    assert gone(proc.pid) and proc.returncode is not None
    assert [f["signal"] for e, f in kit.events if e == "process.signal"] == ["q", "SIGINT"]


async def test_a_reused_pid_is_never_signalled(kit: ProcKit, tmp_path: Path) -> None:
    """A record whose PID now is another process (other start time): dropped, never signalled."""
    stranger = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    try:
        real = psutil.Process(stranger.pid).create_time()
        rec = ProcRecord(name="ffmpeg", pid=stranger.pid, create_time=real - 100.0,
                         argv=["ffmpeg"])
        kit.state.processes["ffmpeg"] = rec
        assert kit.runner.adopt(rec) is None
        await kit.runner.stop("ffmpeg")
        await kit.runner.stop_all()
        assert stranger.returncode is None and not gone(stranger.pid)
        assert "ffmpeg" not in kit.state.processes
        assert "process.signal" not in kit.names()
    finally:
        stranger.kill()
        await stranger.wait()


ORPHAN_PARENT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from retake_fsm.clock import SystemClock
    from retake_fsm.procs import ProcessRunner
    from retake_fsm.settings import Paths
    from retake_fsm.state import RunState

    async def main():
        home = sys.argv[1]
        paths = Paths("test", env={"HOME": home + "/home", "XDG_STATE_HOME": home + "/state"})
        paths.ensure()
        state = RunState(profile="test")
        save = lambda: paths.state_file.write_text(state.model_dump_json())
        runner = ProcessRunner(paths, state, SystemClock(), lambda e, **f: None, save)
        progress = paths.logs_dir / "ffmpeg.progress"
        await runner.start("ffmpeg", [
            "ffmpeg", "-hide_banner", "-nostats", "-progress", str(progress),
            "-stats_period", "0.1", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30",
            "-f", "null", "-"], stdin=True, progress=progress)
        print("started", flush=True)
        await asyncio.Event().wait()  # until killed

    asyncio.run(main())
""")


async def test_adopt_after_the_parent_was_killed(kit: ProcKit, tmp_path: Path) -> None:
    """A child outlives its run's SIGKILL; a new runner adopts it, reads its progress, stops it."""
    become_subreaper()
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", ORPHAN_PARENT,
                                                  str(tmp_path), stdout=asyncio.subprocess.PIPE)
    try:
        assert parent.stdout is not None
        assert (await parent.stdout.readline()).strip() == b"started"
    finally:
        parent.kill()
        await parent.wait()
    saved = RunState.model_validate_json(kit.paths.state_file.read_text())
    rec = saved.processes["ffmpeg"]
    assert not gone(rec.pid)  # survived its parent's SIGKILL
    proc = kit.runner.adopt(rec)
    assert proc is not None and proc.adopted and proc.alive
    assert proc.progress is not None
    await wait_for(lambda: proc.progress is not None and proc.progress.frame > 0)
    await kit.runner.stop("ffmpeg")
    assert await proc.wait() == -1 and gone(rec.pid)  # adopted: the exit code is not ours to read
    reap([rec.pid])
    assert [f["signal"] for e, f in kit.events if e == "process.signal"] == ["SIGINT"]


async def test_missing_binary_names_the_debian_package(kit: ProcKit, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a binary that is not installed gives one line naming the apt package."""
    monkeypatch.setenv("PATH", str(tmp_path))
    for binary, package in [("ffmpeg", "ffmpeg"), ("Xvfb", "xvfb"), ("scrot", "scrot"),
                            ("xterm", "xterm")]:
        with pytest.raises(MissingBinaryError) as err:
            await kit.runner.start(binary.lower(), [binary])
        assert str(err.value) == f"{binary} not found (install it: apt-get install {package})"
    with pytest.raises(MissingBinaryError):
        await kit.runner.run_once("scrot", ["scrot", "-o", "x.png"])
    assert kit.state.processes == {}


async def test_a_secret_in_argv_never_reaches_log_state_or_events(kit: ProcKit) -> None:
    """An RTMP key in the argv is masked in the record, the journal events and the child's log."""
    key = "sk_live_0123456789abcdef"
    script = "import sys; print('publishing to rtmp://x/live/' + sys.argv[1], flush=True)"
    proc = await kit.runner.start("talker", [sys.executable, "-c", script, key])
    assert await proc.wait() == 0
    log = (kit.paths.logs_dir / "talker.log").read_text()
    assert "publishing to rtmp://x/live/sk_…cdef" in log
    assert key not in log
    assert key not in kit.paths.state_file.read_text()
    assert key not in json.dumps(kit.events, default=str)
    assert proc.last_line() == "publishing to rtmp://x/live/sk_…cdef"


async def test_run_once_returns_exit_code_and_output(kit: ProcKit) -> None:
    """A short tool runs to completion and hands back its exit code and stdout."""
    rc, out = await kit.runner.run_once("echo", ["echo", "hello"])
    assert (rc, out) == (0, b"hello\n")
    rc, _ = await kit.runner.run_once("false", ["false"])
    assert rc == 1


async def test_wait_on_an_adopted_process_polls_until_it_exits(kit: ProcKit) -> None:
    """wait() on an adopted child returns once the process is gone (psutil polling)."""
    first = ProcessRunner(kit.paths, kit.state, kit.runner.clock, kit.emit, kit.save, grace=0.5)
    proc = await first.start("sleeper", ["sleep", "60"])
    await first.aclose()  # the first run stops watching, as if it died
    adopted = kit.runner.adopt(kit.state.processes["sleeper"])
    assert adopted is not None and adopted.adopted
    waiter = asyncio.create_task(adopted.wait())
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await kit.runner.stop("sleeper")
    assert await asyncio.wait_for(waiter, 2) == -1
    assert not await wait_gone([proc.pid])
