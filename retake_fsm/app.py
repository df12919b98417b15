"""What every command shares: the definition, settings and paths, loaded lazily.

Built once per invocation by the CLI from its arguments; commands receive it
and never parse arguments themselves.
"""

from __future__ import annotations

import argparse
import os
import traceback
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import Paths, Settings, build_settings

if TYPE_CHECKING:
    from .definition import Definition

PACKAGED_STATES = Path(__file__).with_name("states.yaml")


def default_states_path() -> Path:
    """`$RETAKE_STATES`, else ./states.yaml, else the copy shipped in the package."""
    env = os.environ.get("RETAKE_STATES")
    if env:
        return Path(env)
    local = Path("states.yaml")
    if local.is_file():
        return local
    return PACKAGED_STATES


class App:
    def __init__(self, states_path: Path, overrides: list[str] | None = None,
                 args: argparse.Namespace | None = None) -> None:
        self.states_path = states_path
        self.overrides = list(overrides or [])
        self.args = args or argparse.Namespace()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> App:
        overrides = list(args.overrides or []) + list(getattr(args, "run_overrides", None) or [])
        if getattr(args, "profile", None):
            overrides.append(f"profile={args.profile}")
        if getattr(args, "display", None) and args.command == "run":
            overrides.append(f"display.display={args.display}")
        if getattr(args, "responder", None):
            overrides.append(f"chat.responder={args.responder}")
        states = Path(args.states) if args.states else default_states_path()
        return cls(states, overrides, args)

    @cached_property
    def definition(self) -> Definition:
        from .definition import load_definition

        return load_definition(self.states_path)

    @cached_property
    def settings(self) -> Settings:
        return build_settings(self.definition.settings, overrides=self.overrides)

    @cached_property
    def paths(self) -> Paths:
        s = self.settings
        return Paths(s.profile, s.credentials)

    def log_traceback(self, exc: BaseException) -> None:
        """Append the traceback to the profile's debug log; never fail while doing so."""
        try:
            paths = self.paths
            paths.state_dir.mkdir(parents=True, exist_ok=True)
            from .redact import redact

            text = "".join(traceback.format_exception(exc))
            with open(paths.debug_log, "a", encoding="utf-8") as fh:
                fh.write(redact(text) + "\n")
        except Exception:  # noqa: S110 - reporting must never raise
            pass
