"""Draw the machine: mermaid (no system binary), Graphviz dot, or svg/png through `dot`.

The graph comes from the engine's own machine class with graph support
(`AsyncGraphMachine`), so the drawing is exactly what runs; the current state
is styled `active` (mermaid class `s_active`; red, salmon fill and a double
border in dot/svg/png). On-demand transitions are labelled as such.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Literal

from .definition import Definition
from .engine import Model, build_machine
from .errors import MissingBinaryError, RetakeError

Format = Literal["mermaid", "dot", "svg", "png"]
FORMATS: tuple[Format, ...] = ("mermaid", "dot", "svg", "png")


def _source(definition: Definition, current: str | None,
            engine: Literal["mermaid", "graphviz"]) -> str:
    model = Model()
    marked = current if current in definition.states else None
    machine = build_machine(definition, model, marked or definition.initial, graph=engine)
    if marked is None:
        machine.model_graphs[id(model)].reset_styling()
    return str(model.get_graph().source)  # type: ignore[attr-defined]


def mermaid(definition: Definition, current: str | None = None) -> str:
    return _source(definition, current, "mermaid") + "\n"


def dot(definition: Definition, current: str | None = None) -> str:
    return _source(definition, current, "graphviz") + "\n"


def render(definition: Definition, current: str | None, fmt: Format) -> bytes:
    """The diagram in `fmt`, with `current` (if a state of the definition) marked."""
    if fmt == "mermaid":
        return mermaid(definition, current).encode()
    source = dot(definition, current)
    if fmt == "dot":
        return source.encode()
    return run_dot(source, fmt)


def run_dot(source: str, fmt: str, *, timeout: float = 30.0) -> bytes:
    """Graphviz's `dot -T<fmt>` on `source`; MissingBinaryError without Graphviz."""
    binary = shutil.which("dot")
    if binary is None:
        raise MissingBinaryError("dot", "graphviz")
    try:
        done = subprocess.run([binary, f"-T{fmt}"], input=source.encode(),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RetakeError(f"dot -T{fmt} took longer than {timeout:g}s") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise RetakeError(f"dot -T{fmt} failed (exit {done.returncode})"
                          + (f": {detail[-1]}" if detail else ""))
    return done.stdout
