"""Stopping for real (sandbox platform, Xvfb, ffmpeg): stop_stream and `retake-fsm stop`."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from retake_fsm.actions.start_display import start_display
from retake_fsm.actions.start_encoder import start_encoder
from retake_fsm.actions.start_scene import start_scene
from retake_fsm.actions.stop_stream import stop_stream
from retake_fsm.api import RetakeClient
from retake_fsm.context import Session
from retake_fsm.settings import Paths
from retake_fsm.state import RunState
from retake_fsm.store import Store
from tests.fixtures.env import Env
from tests.fixtures.procs import ProcKit, become_subreaper, descendants, reap, wait_gone
from tests.fixtures.sandbox import Sandbox, SandboxAgent, wait_until


async def _go_encoding(kit: ProcKit, agent: SandboxAgent) -> Session:
    url, key = agent.rtmp()
    agent.start()
    session = Session(rtmp_url=url, rtmp_key=key)
    ctx = kit.ctx(session=session)
    await start_display(ctx)
    await start_scene(ctx)
    await start_encoder(ctx)
    return session


async def test_stop_stream_ends_everything_even_with_the_api_down(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """Platform down (503): stream/stop is attempted and recorded, every process of ours is gone."""
    session = await _go_encoding(kit, sandbox_agent)
    pids = {name: rec.pid for name, rec in kit.state.processes.items()}
    assert set(pids) == {"xvfb", "scene", "ffmpeg"}
    kit.state.stream.started_at = datetime.now(UTC)
    sandbox.set_faults("down")
    mark = sandbox.mark()
    out = io.StringIO()
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        ctx = kit.ctx(api=api, session=session, out=out)
        assert await stop_stream(ctx) is None
    assert [c["status"] for c in sandbox.calls("stream/stop", since=mark)] == [503]
    assert not await wait_gone(pids.values(), timeout=1.0)
    assert kit.state.processes == {} and session.rtmp_key is None
    stats = kit.state.final_stats
    assert stats is not None and stats["processes_left"] == []
    assert any(p.startswith("stream/stop:") for p in stats["problems"])
    assert kit.state.last_error is not None and kit.state.last_error.kind == "server"
    assert kit.state.stream.started_at is None  # the session is not ours to stop twice
    assert "stream stopped" in out.getvalue() and "warning: stream/stop" in out.getvalue()
    order = [f["name"] for e, f in kit.events if e == "process.exit"]
    assert order == ["ffmpeg", "scene", "xvfb"]  # publishing ends first, the display last
    assert "stream.stop_failed" in kit.names()
    sandbox.clear_faults()
    sandbox_agent.stop()


async def test_stop_stream_reports_the_platform_final_stats(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """Platform up: stream/stop's duration and viewers land in final_stats and on the console."""
    session = await _go_encoding(kit, sandbox_agent)
    kit.state.stream.started_at = datetime.now(UTC)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=5, message="is_live")
    out = io.StringIO()
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        await stop_stream(kit.ctx(api=api, session=session, out=out))
    stats = kit.state.final_stats
    assert stats is not None and stats["status"] == "stopped" and stats["viewers"] >= 1
    assert "problems" not in stats and kit.state.processes == {}
    assert f"{stats['duration_seconds']}s on air" in out.getvalue()
    assert not sandbox_agent.status()["is_live"]


async def test_stop_stream_without_a_session_skips_the_api(kit: ProcKit) -> None:
    """No stream/start happened: no API call, processes gone, stats say no session was open."""
    ctx = kit.ctx(out=io.StringIO())
    await start_display(ctx)
    pid = kit.state.processes["xvfb"].pid
    await stop_stream(ctx)
    assert not await wait_gone([pid], timeout=1.0)
    assert kit.state.final_stats is not None and "problems" not in kit.state.final_stats
    assert "no session was open" in ctx.console.lines[-1]


DEAD_RUN = textwrap.dedent("""
    import asyncio, sys
    from datetime import UTC, datetime
    from retake_fsm.actions.start_display import start_display
    from retake_fsm.actions.start_encoder import start_encoder
    from retake_fsm.actions.start_scene import start_scene
    from retake_fsm.api import RetakeClient
    from retake_fsm.clock import SystemClock
    from retake_fsm.context import ActionContext, Session
    from retake_fsm.procs import ProcessRunner
    from retake_fsm.settings import Paths, Settings
    from retake_fsm.store import Store

    async def main():
        rtmp_url, key = sys.argv[1], sys.argv[2]
        paths = Paths("default")
        store = Store(paths)
        with store.lock():
            state = store.load()
            state.state = "encoding"
            state.stream.started_at = datetime.now(UTC)
            settings = Settings()
            settings.display.display = "auto"
            save = lambda: store.save(state)
            runner = ProcessRunner(paths, state, SystemClock(), store.emit, save)
            ctx = ActionContext(settings=settings, paths=paths, clock=SystemClock(), state=state,
                                session=Session(rtmp_url=rtmp_url, rtmp_key=key),
                                api=RetakeClient("http://127.0.0.1:9/api/v1"), procs=runner,
                                emit=store.emit, save=save)
            await start_display(ctx)
            await start_scene(ctx)
            await start_encoder(ctx)
            save()
            print("encoding", flush=True)
            await asyncio.Event().wait()  # until killed

    asyncio.run(main())
""")


def test_stop_command_cleans_up_after_a_killed_run(env: Env, sandbox: Sandbox,
                                                   sandbox_agent: SandboxAgent) -> None:
    """`retake-fsm stop`, no run alive: stream/stop; a SIGKILLed run's children adopted, stopped."""
    url, key = sandbox_agent.rtmp()
    sandbox_agent.start()
    become_subreaper()
    agent_env = {**env.vars, **sandbox_agent.env()}
    dead = subprocess.Popen([sys.executable, "-c", DEAD_RUN, url, key],
                            env=agent_env, stdout=subprocess.PIPE, text=True)
    try:
        assert dead.stdout is not None and dead.stdout.readline().strip() == "encoding"
    finally:
        dead.kill()
        dead.wait()
    paths = Paths("default", env=env.vars)
    left = RunState.model_validate_json(paths.state_file.read_text())
    pids = {name: rec.pid for name, rec in left.processes.items()}
    assert set(pids) == {"xvfb", "scene", "ffmpeg"}
    tails = descendants(pids.values())  # the scene's `tail`, orphaned when xterm stops
    mark = sandbox.mark()
    try:
        result = env.cli("stop", timeout=60, extra_env=sandbox_agent.env())
        assert not asyncio.run(wait_gone([*pids.values(), *tails], timeout=2.0))
    finally:
        reap([*pids.values(), *tails])
    assert result.returncode == 0, result.stderr
    assert "state: stopped" in result.stdout and "s on air" in result.stdout
    assert [c["status"] for c in sandbox.calls("stream/stop", since=mark)] == [200]
    state = Store(paths).load()
    assert state.state == "stopped" and state.processes == {}
    assert state.final_stats is not None and state.final_stats["status"] == "stopped"
    journal = [json.loads(x) for x in paths.journal_file.read_text().splitlines()]
    assert any(e["event"] == "transition" and e.get("dest") == "stopped" for e in journal)
    assert key not in paths.journal_file.read_text() + paths.state_file.read_text()
    assert key not in "".join(p.read_text() for p in Path(paths.logs_dir).glob("*.log"))


def test_stop_command_stops_a_running_run(env: Env, sandbox: Sandbox,
                                          sandbox_agent: SandboxAgent) -> None:
    """`retake-fsm stop` from another process ends a live `run` cleanly; no process of ours left."""
    become_subreaper()
    agent_env = sandbox_agent.env()
    run = env.popen("run", "--display", "auto", extra_env=agent_env)
    paths = Paths("default", env=env.vars)
    store = Store(paths)
    try:
        wait_until(lambda: paths.state_file.exists() and store.load().state == "live",
                   timeout=30, message="run to reach live")
        state = store.load()
        pids = {name: rec.pid for name, rec in state.processes.items()}
        assert set(pids) == {"xvfb", "scene", "ffmpeg"}
        tails = descendants(pids.values())
        assert sandbox_agent.status()["is_live"]
        t0 = time.monotonic()
        result = env.cli("stop", timeout=90, extra_env=agent_env)
        took = time.monotonic() - t0
        print(f"\nretake-fsm stop (second process) -> run finished in {took:.2f} s")
        assert result.returncode == 0, result.stderr
        assert f"run PID {run.pid} finished; state: stopped" in result.stdout
        assert "final stats: duration_seconds=" in result.stdout
        assert run.wait(15) == 0
    finally:
        if run.poll() is None:
            run.kill()
        out, err = run.communicate(timeout=15)
    assert not asyncio.run(wait_gone([*pids.values(), *tails], timeout=2.0)), err
    reap(tails)
    final = store.load()
    assert final.state == "stopped" and final.processes == {} and final.final_stats
    assert not sandbox_agent.status()["is_live"]
    assert "stream stopped" in out and "Traceback" not in err


def test_stop_command_with_nothing_to_stop(env: Env) -> None:
    """`retake-fsm stop` on a fresh profile says there is nothing to stop and exits 0."""
    result = env.cli("stop", timeout=30)
    assert result.returncode == 0 and "no stream to stop (state: unregistered)" in result.stdout
