"""Screenshots of a real Xvfb (scrot, Pillow fallback) and the thumbnail cadence on a FakeClock."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from retake_fsm.clock import FakeClock
from retake_fsm.errors import ProcessError
from retake_fsm.live import thumbnails
from retake_fsm.procs import ProcessRunner
from retake_fsm.screenshot import capture
from retake_fsm.settings import Paths
from retake_fsm.state import RunState

pytestmark = pytest.mark.timeout(60)


def _runner(tmp_path: Path) -> ProcessRunner:
    paths = Paths("shots", env={"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "s")})
    return ProcessRunner(paths, RunState(), FakeClock(), lambda *a, **k: None, lambda: None)


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return im.size


async def test_scrot_captures_the_display(tmp_path: Path, xvfb_display: str) -> None:
    """scrot -o grabs our Xvfb: a PNG of the display's size, written to the given path."""
    dest = tmp_path / "shot.png"
    dest.write_bytes(b"old")
    png = await capture(_runner(tmp_path), xvfb_display, dest)
    assert _size(png) == (320, 240)
    assert dest.read_bytes() == png


async def test_pillow_fallback_when_the_tool_is_missing(tmp_path: Path, xvfb_display: str) -> None:
    """With the screenshot tool absent, Pillow's ImageGrab(xdisplay=...) grabs the display."""
    png = await capture(_runner(tmp_path), xvfb_display, tmp_path / "shot.png",
                        tool="scrot-not-installed")
    assert _size(png) == (320, 240)


@pytest.mark.parametrize("tool", ["scrot", "scrot-not-installed"])
async def test_a_missing_display_is_a_clear_error(tmp_path: Path, tool: str) -> None:
    """Grabbing a display nobody runs fails with a ProcessError that names the display."""
    with pytest.raises(ProcessError) as info:
        await capture(_runner(tmp_path), ":987", tmp_path / "shot.png", tool=tool)
    assert ":987" in str(info.value)
    assert "is the display running?" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_first_delay_resumes_the_cadence() -> None:
    """After a resume the next thumbnail is due `interval` after the last one, never later."""
    from datetime import timedelta

    from retake_fsm.settings import Settings

    class Ctx:  # only what first_delay reads
        def __init__(self, last_age: float | None) -> None:
            self.clock = FakeClock()
            self.settings = Settings()
            self.state = RunState()
            if last_age is not None:
                self.state.last_thumbnail_at = self.clock.now() - timedelta(seconds=last_age)

    assert thumbnails.first_delay(Ctx(None)) == 0.0  # type: ignore[arg-type]
    assert thumbnails.first_delay(Ctx(60)) == 120.0  # type: ignore[arg-type]
    assert thumbnails.first_delay(Ctx(600)) == 0.0  # type: ignore[arg-type]
    assert thumbnails.first_delay(Ctx(-30)) == 180.0  # type: ignore[arg-type]
