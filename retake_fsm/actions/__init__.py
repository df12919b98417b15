"""The action registry: states.yaml names actions; this maps names to coroutines.

Built-in actions live one per module in this package and register themselves
with `@action("name")`. A definition may list `plugins:` (importable modules)
that register more; tests use that to add slow or failing actions to a real
CLI run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import ActionContext

ActionFn = Callable[["ActionContext"], Awaitable[str | None]]

REGISTRY: dict[str, ActionFn] = {}



def action(name: str) -> Callable[[ActionFn], ActionFn]:
    """Register `fn` under `name` (a later registration of the same name replaces it)."""

    def deco(fn: ActionFn) -> ActionFn:
        REGISTRY[name] = fn
        return fn

    return deco


def load_builtin() -> dict[str, ActionFn]:
    """Import every module of this package (each registers its actions); on demand,
    so `retake-fsm --help` stays fast."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def load_plugins(modules: list[str]) -> dict[str, ActionFn]:
    """Import each plugin module (it registers its actions); the current directory
    is searched first, as `python -m` would."""
    cwd = str(Path.cwd())
    if modules and "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    for mod in modules:
        importlib.import_module(mod)
    return REGISTRY
