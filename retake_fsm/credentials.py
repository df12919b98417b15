"""The agent's credentials: `~/.config/retake/credentials.json` (or RETAKE_CREDENTIALS).

The file holds what registration returned (the platform's own field names):
`access_token, agent_name, agent_id, userDbId, wallet_address, ticker,
token_address, token_ticker`. It is written atomically (temp file, fsync,
`os.replace`) with mode 0600; a looser pre-existing file is tightened with a
warning. `RETAKE_ACCESS_TOKEN`, when set, wins over the file's token and is
never written to the file. A malformed file is a `ConfigError` naming the file
and the problem, and is never overwritten by a failed run.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .fsutil import FILE_MODE, write_atomic
from .redact import register_secret
from .settings import Paths

TOKEN_ENV = "RETAKE_ACCESS_TOKEN"
_FIX = "fix the file, or move it away and run `retake-fsm register`"


class Credentials(BaseModel):
    """What the platform gave us at registration (plus the token fields after stream 1)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    access_token: str = Field(min_length=1, repr=False)
    agent_name: str = ""
    agent_id: str = ""
    userDbId: str = ""  # the platform's (and the file's) own spelling
    wallet_address: str = ""
    ticker: str = ""
    token_address: str | None = ""
    token_ticker: str | None = ""

    def public(self) -> dict[str, Any]:
        """Everything but the token (for status output and the journal)."""
        return self.model_dump(exclude={"access_token"})


def _tighten(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("{} was readable by others (mode {:o}); tightened to 600", path, mode)
        path.chmod(FILE_MODE)


def _read_raw(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read credentials: {exc.strerror}",
                          hint="fix its permissions or set RETAKE_CREDENTIALS") from None
    with contextlib.suppress(OSError):
        _tighten(path)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})", hint=_FIX) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(data).__name__}",
                          hint=_FIX)
    if isinstance(data.get("access_token"), str):
        register_secret(data["access_token"])
    return data


def _validate(path: Path, data: dict[str, Any]) -> Credentials:
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        problem = "missing" if first["type"] == "missing" else first["msg"]
        raise ConfigError(f"{path}: field `{where}`: {problem}",
                          hint=f"{_FIX}, or set {TOKEN_ENV}") from None


def read_credentials_file(path: Path) -> Credentials | None:
    """The file as stored (no env override); None if it does not exist."""
    data = _read_raw(path)
    return None if data is None else _validate(path, data)


def load_credentials(paths: Paths, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials to use: the file, with RETAKE_ACCESS_TOKEN winning over its token.

    With no file but RETAKE_ACCESS_TOKEN set, credentials holding only the token
    (the other fields empty). None when there is neither.
    """
    env = os.environ if env is None else env
    env_token = (env.get(TOKEN_ENV) or "").strip() or None
    register_secret(env_token)
    path = paths.credentials_file
    data = _read_raw(path)
    if data is None:
        return None if env_token is None else Credentials(access_token=env_token)
    if env_token is not None:
        data["access_token"] = env_token
    return _validate(path, data)


def save_credentials(path: Path, creds: Credentials) -> None:
    """Write atomically with mode 0600 (never a moment with a readable or half file)."""
    register_secret(creds.access_token)
    try:
        write_atomic(path, json.dumps(creds.model_dump(mode="json"), indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write credentials: {exc.strerror or exc}",
                          hint="check the directory's permissions or set RETAKE_CREDENTIALS"
                          ) from None


def update_credentials_file(path: Path, **fields: Any) -> Credentials | None:
    """Change some fields of the stored file (never its token from the env); None if absent."""
    stored = read_credentials_file(path)
    if stored is None:
        return None
    changed = {k: v for k, v in fields.items() if getattr(stored, k, None) != v}
    if changed:
        stored = stored.model_copy(update=changed)
        save_credentials(path, stored)
    return stored
