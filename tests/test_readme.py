"""The README's generated parts (machine diagram, settings table) match states.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_blocks_are_in_sync_with_states_yaml() -> None:
    """`docs/readme_sync.py --check` finds the README's diagram and settings table current."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "readme_sync.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_diagram_has_every_state_and_transition() -> None:
    """The diagram in the README names the seven states and every transition of states.yaml."""
    from retake_fsm.definition import load_definition

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- diagram:begin -->", 1)[1].split("<!-- diagram:end -->", 1)[0]
    definition = load_definition(ROOT / "states.yaml")
    assert len(definition.states) == 7
    for state in definition.states:
        assert f'state "{state}"' in block
    for name, t in definition.transitions.items():
        for source in t.source:
            assert f"{source} --> {t.dest}: {name}" in block


def test_readme_shows_the_two_commands() -> None:
    """The README leads with `make demo` and `make test`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


def test_readme_example_responder_speaks_the_protocol(tmp_path: Path) -> None:
    """The README's example responder, run as written, answers a question with a JSON line
    naming the comment it replies to, and stays silent otherwise."""
    import json

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = text.split("## Chat responders", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "responder.py"
    script.write_text(code)
    comments = [
        {"id": "c1", "text": "what are you building?", "author_name": "ann", "author_id": "w1",
         "timestamp": "2026-12-04T20:00:00Z"},
        {"id": "c2", "text": "hello", "author_name": "bob", "author_id": "w2",
         "timestamp": "2026-12-04T20:00:01Z"},
    ]
    proc = subprocess.run([sys.executable, str(script)], input="".join(
        json.dumps(c) + "\n" for c in comments), capture_output=True, text=True, timeout=10,
        check=True)
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert replies == [{"reply": "@ann good question, let me think about it on stream",
                        "in_reply_to": "c1"}]
