"""Going live: confirm (poll until is_live), first thumbnail, hello, operator notice, notify."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from retake_fsm.actions.confirm_live import confirm_live
from retake_fsm.actions.first_thumbnail import first_thumbnail
from retake_fsm.actions.notify_operator import notify_operator
from retake_fsm.actions.say_hello import say_hello
from retake_fsm.clock import SystemClock
from retake_fsm.errors import NotLiveError, ProcessExitedError
from retake_fsm.live.notice import NOTIFY_PROC, stream_url
from tests.fixtures.live import RigFactory, agent_rig, publish, start_ffmpeg, wait_for

pytestmark = pytest.mark.timeout(60)

CATCH = """\
import sys, pathlib
pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())
"""


async def test_go_live_sequence_in_order(live_rig: RigFactory, sandbox: Any,
                                         sandbox_agent: Any, xvfb_display: str,
                                         tmp_path: Path) -> None:
    """Real ffmpeg publishing: status says live -> update-thumbnail -> chat/send, then the notice
    and the notify command's JSON; the state records it all."""
    catch = tmp_path / "catch.py"
    catch.write_text(CATCH)
    facts_file = tmp_path / "facts.json"
    rig = await agent_rig(live_rig, sandbox_agent, clock=SystemClock(), display=xvfb_display,
                          overrides=["live.poll=100ms",
                                     f"notify.command={sys.executable} {catch} {facts_file}"])
    await publish(rig)
    mark = sandbox.mark()
    started = time.monotonic()
    for step in (confirm_live, first_thumbnail, say_hello, notify_operator):
        assert await step(rig.ctx) is None
    elapsed = time.monotonic() - started

    calls = [c["path"].rsplit("/api/v1/", 1)[1] for c in sandbox.calls(since=mark)]
    assert calls == ["agent/stream/status", "agent/update-thumbnail", "agent/stream/chat/send"]
    hello = sandbox.calls("stream/chat/send", since=mark)[0]["body"]
    assert hello == {"message": rig.ctx.settings.chat.opening_message,
                     "destination_user_id": sandbox_agent.user_db_id}

    url = f"{sandbox.root_url}/{sandbox_agent.name}"
    assert rig.lines[0] == f"LIVE: {url}"
    assert rig.lines[-1].endswith(f"I'm live on retake.tv - "
                                  f"{rig.ctx.settings.notify.ideas[0]}. Watch: {url}")
    assert sum(line.startswith("    ") for line in rig.lines) == 3  # three ideas
    facts = json.loads(facts_file.read_text())
    assert facts["stream_url"] == url and facts["viewers"] >= 0
    assert facts["ideas"] == rig.ctx.settings.notify.ideas[:3]
    assert facts["distribution_message"] in rig.lines[-1]

    saved = rig.reload_state()
    assert saved.stream.live_at is not None and saved.stream.is_live
    assert saved.last_thumbnail_at is not None and saved.thumbnails == 1
    assert saved.stream.stream_url == url
    assert saved.chat.last_activity_at is not None
    assert NOTIFY_PROC not in saved.processes
    print(f"confirm+thumbnail+hello+notice: {elapsed:.2f}s")


async def test_not_live_in_time_is_a_clear_error(live_rig: RigFactory, sandbox: Any,
                                                 sandbox_agent: Any) -> None:
    """Nobody publishes: polls at once then every 3 s, and after 30 s a NotLiveError (no retry)."""
    rig = await agent_rig(live_rig, sandbox_agent)
    mark = sandbox.mark()
    with pytest.raises(NotLiveError) as info:
        await confirm_live(rig.ctx)
    assert len(sandbox.calls("stream/status", since=mark)) == 11  # t = 0, 3, ..., 30
    assert rig.clock.sleeps == [3.0] * 10  # type: ignore[attr-defined]
    assert not info.value.retryable and info.value.kind == "not_live"
    assert "within 30s" in str(info.value) and "live.limit" in str(info.value)


async def test_encoder_exit_while_confirming_fails_at_once(live_rig: RigFactory, sandbox: Any,
                                                           sandbox_agent: Any) -> None:
    """If our ffmpeg already exited there is nothing to wait for: ProcessExitedError, one poll."""
    rig = await agent_rig(live_rig, sandbox_agent)
    proc = await start_ffmpeg(rig, "null", seconds=0.3)
    await wait_for(lambda: proc.returncode is not None, 10, "ffmpeg to finish")
    mark = sandbox.mark()
    with pytest.raises(ProcessExitedError, match="ffmpeg exited"):
        await confirm_live(rig.ctx)
    assert len(sandbox.calls("stream/status", since=mark)) == 1


async def test_transient_status_errors_are_polled_through(live_rig: RigFactory, sandbox: Any,
                                                          sandbox_agent: Any) -> None:
    """Two 503s from stream/status while confirming are logged, and the poll goes on to live."""
    rig = await agent_rig(live_rig, sandbox_agent, clock=SystemClock(),
                          overrides=["live.poll=100ms"])
    await publish(rig)
    sandbox.set_faults("path=stream/status,status=503,count=2")
    await confirm_live(rig.ctx)
    assert len(rig.named("confirm.poll_failed")) == 2
    assert rig.ctx.state.stream.live_at is not None


@pytest.mark.parametrize(("command", "why"), [
    ("{py} -c 'import signal; signal.pause()'", "did not finish within 0.3s"),
    ("{py} -c 'raise SystemExit(2)'", None),
    ("no-such-notifier --flag", "no-such-notifier not found"),
])
async def test_notify_command_failures_are_logged_not_fatal(
        live_rig: RigFactory, command: str, why: str | None) -> None:
    """A notify command that hangs, fails or is missing is reported and the go-live goes on."""
    rig = await live_rig(overrides=["notify.timeout=300ms",
                                    f"notify.command={command.format(py=sys.executable)}"])
    started = time.monotonic()
    assert await notify_operator(rig.ctx) is None
    assert time.monotonic() - started < 5
    failed = rig.named("notify.failed")
    assert len(failed) == 1
    if why:
        assert why in failed[0].fields["error"]
    else:
        assert failed[0].fields["returncode"] == 2
    assert rig.lines[0].startswith("LIVE: ")
    for e in rig.named("process.start"):  # whatever we started is gone (the hang was stopped)
        assert not psutil.pid_exists(e.fields["pid"]) or (
            psutil.Process(e.fields["pid"]).status() == psutil.STATUS_ZOMBIE)
    assert NOTIFY_PROC not in rig.ctx.state.processes


def test_stream_url_is_the_platform_page_or_the_sandbox_page() -> None:
    """The platform's page for the agent; on a loopback API, the sandbox's own page."""
    page = "https://retake.tv/{name}"
    assert stream_url("https://retake.tv/api/v1", page, "bot") == "https://retake.tv/bot"
    assert stream_url("http://127.0.0.1:8787/api/v1", page, "bot") == "http://127.0.0.1:8787/bot"
    assert stream_url("http://localhost:81/api/v1", page, "b") == "http://localhost:81/b"
    assert stream_url("http://[::1]:9/api/v1", page, "b") == "http://[::1]:9/b"


@pytest.mark.e2e
def test_run_goes_live_in_order_then_chats_and_stops(env: Any, sandbox: Any,
                                                     sandbox_agent: Any) -> None:
    """`retake-fsm run` (real Xvfb, ffmpeg, ingest): status live -> update-thumbnail -> hello,
    only then the chat loop; a viewer is answered; SIGINT stops it all cleanly."""
    import signal as sig

    from tests.fixtures.sandbox import wait_until

    mark = sandbox.mark()
    proc = env.popen("--set", "display.size=640x360", "--set", "encoder.size=640x360",
                     "--set", "chat.poll=500ms", "run", "--display", "auto",
                     extra_env=sandbox_agent.env())
    failure: AssertionError | None = None
    try:
        wait_until(lambda: proc.poll() is not None or sandbox.calls("stream/chat/send",
                                                                    since=mark),
                   timeout=40, message="the opening message")
        assert proc.poll() is None, "run exited before going live"
        sandbox.post_comment(sandbox_agent, "!help", viewer="alice")
        wait_until(lambda: len(sandbox.calls("stream/chat/send", since=mark)) >= 2,
                   timeout=20, message="the reply to alice")
    except AssertionError as exc:
        failure = exc
    finally:
        if proc.poll() is None:
            proc.send_signal(sig.SIGINT)  # our own child, by its PID
        out, err = proc.communicate(timeout=40)
    assert failure is None, f"{failure}\n--- run's stderr:\n{err[-4000:]}"
    assert proc.returncode == 0, err[-2000:]
    paths = [c["path"].rsplit("/api/v1/", 1)[-1] for c in sandbox.calls(since=mark)]
    live_part = paths[paths.index("agent/stream/start") + 1:]
    first_chat = live_part.index("agent/stream/comments")
    assert set(live_part[:first_chat]) == {"agent/stream/status", "agent/update-thumbnail",
                                           "agent/stream/chat/send"}
    thumb = live_part.index("agent/update-thumbnail")
    hello = live_part.index("agent/stream/chat/send")
    assert live_part[thumb - 1] == "agent/stream/status" and thumb < hello < first_chat
    sends = [c["body"]["message"] for c in sandbox.calls("stream/chat/send", since=mark)]
    assert sends[0] == "I'm live. What should we explore today?"
    assert sends[1].startswith("Welcome, alice! Commands:")
    assert f"LIVE: {sandbox.root_url}/{sandbox_agent.name}" in out
    assert "state: stopped" in out
    assert paths[-1] == "agent/stream/stop"
    assert sandbox_agent.token not in out + err
