"""reconcile, the first action of every run, against real processes and the sandbox platform."""

from __future__ import annotations

import asyncio
import json

from retake_fsm.actions.reconcile import reconcile
from retake_fsm.actions.start_display import start_display
from retake_fsm.actions.start_encoder import start_encoder
from retake_fsm.api import RetakeClient
from retake_fsm.context import ActionContext, Session
from retake_fsm.procs import ProcessRunner
from retake_fsm.settings import Paths
from retake_fsm.state import ProcRecord, RunState
from retake_fsm.store import Store
from tests.fixtures.env import Env
from tests.fixtures.procs import ProcKit, become_subreaper, descendants, gone, reap, wait_gone
from tests.fixtures.sandbox import Sandbox, SandboxAgent, wait_until


def decision(kit: ProcKit) -> dict[str, object]:
    return next(f for e, f in reversed(kit.events) if e == "reconcile")


def crash_and_restart(kit: ProcKit) -> None:
    """What a new run sees: the state as saved, a fresh runner that knows no child yet."""
    kit.state = RunState.model_validate_json(kit.paths.state_file.read_text())
    kit.runner = ProcessRunner(kit.paths, kit.state, kit.runner.clock, kit.emit, kit.save,
                               grace=0.5)


async def _publishing(kit: ProcKit, agent: SandboxAgent) -> None:
    url, key = agent.rtmp()
    agent.start()
    ctx = kit.ctx(session=Session(rtmp_url=url, rtmp_key=key))
    await start_display(ctx)
    await start_encoder(ctx)
    kit.state.state = "live"
    kit.save()
    await kit.runner.aclose()  # the old run stops watching, as if it died


async def test_live_with_our_ffmpeg_alive_and_platform_live_is_adopted(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """live + our ffmpeg alive + platform live: adopted, no signal, no trigger, still live."""
    await _publishing(kit, sandbox_agent)
    old = dict(kit.state.processes)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=5, message="is_live")
    crash_and_restart(kit)
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        assert await reconcile(kit.ctx(api=api)) is None
    assert decision(kit)["decision"] == "adopt" and kit.state.state == "live"
    assert decision(kit)["platform"] == "live"
    ffmpeg = kit.runner.get("ffmpeg")
    assert ffmpeg is not None and ffmpeg.adopted and ffmpeg.pid == old["ffmpeg"].pid
    assert ffmpeg.progress is not None
    frame = ffmpeg.progress.frame
    await asyncio.sleep(1.2)  # > stats_period: the adopted progress file keeps advancing
    assert ffmpeg.progress.frame > frame >= 0
    assert "process.signal" not in kit.names()
    await kit.runner.stop_all()
    sandbox_agent.stop()


async def test_live_with_the_platform_down_still_adopts(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """stream/status failing (503) is tolerated: our live ffmpeg is adopted; the watchdog judges."""
    await _publishing(kit, sandbox_agent)
    crash_and_restart(kit)
    sandbox.set_faults("down")
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        assert await reconcile(kit.ctx(api=api)) is None
    assert decision(kit)["decision"] == "adopt"
    assert decision(kit)["platform"] == "unknown (server)"
    sandbox.clear_faults()
    sandbox_agent.stop()


async def test_encoding_with_the_platform_not_live_stops_ffmpeg_and_recovers(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """encoding, our ffmpeg alive but the platform not live: ffmpeg stopped, "recover"."""
    progress = kit.paths.logs_dir / "ffmpeg.progress"
    proc = await kit.runner.start("ffmpeg", [
        "ffmpeg", "-hide_banner", "-nostats", "-progress", str(progress), "-re", "-f", "lavfi",
        "-i", "testsrc=size=160x120:rate=30", "-f", "null", "-"], stdin=True, progress=progress)
    kit.state.state = "encoding"
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        assert await reconcile(kit.ctx(api=api)) == "recover"
    assert decision(kit)["platform"] == "not live" and gone(proc.pid)
    assert "ffmpeg" not in kit.state.processes


async def test_live_with_ffmpeg_dead_drops_the_record_and_recovers(kit: ProcKit) -> None:
    """A recorded ffmpeg that is gone: the record is dropped (no signal) and reconcile recovers."""
    dead = await asyncio.create_subprocess_exec("true")
    assert await dead.wait() == 0
    kit.state.processes["ffmpeg"] = ProcRecord(name="ffmpeg", pid=dead.pid, create_time=1.0,
                                               argv=["ffmpeg"])
    kit.state.state = "live"
    # the platform is unreachable here (nothing listens): tolerated, and ffmpeg is dead anyway
    assert await reconcile(kit.ctx()) == "recover"
    assert decision(kit)["dropped"] == ["ffmpeg"] and kit.state.processes == {}
    saved = RunState.model_validate_json(kit.paths.state_file.read_text())
    assert saved.processes == {} and "process.signal" not in kit.names()


async def test_rtmp_fetches_a_fresh_key_and_keeps_our_display(
        kit: ProcKit, sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """rtmp: a fresh key from the platform into the session (never persisted); our Xvfb is kept."""
    ctx = kit.ctx()
    await start_display(ctx)
    xvfb = kit.state.processes["xvfb"].pid
    await kit.runner.start("ffmpeg", ["sleep", "60"])  # a leftover under ffmpeg's name
    kit.state.state = "rtmp"
    mark = sandbox.mark()
    async with RetakeClient(sandbox.base_url, sandbox_agent.token, timeout=5.0) as api:
        ctx = kit.ctx(api=api)
        assert await reconcile(ctx) is None
    assert ctx.session.rtmp_key and ctx.session.rtmp_key.startswith("sk_")
    assert [c["status"] for c in sandbox.calls("agent/rtmp", since=mark)] == [200]
    assert kit.state.processes.keys() == {"xvfb"} and kit.state.processes["xvfb"].pid == xvfb
    assert ctx.session.rtmp_key not in kit.paths.state_file.read_text()
    assert decision(kit)["decision"] == "fresh key"


async def test_started_recovers_for_a_fresh_key_and_a_new_session(kit: ProcKit) -> None:
    """started: the old key is gone with the crash, so reconcile asks for the recover edge."""
    kit.state.state = "started"
    ctx = kit.ctx(session=Session())
    assert await reconcile(ctx) == "recover"
    assert decision(kit)["decision"] == "recover"


async def test_a_reused_pid_is_dropped_not_signalled(kit: ProcKit) -> None:
    """A recorded Xvfb whose PID now belongs to a stranger: record dropped, stranger untouched."""
    stranger = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    try:
        kit.state.processes["xvfb"] = ProcRecord(name="xvfb", pid=stranger.pid,
                                                 create_time=1.0, argv=["Xvfb"])
        kit.state.state = "stopped"
        assert await reconcile(kit.ctx()) is None
        assert kit.state.processes == {} and stranger.returncode is None
        assert not gone(stranger.pid) and "process.signal" not in kit.names()
    finally:
        stranger.kill()
        await stranger.wait()


async def test_stopped_or_unregistered_stop_our_leftovers(kit: ProcKit) -> None:
    """stopped / unregistered: leftovers of ours are stopped, the engine goes on (None)."""
    for state in ("stopped", "unregistered"):
        proc = await kit.runner.start("scene", ["sleep", "60"])
        kit.state.state = state
        ctx: ActionContext = kit.ctx()
        assert await reconcile(ctx) is None
        assert gone(proc.pid) and kit.state.processes == {}
        assert decision(kit)["decision"] == "continue"


def test_a_killed_run_is_resumed_by_adopting_its_ffmpeg(env: Env, sandbox: Sandbox,
                                                         sandbox_agent: SandboxAgent) -> None:
    """SIGKILL a live `run`; the next `run` adopts the same ffmpeg (stream never dropped); stop."""
    become_subreaper()
    agent_env = sandbox_agent.env()
    paths = Paths("default", env=env.vars)
    store = Store(paths)
    first = env.popen("run", "--display", "auto", extra_env=agent_env)
    try:
        wait_until(lambda: paths.state_file.exists() and store.load().state == "live",
                   timeout=30, message="first run live")
    finally:
        first.kill()
        first.communicate(timeout=10)
    before = store.load().processes
    tails = descendants(rec.pid for rec in before.values())
    assert not gone(before["ffmpeg"].pid) and sandbox_agent.status()["is_live"]
    second = env.popen("run", "--display", "auto", extra_env=agent_env)
    try:
        wait_until(lambda: any(e["event"] == "reconcile" and e.get("decision") == "adopt"
                               and e.get("pid") == second.pid for e in store.journal()),
                   timeout=30, message="the second run's reconcile")
        wait_until(lambda: any(e["event"] == "activity" and e.get("pid") == second.pid
                               for e in store.journal()), timeout=15, message="live loops")
        after = store.load().processes
        assert {n: r.pid for n, r in after.items()} == {n: r.pid for n, r in before.items()}
        assert sandbox_agent.status()["is_live"]
        stop = env.cli("stop", timeout=60, extra_env=agent_env)
        assert stop.returncode == 0, stop.stderr
        assert second.wait(15) == 0
    finally:
        if second.poll() is None:
            second.kill()
        _, err = second.communicate(timeout=15)
        pids = [r.pid for r in before.values()]
        left = asyncio.run(wait_gone([*pids, *tails], timeout=3.0))
        reap([*pids, *tails])
    assert not left, err
    assert store.load().state == "stopped"
    journal = "\n".join(json.dumps(e) for e in store.journal())
    assert '"event": "process.adopt"' in journal and "Traceback" not in err
