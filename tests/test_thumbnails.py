"""Screenshots of a real Xvfb (scrot, Pillow fallback) and the thumbnail cadence on a FakeClock."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from retake_fsm.clock import FakeClock
from retake_fsm.errors import ProcessError
from retake_fsm.live import thumbnails
from retake_fsm.procs import ProcessRunner
from retake_fsm.screenshot import capture
from retake_fsm.settings import Paths
from retake_fsm.state import RunState
from tests.fixtures.live import RigFactory, agent_rig, run_until

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


async def test_thumbnail_cadence_on_the_fake_clock(live_rig: RigFactory, sandbox: Any,
                                                   sandbox_agent: Any, xvfb_display: str) -> None:
    """Every thumbnail.interval (3 min) a real screenshot is uploaded; 9 minutes take no time."""
    rig = await agent_rig(live_rig, sandbox_agent, display=xvfb_display)
    rig.ctx.state.last_thumbnail_at = rig.clock.now()  # as first_thumbnail leaves it
    start = rig.clock.monotonic()
    mark = sandbox.mark()
    await run_until(rig, {"thumbnails": lambda: thumbnails.thumbnail_loop(rig.ctx)},
                    lambda: len(rig.named("thumbnail.uploaded")) >= 3, what="three uploads")
    times = [e.at - start for e in rig.named("thumbnail.uploaded")]
    assert times[:3] == [180.0, 360.0, 540.0]
    uploads = sandbox.calls("update-thumbnail", since=mark)
    assert [c["status"] for c in uploads][:3] == [200, 200, 200]  # a 4th may be cut by the cancel
    saved = rig.reload_state()
    assert saved.thumbnails == len(times)
    assert saved.last_thumbnail_at is not None
    assert (saved.last_thumbnail_at - rig.clock.now()).total_seconds() <= 0


async def test_upload_failures_are_retried_then_logged_not_fatal(
        live_rig: RigFactory, sandbox: Any, sandbox_agent: Any, xvfb_display: str) -> None:
    """503s are retried with backoff (2 s, 4 s); a refresh that fails 3 times is logged and the
    next one goes ahead on time."""
    rig = await agent_rig(live_rig, sandbox_agent, display=xvfb_display)
    rig.ctx.state.last_thumbnail_at = rig.clock.now()
    sandbox.set_faults("path=update-thumbnail,status=503,count=4")
    await run_until(rig, {"thumbnails": lambda: thumbnails.thumbnail_loop(rig.ctx)},
                    lambda: rig.named("thumbnail.uploaded"), what="an upload after the faults")
    names = [e.name for e in rig.events if e.name.startswith("thumbnail.")]
    assert names[:5] == ["thumbnail.retry", "thumbnail.retry", "thumbnail.failed",
                         "thumbnail.retry", "thumbnail.uploaded"]
    assert [e.fields["wait"] for e in rig.named("thumbnail.retry")][:3] == [2.0, 4.0, 2.0]
    assert rig.clock.sleeps[:5] == [180.0, 2.0, 4.0, 180.0, 2.0]  # type: ignore[attr-defined]
    assert rig.ctx.state.counters["thumbnail_failures"] == 1


async def test_conflict_on_upload_recovers(live_rig: RigFactory, sandbox: Any,
                                           sandbox_agent: Any, xvfb_display: str) -> None:
    """A 409 from update-thumbnail (the session is gone) ends the live loops with recover."""
    rig = await agent_rig(live_rig, sandbox_agent, display=xvfb_display)
    sandbox.set_faults("path=update-thumbnail,status=409")
    verdict = await run_until(rig, {"thumbnails": lambda: thumbnails.thumbnail_loop(rig.ctx)},
                              lambda: False, what="the conflict verdict")
    assert verdict == "recover"
    assert rig.named("watchdog")[0].fields["reason"] == "conflict"
