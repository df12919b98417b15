"""One screenshot of an X display as PNG bytes: `scrot -o`, else Pillow's ImageGrab.

scrot runs through the ProcessRunner (a short tool, bounded time). When the
configured tool is not installed, Pillow grabs the display directly
(`ImageGrab.grab(xdisplay=...)`); when neither is available the error names the
Debian package to install.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MissingBinaryError, ProcessError

if TYPE_CHECKING:
    from .procs import ProcessRunner

SCROT_TIMEOUT = 10.0


async def capture(procs: ProcessRunner, display: str, dest: Path, *,
                  tool: str = "scrot", timeout: float = SCROT_TIMEOUT) -> bytes:
    """Screenshot `display` into `dest` (overwritten) and return the PNG bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if tool and shutil.which(tool):
        return await _scrot(procs, tool, display, dest, timeout)
    data = await asyncio.to_thread(_pillow_grab, display, tool or "scrot")
    dest.write_bytes(data)
    return data


async def _scrot(procs: ProcessRunner, tool: str, display: str, dest: Path,
                 timeout: float) -> bytes:
    code, _ = await procs.run_once("scrot", [tool, "-o", str(dest)],
                                        env={"DISPLAY": display}, timeout=timeout)
    if code != 0:
        log = procs.paths.logs_dir / "scrot.log"
        raise ProcessError(f"scrot could not grab display {display} (exit code {code})",
                           hint=f"is the display running? details in {log}")
    try:
        data = dest.read_bytes()
    except OSError as exc:
        raise ProcessError(f"scrot wrote no file at {dest}: {exc}") from exc
    if not data:
        raise ProcessError(f"scrot wrote an empty file at {dest}",
                           hint=f"is the display {display} running?")
    return data


def _pillow_grab(display: str, tool: str) -> bytes:
    try:
        from PIL import ImageGrab
    except ImportError as exc:
        raise MissingBinaryError(tool, "scrot") from exc
    try:
        image = ImageGrab.grab(xdisplay=display)
    except OSError as exc:
        hint = f"is the display running? {tool} is missing, so Pillow tried"
        raise ProcessError(f"cannot grab display {display}: {exc}", hint=hint) from exc
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
