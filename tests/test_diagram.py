"""Diagrams from the engine's own graph machine: mermaid, dot (checked by real `dot`), svg, png."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from retake_fsm.definition import Definition, load_definition
from retake_fsm.diagram import dot, mermaid, render, run_dot
from retake_fsm.errors import MissingBinaryError

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(REPO / "states.yaml", check_actions=False)


def edges(definition: Definition) -> list[tuple[str, str, str]]:
    return [(src, t.dest, name) for name, t in definition.transitions.items() for src in t.source]


def test_mermaid_has_the_seven_states_and_every_transition(definition: Definition) -> None:
    """Every state is a node and every (source, dest, trigger) an edge label; no binary needed."""
    text = mermaid(definition, "live")
    assert text.startswith("---\ntitle: retake-fsm\n---\nstateDiagram-v2\n")
    for state in definition.states:
        assert f'state "{state}" as {state}' in text
    assert len(definition.states) == 7
    found = set()
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\w+) --> (\w+): (.+)", line)
        if m:
            for label in m.group(3).split(" | "):
                found.add((m.group(1), m.group(2), label.split(" ")[0]))
    assert found == set(edges(definition))
    assert "[*] --> unregistered" in text


def test_mermaid_marks_the_current_state(definition: Definition) -> None:
    """The current state gets the active class; the others the default one."""
    text = mermaid(definition, "encoding")
    assert re.search(r"Class encoding s_active\b", text)
    assert re.search(r"Class live s_default\b", text)
    assert "s_active" not in mermaid(definition, None).split("Class", 1)[1]


def test_dot_output_is_accepted_by_graphviz(definition: Definition, tmp_path: Path) -> None:
    """The dot text fed to the real `dot -Tsvg` succeeds and yields an SVG with every state."""
    source = tmp_path / "flow.dot"
    source.write_text(dot(definition, "live"))
    done = subprocess.run(["dot", "-Tsvg", str(source)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(done.stdout)
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert set(definition.states) <= titles


def node_fill(svg: bytes, state: str) -> str | None:
    root = ET.fromstring(svg)
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if g.get("class") == "node" and title is not None and title.text == state:
            shape = g.find(f"{SVG}path")
            if shape is None:
                shape = g.find(f"{SVG}polygon")
            return None if shape is None else shape.get("fill")
    raise AssertionError(f"no node {state!r}")


def test_svg_marks_the_current_state(definition: Definition) -> None:
    """In the SVG the current state is filled (darksalmon); the others stay white."""
    svg = render(definition, "started", "svg")
    assert node_fill(svg, "started") == "darksalmon"
    assert {node_fill(svg, s) for s in definition.states if s != "started"} == {"white"}


def test_png_is_a_png(definition: Definition) -> None:
    """png goes through dot as well and starts with the PNG signature."""
    assert render(definition, "live", "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_without_graphviz_svg_is_a_clear_missing_binary_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, definition: Definition) -> None:
    """No `dot` on PATH: MissingBinaryError naming the Debian package, mermaid still works."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError, match="apt-get install graphviz"):
        run_dot(dot(definition), "svg")
    assert "stateDiagram-v2" in mermaid(definition)
