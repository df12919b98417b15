"""credentials.json: 0600 and atomic on write, RETAKE_ACCESS_TOKEN first on read, clear errors."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from retake_fsm.credentials import (
    Credentials,
    load_credentials,
    read_credentials_file,
    save_credentials,
    update_credentials_file,
)
from retake_fsm.errors import ConfigError, ExitCode
from retake_fsm.settings import Paths
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Sandbox, SandboxAgent

FILE_TOKEN = "rtk_fromthefile0123456789wxyz"
ENV_TOKEN = "rtk_fromtheenv01234567890abcd"


def creds(**kw: str) -> Credentials:
    base = dict(access_token=FILE_TOKEN, agent_name="Ada", agent_id="agent_1",
                userDbId="user_1", wallet_address="11111111111111111111111111111111",
                ticker="ADA", token_address="", token_ticker="")
    base.update(kw)
    return Credentials.model_validate(base)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths("default", str(tmp_path / "cfg" / "credentials.json"),
                 env={"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")})


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_writes_0600_atomically(paths: Paths) -> None:
    """A saved file has mode 0600, the platform's field names, and no temp file is left."""
    save_credentials(paths.credentials_file, creds())
    assert mode(paths.credentials_file) == 0o600
    data = json.loads(paths.credentials_file.read_text())
    assert set(data) >= {"access_token", "agent_name", "agent_id", "userDbId", "wallet_address",
                         "ticker", "token_address", "token_ticker"}
    assert data["userDbId"] == "user_1"
    assert sorted(p.name for p in paths.credentials_file.parent.iterdir()) == ["credentials.json"]


def test_env_token_wins_over_the_file(paths: Paths) -> None:
    """RETAKE_ACCESS_TOKEN replaces the file's token; the other fields come from the file."""
    save_credentials(paths.credentials_file, creds())
    got = load_credentials(paths, env={"RETAKE_ACCESS_TOKEN": ENV_TOKEN})
    assert got is not None
    assert got.access_token == ENV_TOKEN and got.userDbId == "user_1"
    assert load_credentials(paths, env={}).access_token == FILE_TOKEN  # type: ignore[union-attr]


def test_env_token_alone_is_enough(paths: Paths) -> None:
    """With no file, RETAKE_ACCESS_TOKEN alone gives credentials; with neither, None."""
    got = load_credentials(paths, env={"RETAKE_ACCESS_TOKEN": ENV_TOKEN})
    assert got is not None and got.access_token == ENV_TOKEN and got.userDbId == ""
    assert load_credentials(paths, env={}) is None


def test_env_token_stands_in_for_a_file_without_one(paths: Paths) -> None:
    """A file lacking access_token is an error, unless RETAKE_ACCESS_TOKEN supplies it."""
    paths.credentials_file.parent.mkdir(parents=True)
    paths.credentials_file.write_text(json.dumps({"agent_name": "Ada", "userDbId": "u"}))
    with pytest.raises(ConfigError, match="access_token"):
        load_credentials(paths, env={})
    got = load_credentials(paths, env={"RETAKE_ACCESS_TOKEN": ENV_TOKEN})
    assert got is not None and got.userDbId == "u"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        (json.dumps({"access_token": 42}), "field `access_token`"),
        (json.dumps({"access_token": FILE_TOKEN, "userDbId": ["x"]}), "field `userDbId`"),
    ],
)
def test_malformed_file_is_one_line_naming_file_and_problem(paths: Paths, content: str,
                                                            problem: str) -> None:
    """A malformed file is a ConfigError (exit 2) naming the file and what is wrong; untouched."""
    paths.credentials_file.parent.mkdir(parents=True)
    paths.credentials_file.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_credentials(paths, env={})
    text = str(info.value)
    assert str(paths.credentials_file) in text and problem in text
    assert "\n" not in text and info.value.exit_code == ExitCode.USAGE
    assert paths.credentials_file.read_text() == content


def test_looser_file_is_tightened_with_a_warning(paths: Paths, warnings: list[str]) -> None:
    """A pre-existing 0644 file gets a warning and is chmod'ed to 0600 when read."""
    save_credentials(paths.credentials_file, creds())
    paths.credentials_file.chmod(0o644)
    assert read_credentials_file(paths.credentials_file) is not None
    assert mode(paths.credentials_file) == 0o600
    assert any("tightened to 600" in w for w in warnings)


def test_update_keeps_the_files_own_token(paths: Paths) -> None:
    """Updating token fields rewrites the file with its own token, never the env one."""
    save_credentials(paths.credentials_file, creds())
    loaded = load_credentials(paths, env={"RETAKE_ACCESS_TOKEN": ENV_TOKEN})
    assert loaded is not None
    update_credentials_file(paths.credentials_file, token_address="TokAddr", token_ticker="ADA")
    data = json.loads(paths.credentials_file.read_text())
    assert data["access_token"] == FILE_TOKEN and ENV_TOKEN not in json.dumps(data)
    assert (data["token_address"], data["token_ticker"]) == ("TokAddr", "ADA")
    assert mode(paths.credentials_file) == 0o600


def test_update_without_a_file_writes_nothing(paths: Paths) -> None:
    """With no file (token from the env only), an update stores nothing on disk."""
    assert update_credentials_file(paths.credentials_file, token_address="T") is None
    assert not paths.credentials_file.exists()


def test_token_stays_out_of_repr_and_public_view() -> None:
    """The token is absent from repr() and from the public (status/journal) view."""
    c = creds()
    assert FILE_TOKEN not in repr(c) and "access_token" not in c.public()
    assert c.public()["userDbId"] == "user_1"


def test_unknown_fields_survive_a_rewrite(paths: Paths) -> None:
    """Fields we do not know (added by hand or by a newer platform) are kept on update."""
    paths.credentials_file.parent.mkdir(parents=True)
    paths.credentials_file.write_text(json.dumps({**creds().model_dump(), "note": "mine"}))
    update_credentials_file(paths.credentials_file, token_ticker="ADA")
    assert json.loads(paths.credentials_file.read_text())["note"] == "mine"


def test_cli_uses_the_env_token_first(env: Env, sandbox: Sandbox,
                                      sandbox_agent: SandboxAgent) -> None:
    """Through the real CLI, RETAKE_ACCESS_TOKEN beats the file's token; neither is printed."""
    good = env.cli("verify", "--status", extra_env=sandbox_agent.env())
    assert good.returncode == 0 and good.stdout.strip() == "verified"
    bogus = "rtk_" + "0" * 40
    mark = sandbox.mark()
    bad = env.cli("verify", "--status",
                  extra_env={**sandbox_agent.env(), "RETAKE_ACCESS_TOKEN": bogus})
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "token rejected: re-register or set RETAKE_ACCESS_TOKEN" in lines[0]
    assert bogus not in bad.stderr and sandbox_agent.token not in bad.stderr + bad.stdout
    (call,) = sandbox.calls("agent/verification-status", since=mark)
    assert call["auth"] == f"Bearer rtk_…{bogus[-4:]}" and call["status"] == 401
