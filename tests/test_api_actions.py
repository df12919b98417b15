"""The `fetch_rtmp` and `start_stream` actions and the skill version check, on the sandbox."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator

import pytest
from loguru import logger

from retake_fsm.actions.fetch_rtmp import fetch_rtmp
from retake_fsm.actions.start_stream import start_stream
from retake_fsm.api import check_skill
from retake_fsm.clock import FakeClock
from retake_fsm.credentials import Credentials, save_credentials
from retake_fsm.errors import BadRequestError
from tests.fixtures.live import LiveRig, RigFactory
from tests.fixtures.sandbox import Sandbox, SandboxAgent


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)


async def rig_for(live_rig: RigFactory, sandbox: Sandbox, agent: SandboxAgent,
                  skill_url: str | None = None, creds: Credentials | None = None) -> LiveRig:
    creds = creds or Credentials.model_validate(agent.credentials)
    rig = await live_rig(base_url=sandbox.base_url, credentials=creds, clock=FakeClock(),
                         overrides=[f"api.skill_url={skill_url or sandbox.skill_url}"])
    save_credentials(rig.ctx.paths.credentials_file, creds)
    return rig


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/skill.json"


async def test_fetch_rtmp_keeps_the_key_in_memory_only(live_rig: RigFactory, sandbox: Sandbox,
                                                       sandbox_agent: SandboxAgent) -> None:
    """The key goes to ctx.session only; state.json and the journal hold its masked hint."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    assert await fetch_rtmp(rig.ctx) is None
    key = rig.ctx.session.rtmp_key
    assert key and key.startswith("sk_") and rig.ctx.session.rtmp_url == sandbox.rtmp_url
    assert rig.ctx.state.stream.key_hint == f"sk_…{key[-4:]}"
    rig.ctx.save()
    assert key not in rig.ctx.paths.state_file.read_text()
    journal = rig.ctx.paths.journal_file.read_text()
    assert key not in journal and rig.ctx.state.stream.key_hint in journal
    assert sandbox.agent_state(sandbox_agent)["keys_issued"] == 1


async def test_first_start_is_fresh_and_stores_the_token(live_rig: RigFactory,
                                                         sandbox: Sandbox,
                                                         sandbox_agent: SandboxAgent) -> None:
    """The first stream/start: skill checked, token fields into state and credentials (0600)."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    ctx = rig.ctx
    mark = sandbox.mark()
    assert await start_stream(ctx) is None
    assert [c["path"] for c in sandbox.calls(since=mark)] == ["/skill.json",
                                                             "/api/v1/agent/stream/start"]
    token = sandbox.agent_state(sandbox_agent)["token"]
    st = ctx.state.stream
    assert st.started_at == ctx.clock.now() and ctx.state.streams == 1
    assert (st.token_address, st.token_ticker) == (token["tokenAddress"], sandbox_agent.ticker)
    assert st.stream_url == f"https://retake.tv/{sandbox_agent.name}"
    assert ctx.state.chat.cursor_set is False
    path = ctx.paths.credentials_file
    saved = json.loads(path.read_text())
    assert saved["token_address"] == token["tokenAddress"]
    assert saved["token_ticker"] == sandbox_agent.ticker
    assert saved["access_token"] == sandbox_agent.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ctx.credentials is not None and ctx.credentials.token_address == token["tokenAddress"]
    assert rig.reload_state().streams == 1, "saved at once"


async def test_restart_after_recovery_keeps_the_chat_cursor(live_rig: RigFactory,
                                                            sandbox: Sandbox,
                                                            sandbox_agent: SandboxAgent) -> None:
    """A start after a recovery keeps the cursor and skips the skill check (once per run)."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    ctx = rig.ctx
    await start_stream(ctx)
    ctx.state.chat.cursor, ctx.state.chat.cursor_set = "65f000000000000000000001", True
    mark = sandbox.mark()
    await start_stream(ctx)
    assert [c["path"] for c in sandbox.calls(since=mark)] == ["/api/v1/agent/stream/start"]
    assert ctx.state.chat.cursor_set is True and ctx.state.streams == 2
    assert rig.named("stream.started")[-1].fields["fresh"] is False


async def test_start_after_a_stop_is_fresh(live_rig: RigFactory, sandbox: Sandbox,
                                           sandbox_agent: SandboxAgent) -> None:
    """After stop_stream's final_stats, the next start resets the chat cursor for a new stream."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    ctx = rig.ctx
    await start_stream(ctx)
    ctx.state.chat.cursor_set = True
    ctx.state.stream.started_at = None  # what stop_stream leaves behind
    ctx.state.final_stats = {"status": "stopped"}
    await start_stream(ctx)
    assert ctx.state.chat.cursor_set is False and ctx.state.final_stats is None
    assert rig.named("stream.started")[-1].fields["fresh"] is True


async def test_unverified_start_is_refused(live_rig: RigFactory, sandbox: Sandbox,
                                           ) -> None:
    """stream/start for an unverified agent is the platform's 400, not retryable."""
    agent = sandbox.register_agent(verify=False)
    rig = await live_rig(base_url=sandbox.base_url, clock=FakeClock(),
                         credentials=Credentials.model_validate(agent.credentials),
                         overrides=[f"api.skill_url={sandbox.skill_url}"])
    with pytest.raises(BadRequestError, match="not verified") as info:
        await start_stream(rig.ctx)
    assert not info.value.retryable and rig.ctx.state.streams == 0


async def test_token_only_credentials_learn_the_user_id(live_rig: RigFactory, sandbox: Sandbox,
                                                        sandbox_agent: SandboxAgent) -> None:
    """With only RETAKE_ACCESS_TOKEN (no file), start_stream learns userDbId, writes no file."""
    rig = await live_rig(base_url=sandbox.base_url, clock=FakeClock(),
                         credentials=Credentials(access_token=sandbox_agent.token),
                         overrides=[f"api.skill_url={sandbox.skill_url}"])
    await start_stream(rig.ctx)
    assert rig.ctx.credentials is not None
    assert rig.ctx.credentials.userDbId == sandbox_agent.user_db_id
    assert not rig.ctx.paths.credentials_file.exists()


async def test_skill_change_warns_and_is_remembered(live_rig: RigFactory, sandbox: Sandbox,
                                                    sandbox_agent: SandboxAgent,
                                                    warnings: list[str]) -> None:
    """A new skill version is a warning, is cached, and its skill.md is saved to read."""
    sandbox.set_skill_version("2.2.0")
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    await start_stream(rig.ctx)
    assert any("skill moved from 2.1.2 to 2.2.0" in w for w in warnings)
    cache = rig.ctx.paths.skill_cache
    assert json.loads(cache.read_text())["version"] == "2.2.0"
    assert "2.2.0" in cache.with_name("skill-2.2.0.md").read_text()
    again = await check_skill(rig.ctx.api, sandbox.skill_url, "2.1.2", cache,
                              rig.ctx.clock.now())
    assert (again.outcome, again.known) == ("same", "2.2.0")


async def test_same_skill_version_is_quiet(live_rig: RigFactory, sandbox: Sandbox,
                                           sandbox_agent: SandboxAgent,
                                           warnings: list[str]) -> None:
    """The shipped version (2.1.2) on the platform: no warning, nothing cached."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    await start_stream(rig.ctx)
    assert warnings == [] and not rig.ctx.paths.skill_cache.exists()
    assert rig.named("skill.checked")[0].fields["outcome"] == "same"


@pytest.mark.parametrize("broken", ["closed port", "503"])
async def test_unreachable_skill_warns_and_continues(live_rig: RigFactory, sandbox: Sandbox,
                                                     sandbox_agent: SandboxAgent,
                                                     warnings: list[str], broken: str) -> None:
    """skill.json unreachable (refused, or 503): a warning, and the stream still starts."""
    url = closed_port_url() if broken == "closed port" else sandbox.skill_url
    if broken == "503":
        sandbox.set_faults("path=skill.json,status=503")
    rig = await rig_for(live_rig, sandbox, sandbox_agent, skill_url=url)
    await start_stream(rig.ctx)
    assert any("skill version check skipped" in w for w in warnings)
    assert rig.ctx.state.streams == 1
    assert rig.named("skill.checked")[0].fields["outcome"] == "unreachable"


async def test_skill_url_must_be_http(live_rig: RigFactory, sandbox: Sandbox,
                                      sandbox_agent: SandboxAgent) -> None:
    """A non-http skill URL (e.g. file://) is never fetched: the check reports unreachable."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    mark = sandbox.mark()
    result = await check_skill(rig.ctx.api, "file:///etc/hostname", "2.1.2",
                               rig.ctx.paths.skill_cache, rig.ctx.clock.now())
    assert result.outcome == "unreachable" and "not an http(s) URL" in (result.reason or "")
    assert sandbox.calls(since=mark) == [] and not rig.ctx.paths.skill_cache.exists()
