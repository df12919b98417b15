"""`retake-fsm validate [FILE]`: check a states.yaml.

Exit 0 with a one-line summary; or every problem as `FILE:LINE:COL: message`
on stderr (each line starts with the position, as compilers print them), exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DefinitionError, ExitCode

if TYPE_CHECKING:
    from ..app import App


def main(args: argparse.Namespace, app: App) -> int:
    from ..definition import load_definition, summary
    from ..redact import redact

    path = Path(args.file) if getattr(args, "file", None) else app.states_path
    try:
        definition = load_definition(path)
    except DefinitionError as exc:
        for file, line, col, msg in exc.problems:
            print(redact(f"{file}:{line}:{col}: {msg}"), file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return int(ExitCode.USAGE)
    print(f"{path}: ok, {summary(definition)}")
    return 0
