"""`retake-fsm diagram --format mermaid|dot|svg|png [-o FILE]`: current state marked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, StateError
from ..fsutil import write_atomic

if TYPE_CHECKING:
    from ..app import App


def main(args: argparse.Namespace, app: App) -> int:
    from loguru import logger

    from ..diagram import render
    from ..store import Store

    fmt = args.format
    try:
        current: str | None = Store(app.paths).load().state
    except StateError as exc:
        logger.warning("drawing without the current state: {}", exc)
        current = None
    data = render(app.definition, current, fmt)
    if args.output:
        out = Path(args.output)
        try:
            write_atomic(out, data, mode=0o644)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}", field="--output") from exc
        print(f"wrote {out} ({fmt}, current state: {current or 'none'})")
    elif fmt == "png" and sys.stdout.isatty():
        raise InputError("png is binary: write it to a file with -o FILE", field="--output")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
