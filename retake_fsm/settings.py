"""Settings: the `settings:` block of states.yaml, then env (RETAKE_*), then `--set`.

Durations are written `500ms`, `3s`, `3m`, `1h` (a bare number means seconds)
and held as float seconds. Every model forbids unknown keys, so a typo in
states.yaml or in `--set` is an error, not a silently ignored value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import InputError

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """'500ms' -> 0.5, '3s' -> 3.0, '3m' -> 180.0, 2 -> 2.0. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"not a duration: {value!r} (write e.g. 500ms, 3s, 3m, 1h)")


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"


Duration = Annotated[float, BeforeValidator(_positive_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ApiSettings(_Model):
    base_url: str = "https://retake.tv/api/v1"
    skill_url: str = "https://retake.tv/skill.json"
    skill_version: str = "2.1.2"
    timeout: Duration = 10.0
    connect_timeout: Duration = 5.0
    stream_page: str = "https://retake.tv/{name}"


class AgentSettings(_Model):
    """Registration fields; the `register` action and command read them when flags are absent."""

    name: str | None = None
    description: str | None = None
    image_url: str | None = None
    wallet: str | None = None
    ticker: str | None = None


class VerifySettings(_Model):
    wait: Duration = 3600.0  # how long a run waits for the human's tweet before exiting 3
    poll: Duration = 5.0
    status_poll: Duration = 30.0


def _display(value: Any) -> str:
    text = str(value).strip()
    if text.lower() == "auto" or re.fullmatch(r":\d{1,5}(\.0)?", text):
        return text
    raise ValueError(f"{value!r} is not an X display: use ':N' (e.g. :99) or 'auto'")


class DisplaySettings(_Model):
    display: Annotated[str, BeforeValidator(_display)] = ":99"  # ":N" or "auto"
    size: str = "1280x720"
    depth: int = 24
    ready_timeout: Duration = 5.0


class SceneSettings(_Model):
    enabled: bool = True
    command: list[str] | None = None  # None: the built-in terminal-like window
    text_file: str | None = None  # the file the agent appends to; default under the state dir


class EncoderSettings(_Model):
    binary: str = "ffmpeg"
    size: str = "1280x720"
    fps: int = 30
    preset: str = "veryfast"
    tune: str = "zerolatency"
    video_bitrate: str = "1500k"
    maxrate: str = "1500k"
    bufsize: str = "3000k"
    gop: int = 60
    pix_fmt: str = "yuv420p"
    audio_bitrate: str = "128k"
    audio_rate: int = 44100
    thread_queue_size: int = 512
    publish_timeout: Duration = 10.0
    start_window: Duration = 0.5
    stall: Duration = 10.0
    stats_period: Duration = 1.0
    extra_args: list[str] = Field(default_factory=list)


class LiveSettings(_Model):
    poll: Duration = 3.0
    limit: Duration = 30.0
    status_poll: Duration = 15.0
    not_live_polls: int = Field(default=3, ge=1)


class ChatSettings(_Model):
    poll: Duration = 3.0
    poll_active: Duration = 2.0
    poll_quiet: Duration = 8.0
    quiet_after: Duration = 30.0
    limit: int = Field(default=50, ge=1, le=100)
    reply_interval: Duration = 1.0
    keepalive: Duration = 120.0
    keepalive_lines: list[str] = Field(
        default_factory=lambda: [
            "Still here and streaming. Ask me anything in chat!",
            "Quiet in here. Type !help to see what I can do.",
            "What should we explore next? Drop an idea in chat.",
        ]
    )
    opening_message: str = "I'm live. What should we explore today?"
    responder: str | None = None
    responder_backoff: Duration = 1.0
    responder_backoff_max: Duration = 30.0


class ThumbnailSettings(_Model):
    interval: Duration = 180.0
    tool: str = "scrot"
    attempts: int = Field(default=3, ge=1)  # uploads of the periodic thumbnail
    retry: Duration = 2.0  # wait before the 2nd try, doubled after each failure


class RecoverSettings(_Model):
    max: int = Field(default=5, ge=1)
    window: Duration = 600.0


class NotifySettings(_Model):
    command: str | None = None
    timeout: Duration = 10.0  # the notify command is stopped after this (logged, not fatal)
    what: str | None = None  # "<what is happening>" in the distribution message; None: ideas[0]
    ideas: list[str] = Field(
        default_factory=lambda: [
            "a live walkthrough of what I am building",
            "answering viewers' questions",
            "a code review of a public project",
        ]
    )


class Settings(_Model):
    profile: str = "default"
    credentials: str | None = None  # path; default ~/.config/retake/credentials.json
    api: ApiSettings = Field(default_factory=ApiSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    scene: SceneSettings = Field(default_factory=SceneSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    thumbnail: ThumbnailSettings = Field(default_factory=ThumbnailSettings)
    recover: RecoverSettings = Field(default_factory=RecoverSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)


# Environment variables that override settings (the stable user interface).
ENV_OVERRIDES: dict[str, str] = {
    "RETAKE_BASE_URL": "api.base_url",
    "RETAKE_SKILL_URL": "api.skill_url",
    "RETAKE_PROFILE": "profile",
    "RETAKE_CREDENTIALS": "credentials",
}


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _parse_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected key=value, e.g. chat.poll=2s", field="--set")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", key):
        raise InputError(f"--set {item!r}: bad key {key!r}", field="--set")
    import yaml  # a value is YAML: 3, true, [a, b], "text"

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if value is None:
        value = None if raw.strip() in ("null", "~") else raw
    return key, value


def build_settings(
    base: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: list[str] | None = None,
) -> Settings:
    """Settings from the definition's block, then env (RETAKE_*), then `--set k=v` items."""
    import copy

    tree: dict[str, Any] = copy.deepcopy(dict(base or {}))
    env = os.environ if env is None else env
    for var, dotted in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(tree, dotted, env[var])
    for item in overrides or []:
        key, value = _parse_set(item)
        _set_dotted(tree, key, value)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"setting {where}: {first['msg']}", field=where) from exc


class Paths:
    """Where things live for one profile; every path respects HOME and XDG_STATE_HOME."""

    def __init__(self, profile: str, credentials: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", profile):
            raise InputError(f"profile {profile!r}: use letters, digits, '.', '_' or '-'",
                             field="profile")
        home = Path(env.get("HOME") or Path.home())
        state_home = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state")
        self.profile = profile
        self.state_dir = state_home / "retake-fsm" / profile
        self.state_file = self.state_dir / "state.json"
        self.journal_file = self.state_dir / "journal.jsonl"
        self.lock_file = self.state_dir / "run.lock"
        self.debug_log = self.state_dir / "debug.log"
        self.logs_dir = self.state_dir / "logs"
        self.inbox_dir = self.state_dir / "inbox"
        self.credentials_file = Path(credentials) if credentials else (
            home / ".config" / "retake" / "credentials.json"
        )
        self.skill_cache = state_home / "retake-fsm" / "skill.json"

    def ensure(self) -> None:
        for d in (self.state_dir, self.logs_dir, self.inbox_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
