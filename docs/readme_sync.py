"""Keep README.md's generated blocks in sync with states.yaml.

    python docs/readme_sync.py          # rewrite the blocks
    python docs/readme_sync.py --check  # exit 1 if they are stale (tests/test_readme.py)

Blocks: the mermaid diagram of the machine (`retake_fsm.diagram.mermaid`, no
state marked) and the settings table (every leaf of `Settings`, its effective
default from states.yaml, and the comment written beside it there).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from retake_fsm.definition import load_definition
from retake_fsm.diagram import mermaid
from retake_fsm.settings import build_settings, format_duration

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STATES = ROOT / "states.yaml"
_LINE = re.compile(r"^(?P<indent> *)(?P<key>[a-z_]+):(?P<rest>.*)$")


def yaml_comments(path: Path) -> dict[str, str]:
    """dotted settings key -> the `# comment` beside it in the settings block."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("settings:"):
            inside = True
            continue
        if not inside or not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        indent = len(m["indent"])
        if indent == 0:
            break
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        if "#" in m["rest"]:
            comment = m["rest"].split(" #", 1)[1].strip() if " #" in m["rest"] else ""
            if comment:
                out[".".join(k for _, k in stack)] = comment
    return out


def _leaves(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows.extend(_leaves(value, key + "."))
        else:
            rows.append((key, value))
    return rows


def _fmt(key: str, value: Any) -> str:
    field = key.rsplit(".", 1)[-1]
    if isinstance(value, float) and field not in ("depth",):
        value = format_duration(value)
    if value is None:
        return "-"
    if isinstance(value, list):
        return f"{len(value)} items" if value else "[]"
    return f"`{value}`"


def settings_table() -> str:
    definition = load_definition(STATES)
    settings = build_settings(definition.settings, env={})
    comments = yaml_comments(STATES)
    lines = ["| setting | default | what |", "|---|---|---|"]
    for key, value in _leaves(settings):
        what = comments.get(key, "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_fmt(key, value)} | {what} |")
    return "\n".join(lines)


def diagram_block() -> str:
    return "```mermaid\n" + mermaid(load_definition(STATES)).strip() + "\n```"


def render(text: str) -> str:
    for name, body in (("diagram", diagram_block()), ("settings", settings_table())):
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m, b=body: m.group(1) + b + "\n" + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            print("README.md is stale: run `python docs/readme_sync.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
