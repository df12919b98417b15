"""Builds a real engine for in-process tests: real Store under tmp_path, FakeClock,
actions registered by the test itself (a plain dict registry, no global state)."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retake_fsm.actions import ActionFn
from retake_fsm.clock import FakeClock
from retake_fsm.context import ActionContext, Session
from retake_fsm.definition import Definition, load_definition
from retake_fsm.engine import Engine
from retake_fsm.settings import Paths, build_settings
from retake_fsm.store import Store

REPO = Path(__file__).resolve().parents[2]


def definition_from(tmp_path: Path, text: str, name: str = "states.yaml") -> Definition:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_definition(path, check_actions=False)


@dataclass
class Rig:
    definition: Definition
    store: Store
    clock: FakeClock
    ctx: ActionContext
    engine: Engine
    registry: dict[str, ActionFn]
    calls: list[str] = field(default_factory=list)

    def journal(self, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.store.journal() if event is None or e["event"] == event]

    def path_taken(self) -> list[tuple[str, str, str]]:
        return [(e["transition"], e["source"], e["dest"]) for e in self.journal("transition")]


def make_rig(tmp_path: Path, definition: Definition, registry: dict[str, ActionFn], *,
             overrides: list[str] | None = None, seed: int = 7,
             state: str | None = None) -> Rig:
    paths = Paths("test", env={"HOME": str(tmp_path / "home"),
                               "XDG_STATE_HOME": str(tmp_path / "state")})
    clock = FakeClock()
    store = Store(paths, clock)
    run_state = store.load()
    if state:
        run_state.state = state
    settings = build_settings(definition.settings, env={}, overrides=overrides)

    def save() -> None:
        store.save(run_state)

    ctx = ActionContext(settings=settings, paths=paths, clock=clock, state=run_state,
                        session=Session(), api=None, procs=None,  # type: ignore[arg-type]
                        emit=store.emit, save=save)
    engine = Engine(definition, ctx, registry=registry, rng=random.Random(seed))
    return Rig(definition, store, clock, ctx, engine, registry)


def recorder(calls: list[str], name: str, result: str | None = None) -> ActionFn:
    """An action that only records that it ran."""

    async def fn(ctx: ActionContext) -> str | None:
        calls.append(name)
        return result

    return fn


def failing(calls: list[str], name: str, times: int,
            make: Callable[[], Exception]) -> ActionFn:
    """An action that fails `times` times with `make()`, then succeeds."""

    async def fn(ctx: ActionContext) -> str | None:
        calls.append(name)
        if calls.count(name) <= times:
            raise make()
        return None

    return fn
