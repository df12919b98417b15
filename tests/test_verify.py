"""Twitter/X verification: `retake-fsm verify` through the real CLI and the machine's `verify`
action (FakeClock for the waits), against the sandbox platform."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from retake_fsm.actions.verify import INBOX_MESSAGE, INBOX_TWEET, tweet_url_problem, verify
from retake_fsm.clock import FakeClock, SystemClock
from retake_fsm.context import Console
from retake_fsm.credentials import Credentials
from retake_fsm.errors import ExitCode, VerificationPending
from retake_fsm.settings import Paths
from retake_fsm.store import Store
from tests.fixtures.env import Env
from tests.fixtures.live import LiveRig, RigFactory, wait_for
from tests.fixtures.sandbox import Sandbox, SandboxAgent

REAL_URL = "https://x.com/operator/status/1876543210987654321"
PLACEHOLDERS = [
    "https://x.com/username/status/123...",
    "https://twitter.com/username/status/1234567890",
    "https://x.com/user/status/1876543210987654321",
    "https://x.com/example/status/1876543210987654321",
    "https://x.com/operator/status/123",
    "https://x.com/operator/status/1111111111111111111",
    "https://x.com/<user>/status/<digits>",
    "https://example.com/operator/status/1876543210987654321",
    "http://x.com/operator/status/1876543210987654321",
    "https://x.com/operator",
]


def unverified(sandbox: Sandbox, tmp_path: Path) -> SandboxAgent:
    return sandbox.register_agent(verify=False, credentials_dir=tmp_path / "agent")


def cli_env(sandbox: Sandbox, agent: SandboxAgent) -> dict[str, str]:
    return agent.env()


def code_of(sandbox: Sandbox, agent: SandboxAgent) -> str:
    return str(sandbox.agent_state(agent)["verification_code"])


def test_real_urls_pass_the_placeholder_check() -> None:
    """Real status URLs (x.com, twitter.com, www./mobile., query strings, /i/) are accepted."""
    for url in (REAL_URL, "https://twitter.com/Op_1/status/1876543210987654321?s=20",
                "https://mobile.x.com/op/status/1876543210987654321/",
                "https://x.com/i/web/status/1876543210987654321"):
        assert tweet_url_problem(url) is None, url


@pytest.mark.parametrize("url", PLACEHOLDERS)
def test_placeholder_urls_are_refused_by_the_cli(env: Env, sandbox: Sandbox,
                                                 sandbox_agent: SandboxAgent, url: str) -> None:
    """A placeholder or non-status URL is one stderr line, exit 2, and no request at all."""
    mark = sandbox.mark()
    result = env.cli("verify", "--tweet-url", url, extra_env=sandbox_agent.env())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retake-fsm: tweet URL")
    assert sandbox.calls(since=mark) == []


def test_verify_prints_the_message_once_and_exits_3(env: Env, sandbox: Sandbox,
                                                    tmp_path: Path) -> None:
    """Without a URL: the exact message, exit 3; asked again, prepare-verify is not re-called."""
    agent = unverified(sandbox, tmp_path)
    mark = sandbox.mark()
    first = env.cli("verify", extra_env=cli_env(sandbox, agent))
    second = env.cli("verify", extra_env=cli_env(sandbox, agent))
    expected = f"Claiming my Livestreaming Agent on @retakedottv. Code: {code_of(sandbox, agent)}"
    for result in (first, second):
        assert result.returncode == ExitCode.WAITING_FOR_HUMAN, result.stderr
        assert expected in result.stdout.splitlines(), "the message on a line of its own"
        assert agent.token not in result.stdout + result.stderr
    assert len(sandbox.calls("agent/prepare-verify", since=mark)) == 1
    state = json.loads((env.state_home / "retake-fsm" / "default" / "state.json").read_text())
    assert state["verification_message"] == expected


def test_verify_with_a_real_url(env: Env, sandbox: Sandbox, tmp_path: Path) -> None:
    """With a real URL: verify is called with it, success is reported, the inbox gets the URL."""
    agent = unverified(sandbox, tmp_path)
    assert env.cli("verify", extra_env=cli_env(sandbox, agent)).returncode == 3
    mark = sandbox.mark()
    result = env.cli("verify", "--tweet-url", REAL_URL, extra_env=cli_env(sandbox, agent))
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout
    (call,) = sandbox.calls("agent/verify", since=mark)
    assert call["body"] == {"tweet_url": REAL_URL}
    inbox = env.state_home / "retake-fsm" / "default" / "inbox" / INBOX_TWEET
    assert inbox.read_text().strip() == REAL_URL
    assert sandbox.agent_state(agent)["verified"] is True
    status = env.cli("verify", "--status", extra_env=cli_env(sandbox, agent))
    assert status.returncode == 0 and status.stdout.strip() == "verified"


def test_platform_refusal_reports_its_reason(env: Env, sandbox: Sandbox, tmp_path: Path) -> None:
    """A tweet without the code: one line with the platform's reason, exit 1, no inbox file."""
    agent = unverified(sandbox, tmp_path)
    assert env.cli("verify", extra_env=cli_env(sandbox, agent)).returncode == 3
    sandbox.set_verification(False)
    result = env.cli("verify", "--tweet-url", REAL_URL, extra_env=cli_env(sandbox, agent))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not contain the verification code" in lines[0]
    assert not (env.state_home / "retake-fsm" / "default" / "inbox" / INBOX_TWEET).exists()
    status = env.cli("verify", "--status", extra_env=cli_env(sandbox, agent))
    assert status.returncode == 3 and "not verified" in status.stdout


def test_while_a_run_holds_the_profile_the_inbox_is_used(env: Env, sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """With the profile locked by a run, the message goes to inbox/, state.json is untouched."""
    agent = unverified(sandbox, tmp_path)
    paths = Paths("default", env={"HOME": str(env.home), "XDG_STATE_HOME": str(env.state_home)})
    with Store(paths).lock():
        result = env.cli("verify", extra_env=cli_env(sandbox, agent))
    assert result.returncode == 3, result.stderr
    message = (paths.inbox_dir / INBOX_MESSAGE).read_text().strip()
    assert message.endswith(code_of(sandbox, agent)) and message in result.stdout
    assert not paths.state_file.exists()


# -- the machine's `verify` action ---------------------------------------------------------


async def rig_for(live_rig: RigFactory, sandbox: Sandbox, agent: SandboxAgent, *,
                  clock: FakeClock | SystemClock | None = None,
                  overrides: list[str] | None = None) -> LiveRig:
    creds = Credentials.model_validate(agent.credentials)
    return await live_rig(base_url=sandbox.base_url, credentials=creds, clock=clock,
                          overrides=overrides or ["verify.wait=60s", "verify.poll=5s",
                                                  "verify.status_poll=20s"])


class ScriptedConsole(Console):
    """A terminal whose operator types the given answers (None: just Enter)."""

    def __init__(self, answers: list[str | None]) -> None:
        super().__init__(out=open("/dev/null", "w"), interactive=True)
        self.answers = answers
        self.asked: list[str] = []

    async def prompt(self, question: str, *, timeout: float | None = None) -> str | None:
        self.asked.append(question)
        return self.answers.pop(0)


async def test_action_already_verified_asks_nothing(live_rig: RigFactory, sandbox: Sandbox,
                                                    sandbox_agent: SandboxAgent) -> None:
    """A verified agent passes at once: one verification-status, no prepare-verify."""
    rig = await rig_for(live_rig, sandbox, sandbox_agent)
    mark = sandbox.mark()
    assert await verify(rig.ctx) is None
    assert [c["path"] for c in sandbox.calls(since=mark)] == ["/api/v1/agent/verification-status"]
    assert rig.named("verify.verified")[0].fields == {"how": "already"}


async def test_action_waits_then_exits_3_resumably(live_rig: RigFactory, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    """Nobody answers: poll every verify.poll, ask every verify.status_poll, then exit 3."""
    agent = unverified(sandbox, tmp_path)
    clock = FakeClock()
    rig = await rig_for(live_rig, sandbox, agent, clock=clock)
    mark = sandbox.mark()
    with pytest.raises(VerificationPending) as info:
        await verify(rig.ctx)
    assert info.value.exit_code == ExitCode.WAITING_FOR_HUMAN
    assert clock.sleeps == [5.0] * 12 and clock.monotonic() == 60.0
    assert len(sandbox.calls("agent/verification-status", since=mark)) == 4  # 0, 20, 40, 60 s
    assert len(sandbox.calls("agent/prepare-verify", since=mark)) == 1
    message = rig.ctx.state.verification_message
    assert message is not None and message.endswith(code_of(sandbox, agent))
    assert message in rig.lines and message in str(info.value)
    assert rig.reload_state().verification_message == message, "kept for the next run"
    assert (rig.ctx.paths.inbox_dir / INBOX_MESSAGE).read_text().strip() == message
    # the next run resumes with the same message: prepare-verify is not called again
    rig2 = await rig_for(live_rig, sandbox, agent, clock=FakeClock())
    rig2.ctx.state.verification_message = rig.reload_state().verification_message
    mark = sandbox.mark()
    with pytest.raises(VerificationPending):
        await verify(rig2.ctx)
    assert sandbox.calls("agent/prepare-verify", since=mark) == []


async def test_action_takes_the_tweet_url_from_the_inbox(live_rig: RigFactory,
                                                         sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """A URL dropped in inbox/tweet_url is verified; inbox and kept message are cleared."""
    agent = unverified(sandbox, tmp_path)
    rig = await rig_for(live_rig, sandbox, agent, clock=FakeClock())
    (rig.ctx.paths.inbox_dir / INBOX_TWEET).write_text(REAL_URL + "\n")
    mark = sandbox.mark()
    assert await verify(rig.ctx) is None
    (call,) = sandbox.calls("agent/verify", since=mark)
    assert call["body"] == {"tweet_url": REAL_URL}
    assert sandbox.agent_state(agent)["verified"] is True
    assert list(rig.ctx.paths.inbox_dir.iterdir()) == []
    assert rig.reload_state().verification_message is None
    assert rig.named("verify.verified")[0].fields == {"how": "tweet_url"}


async def test_action_reports_refusals_and_keeps_waiting(live_rig: RigFactory,
                                                         sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """A placeholder in the inbox is not sent; a refused tweet is reported; the wait goes on."""
    agent = unverified(sandbox, tmp_path)
    rig = await rig_for(live_rig, sandbox, agent, clock=FakeClock())
    inbox = rig.ctx.paths.inbox_dir / INBOX_TWEET
    inbox.write_text("https://x.com/username/status/123...\n")
    sandbox.set_verification(False)

    async def second_try() -> None:  # the human tries again with a real URL 10 s later
        while rig.clock.monotonic() < 10:
            await asyncio.sleep(0)
        inbox.write_text(REAL_URL)

    mark = sandbox.mark()
    helper = asyncio.create_task(second_try())
    with pytest.raises(VerificationPending):
        await verify(rig.ctx)
    await helper
    assert len(sandbox.calls("agent/verify", since=mark)) == 1, "the placeholder was not sent"
    assert any(line.startswith("not used: tweet URL") for line in rig.lines)
    assert any("does not contain the verification code" in line for line in rig.lines)
    assert rig.named("verify.refused")


async def test_action_notices_the_platform_saying_verified(live_rig: RigFactory,
                                                           sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    """Verified elsewhere meanwhile: the next status poll (20 s) ends the wait."""
    agent = unverified(sandbox, tmp_path)
    clock = FakeClock()
    rig = await rig_for(live_rig, sandbox, agent, clock=clock)

    async def verified_elsewhere() -> None:
        while clock.monotonic() < 10:
            await asyncio.sleep(0)
        agent.request("POST", "agent/verify", json={"tweet_url": REAL_URL}).raise_for_status()

    helper = asyncio.create_task(verified_elsewhere())
    assert await verify(rig.ctx) is None
    await helper
    assert clock.monotonic() == 20.0 and clock.sleeps == [5.0] * 4
    assert rig.named("verify.verified")[0].fields == {"how": "platform"}


async def test_action_on_a_tty_prompts_for_the_url(live_rig: RigFactory, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    """On a TTY the operator is asked; a placeholder answer is refused, a real one verifies."""
    agent = unverified(sandbox, tmp_path)
    rig = await rig_for(live_rig, sandbox, agent, clock=FakeClock())
    console = ScriptedConsole(["https://x.com/username/status/1234567890", REAL_URL])
    rig.ctx.console = console
    mark = sandbox.mark()
    try:
        assert await verify(rig.ctx) is None
    finally:
        console.out.close()
    assert len(console.asked) == 2 and console.answers == []
    (call,) = sandbox.calls("agent/verify", since=mark)
    assert call["body"] == {"tweet_url": REAL_URL}
    assert any("placeholder" in line for line in console.lines)


async def test_action_on_a_tty_enter_switches_to_waiting(live_rig: RigFactory,
                                                         sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """Enter without a URL stops prompting and watches the inbox until verify.wait runs out."""
    agent = unverified(sandbox, tmp_path)
    clock = FakeClock()
    rig = await rig_for(live_rig, sandbox, agent, clock=clock)
    console = ScriptedConsole([None])
    rig.ctx.console = console
    try:
        with pytest.raises(VerificationPending):
            await verify(rig.ctx)
    finally:
        console.out.close()
    assert len(console.asked) == 1 and clock.monotonic() == 60.0
    assert any("waiting for `retake-fsm verify --tweet-url" in line for line in console.lines)


async def test_cli_url_reaches_a_waiting_run(live_rig: RigFactory, sandbox: Sandbox, env: Env,
                                             tmp_path: Path) -> None:
    """A run waiting in real time notices `retake-fsm verify --tweet-url` from another process."""
    agent = unverified(sandbox, tmp_path)
    rig = await rig_for(live_rig, sandbox, agent, clock=SystemClock(),
                        overrides=["verify.wait=30s", "verify.poll=100ms",
                                   "verify.status_poll=30s"])
    async def waiting_run() -> str | None:
        return await verify(rig.ctx)

    task = asyncio.create_task(waiting_run())
    await wait_for(lambda: rig.ctx.state.verification_message, what="the message")
    cli_vars = {**agent.env(), "XDG_STATE_HOME": str(tmp_path / "state"),
                "RETAKE_PROFILE": rig.ctx.paths.profile,
                "RETAKE_CREDENTIALS": str(agent.credentials_file)}
    result = await asyncio.to_thread(env.cli, "verify", "--tweet-url", REAL_URL,
                                     extra_env=cli_vars)
    assert result.returncode == 0, result.stderr
    async with asyncio.timeout(10):
        assert await task is None
    assert rig.named("verify.verified")[0].fields == {"how": "tweet_url"}
    assert not (rig.ctx.paths.inbox_dir / INBOX_TWEET).exists()


async def test_open_tty_prompt_still_notices_the_inbox(live_rig: RigFactory, sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    """While the question waits on a real terminal (pty), a URL handed in through the inbox
    (`verify --tweet-url` from another shell) still verifies: the prompt never blocks the wait."""
    import os
    import pty

    agent = unverified(sandbox, tmp_path)
    rig = await rig_for(live_rig, sandbox, agent, clock=SystemClock(),
                        overrides=["verify.wait=30s", "verify.poll=100ms",
                                   "verify.status_poll=30s"])
    master, slave = pty.openpty()
    rig.ctx.console = Console(out=open(os.devnull, "w"), infd=slave)
    try:
        task = asyncio.create_task(verify(rig.ctx))
        await asyncio.sleep(0.3)
        assert not task.done()
        (rig.ctx.paths.inbox_dir / INBOX_TWEET).write_text(REAL_URL + "\n")
        assert await asyncio.wait_for(task, 10) is None
    finally:
        rig.ctx.console.out.close()
        os.close(master)
        os.close(slave)
    assert rig.named("verify.verified")[0].fields == {"how": "tweet_url"}
