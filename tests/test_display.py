"""Xvfb for real: a display held by someone else is refused; auto, readiness, reuse, scene."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import pytest

from retake_fsm.display import (
    accepts,
    ensure_display,
    lock_file,
    parse_display,
    socket_path,
    start_scene,
)
from retake_fsm.errors import DisplayInUseError, InputError
from tests.fixtures.procs import ProcKit


def free_display(start: int = 200) -> int:
    n = start
    while lock_file(n).exists() or socket_path(n).exists():
        n += 1
    return n


@pytest.fixture
def foreign_xvfb() -> Iterator[int]:
    """An Xvfb that is not ours (started by the test itself), on a free display."""
    n = free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 5
    while not accepts(n):
        assert proc.poll() is None and time.monotonic() < deadline, "test Xvfb did not start"
        time.sleep(0.02)
    try:
        yield n
    finally:
        proc.terminate()
        proc.wait(5)


async def test_a_display_held_by_someone_else_is_refused(kit: ProcKit, foreign_xvfb: int) -> None:
    """Xvfb on a display another server holds: DisplayInUseError naming the lock, PID and fix."""
    kit.settings.display.display = f":{foreign_xvfb}"
    with pytest.raises(DisplayInUseError) as err:
        await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    msg = str(err.value)
    assert f"display :{foreign_xvfb} is in use" in msg and f".X{foreign_xvfb}-lock" in msg
    assert "--display auto" in msg and "\n" not in msg
    assert "process.start" not in kit.names() and accepts(foreign_xvfb)  # theirs, untouched


async def test_auto_picks_a_free_display_and_is_ready_at_once(kit: ProcKit,
                                                              foreign_xvfb: int) -> None:
    """`auto` gets a free display from Xvfb itself; a client connects as soon as it returns."""
    kit.settings.display.display = "auto"
    display = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    n = parse_display(display)
    assert n is not None and n != foreign_xvfb
    probe = subprocess.run(["xdpyinfo", "-display", display], capture_output=True, text=True,
                           timeout=10, check=False)
    assert probe.returncode == 0 and "1280x720 pixels" in probe.stdout
    assert kit.state.display == display
    assert kit.state.processes["xvfb"].pid == kit.runner.get("xvfb").pid  # type: ignore[union-attr]


async def test_a_fixed_display_waits_for_the_socket_not_a_sleep(kit: ProcKit) -> None:
    """A fixed `:N` is ready when its socket accepts: well under a second, checked by a client."""
    n = free_display(300)
    kit.settings.display.display = f":{n}"
    t0 = time.monotonic()
    display = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    took = time.monotonic() - t0
    print(f"Xvfb :{n} ready in {took * 1000:.0f} ms")
    assert display == f":{n}" and accepts(n) and took < kit.settings.display.ready_timeout
    await kit.runner.stop_all()
    assert not accepts(n) and not lock_file(n).exists()


async def test_our_live_xvfb_is_reused(kit: ProcKit) -> None:
    """A second ensure_display (a recovery) reuses our running Xvfb instead of starting one."""
    first = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    pid = kit.state.processes["xvfb"].pid
    again = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    assert again == first and kit.state.processes["xvfb"].pid == pid
    assert kit.names().count("process.start") == 1 and "display.reuse" in kit.names()


async def test_xvfb_that_dies_is_replaced(kit: ProcKit) -> None:
    """If our Xvfb is gone, the next ensure_display starts a new one."""
    await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    await kit.runner.stop("xvfb")
    display = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    n = parse_display(display)
    assert n is not None and accepts(n) and kit.names().count("process.start") == 2


async def test_scene_window_shows_on_the_display(kit: ProcKit) -> None:
    """The default scene is an xterm window on our display, tailing the scene text file."""
    display = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    proc = await start_scene(kit.runner, kit.settings.scene, kit.paths, display,
                             kit.settings.display.size, kit.emit)
    assert proc is not None
    deadline = time.monotonic() + 5
    tree = ""
    while '"retake-fsm"' not in tree:
        assert proc.alive and time.monotonic() < deadline, "no scene window appeared"
        await asyncio.sleep(0.05)
        tree = subprocess.run(["xwininfo", "-display", display, "-root", "-tree"],
                              capture_output=True, text=True, timeout=5, check=False).stdout
    assert (kit.paths.state_dir / "scene.txt").exists()
    again = await start_scene(kit.runner, kit.settings.scene, kit.paths, display,
                              kit.settings.display.size, kit.emit)
    assert again is proc  # reused while alive on the same display


async def test_a_missing_scene_tool_means_no_scene(kit: ProcKit) -> None:
    """An absent scene command is a warning (scene.skipped), not an error."""
    display = await ensure_display(kit.runner, kit.settings.display, kit.state, kit.emit)
    kit.settings.scene.command = ["no-such-scene-tool", "{file}"]
    assert await start_scene(kit.runner, kit.settings.scene, kit.paths, display,
                             kit.settings.display.size, kit.emit) is None
    assert "scene.skipped" in kit.names() and "scene" not in kit.state.processes


async def test_a_disabled_scene_starts_nothing(kit: ProcKit) -> None:
    """scene.enabled false: no window, no process, no error."""
    kit.settings.scene.enabled = False
    assert await start_scene(kit.runner, kit.settings.scene, kit.paths, ":0",
                             kit.settings.display.size, kit.emit) is None
    assert kit.events == [] and kit.state.processes == {}


def test_bad_display_values_are_input_errors() -> None:
    """':99' and 'auto' parse; anything else is one clear InputError."""
    assert parse_display(":99") == 99 and parse_display("auto") is None
    with pytest.raises(InputError, match="expected ':N'"):
        parse_display("99")
