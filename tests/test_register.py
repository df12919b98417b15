"""Registration: `retake-fsm register` through the real CLI and the machine's `register` action,
against the sandbox platform."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import base58
import pytest

from retake_fsm.actions.register import register
from retake_fsm.errors import ConfigError, InputError
from tests.fixtures.env import Env
from tests.fixtures.live import RigFactory
from tests.fixtures.sandbox import Sandbox, new_wallet

WALLET_31 = base58.b58encode(b"\x07" * 31).decode()
WALLET_33 = base58.b58encode(b"\x07" * 33).decode()


def flags(name: str | None = None, **over: str) -> list[str]:
    values = {"--name": name or f"cli-{uuid.uuid4().hex[:8]}", "--description": "a test agent",
              "--image-url": "https://example.invalid/a.png", "--wallet": new_wallet(),
              "--ticker": "CLI"}
    values.update(over)
    return [part for flag, value in values.items() for part in (flag, value)]


def creds_file(env: Env) -> Path:
    return env.home / ".config" / "retake" / "credentials.json"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"--wallet": WALLET_31}, "--wallet decodes to 31 bytes (a Solana public key is 32)"),
        ({"--wallet": WALLET_33}, "--wallet decodes to 33 bytes"),
        ({"--wallet": "0OIl" + new_wallet()[4:]}, "--wallet has '0', which is not a base58"),
        ({"--ticker": "ELEVENCHARS"}, "--ticker is 11 characters long (at most 10)"),
        ({"--name": "   "}, "--name is empty"),
        ({"--image-url": "ftp://example.invalid/a.png"}, "--image-url must be an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_request(env: Env, sandbox: Sandbox,
                                                     override: dict[str, str],
                                                     expected: str) -> None:
    """A bad field is refused before any request: one stderr line naming it, exit 2."""
    mark = sandbox.mark()
    result = env.cli("register", *flags(**override), extra_env=sandbox.env())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retake-fsm: ") and expected in lines[0]
    assert "Traceback" not in result.stderr
    assert sandbox.calls(since=mark) == [], "no request reached the platform"
    assert not creds_file(env).exists()


def test_missing_fields_without_a_tty_name_the_flags(env: Env, sandbox: Sandbox) -> None:
    """Without a TTY, missing fields are an error naming the flags (and settings), exit 2."""
    mark = sandbox.mark()
    result = env.cli("register", "--name", "x", extra_env=sandbox.env())
    assert result.returncode == 2
    assert "registration needs --description, --image-url, --wallet, --ticker" in result.stderr
    assert "agent.wallet" in result.stderr
    assert sandbox.calls(since=mark) == []


def test_register_saves_0600_credentials(env: Env, sandbox: Sandbox) -> None:
    """A good register call creates credentials.json with mode 0600 and never prints the token."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    mark = sandbox.mark()
    result = env.cli("register", *flags(name), extra_env=sandbox.env())
    assert result.returncode == 0, result.stderr
    path = creds_file(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["agent_name"] == name and data["ticker"] == "CLI"
    assert data["access_token"].startswith("rtk_") and data["userDbId"]
    assert data["access_token"] not in result.stdout + result.stderr
    assert name in result.stdout and str(path) in result.stdout
    (call,) = sandbox.calls("agent/register", since=mark)
    assert call["body"]["agent_name"] == name and call["status"] == 200


def test_existing_credentials_need_force(env: Env, sandbox: Sandbox) -> None:
    """Existing credentials are kept (exit 2, no request) unless --force replaces them."""
    assert env.cli("register", *flags(), extra_env=sandbox.env()).returncode == 0
    before = creds_file(env).read_text()
    mark = sandbox.mark()
    refused = env.cli("register", *flags(), extra_env=sandbox.env())
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert sandbox.calls(since=mark) == [] and creds_file(env).read_text() == before
    forced = env.cli("register", *flags(), "--force", extra_env=sandbox.env())
    assert forced.returncode == 0, forced.stderr
    after = json.loads(creds_file(env).read_text())
    assert after["access_token"] != json.loads(before)["access_token"]
    assert stat.S_IMODE(creds_file(env).stat().st_mode) == 0o600


def test_fields_from_settings(env: Env, sandbox: Sandbox) -> None:
    """With no flags, the `agent.*` settings supply the fields (here through --set)."""
    name = f"set-{uuid.uuid4().hex[:8]}"
    sets = [f"agent.name={name}", "agent.description=from settings",
            "agent.image_url=https://example.invalid/s.png", f"agent.wallet={new_wallet()}",
            "agent.ticker=SET"]
    result = env.cli(*[p for s in sets for p in ("--set", s)], "register",
                     extra_env=sandbox.env())
    assert result.returncode == 0, result.stderr
    assert json.loads(creds_file(env).read_text())["agent_name"] == name


def test_platform_refusal_is_one_line_and_keeps_no_file(env: Env, sandbox: Sandbox) -> None:
    """A name the platform refuses (taken) is one line naming --name; nothing is saved."""
    taken = sandbox.register_agent(verify=False).name
    result = env.cli("register", *flags(taken), extra_env=sandbox.env())
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already taken" in lines[0] and "--name" in lines[0]
    assert not creds_file(env).exists()


async def test_action_registers_from_settings_then_does_nothing(live_rig: RigFactory,
                                                                sandbox: Sandbox) -> None:
    """The `register` action registers from agent.* once; with credentials it sends nothing."""
    name = f"act-{uuid.uuid4().hex[:8]}"
    rig = await live_rig(base_url=sandbox.base_url, overrides=[
        f"agent.name={name}", "agent.description=d", "agent.ticker=ACT",
        "agent.image_url=https://example.invalid/a.png", f"agent.wallet={new_wallet()}"])
    ctx = rig.ctx
    assert await register(ctx) is None
    assert ctx.credentials is not None and ctx.credentials.agent_name == name
    assert ctx.api.token == ctx.credentials.access_token
    assert stat.S_IMODE(ctx.paths.credentials_file.stat().st_mode) == 0o600
    assert await ctx.api.verification_status() is False, "the new token works"
    mark = sandbox.mark()
    assert await register(ctx) is None
    assert sandbox.calls("agent/register", since=mark) == []
    assert [e.name for e in rig.events] == ["register.done", "register.skipped"]


async def test_action_without_fields_names_the_flags(live_rig: RigFactory,
                                                     sandbox: Sandbox) -> None:
    """The `register` action without agent.* settings is an InputError naming what is missing."""
    rig = await live_rig(base_url=sandbox.base_url)
    mark = sandbox.mark()
    with pytest.raises(InputError, match="registration needs --name"):
        await register(rig.ctx)
    assert sandbox.calls(since=mark) == []


async def test_action_never_overwrites_a_malformed_file(live_rig: RigFactory,
                                                       sandbox: Sandbox) -> None:
    """A malformed credentials file fails the action with ConfigError and stays as it was."""
    rig = await live_rig(base_url=sandbox.base_url, overrides=[
        "agent.name=x", "agent.description=d", "agent.ticker=X",
        "agent.image_url=https://example.invalid/a.png", f"agent.wallet={new_wallet()}"])
    path = rig.ctx.paths.credentials_file
    path.write_text('{"access_token": ')
    mark = sandbox.mark()
    with pytest.raises(ConfigError, match="not valid JSON"):
        await register(rig.ctx)
    assert path.read_text() == '{"access_token": '
    assert sandbox.calls(since=mark) == []


def test_missing_fields_are_asked_for_on_a_tty(env: Env, sandbox: Sandbox) -> None:
    """On a terminal, each missing field is prompted for, then registration proceeds."""
    name = f"tty-{uuid.uuid4().hex[:8]}"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retake_fsm", "register", "--name", name],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**env.vars, **sandbox.env()}, cwd=env.home,
        )
        answers = ["typed at a terminal", "https://example.invalid/t.png", new_wallet(), "TTY"]
        os.write(master, "".join(a + "\n" for a in answers).encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0, err
    for question in ("description: ", "image url: ", "wallet: ", "ticker: "):
        assert question in out
    saved = json.loads(creds_file(env).read_text())
    assert (saved["agent_name"], saved["ticker"]) == (name, "TTY")
