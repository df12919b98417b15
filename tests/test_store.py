"""Store: atomic state.json with schema_version, redacted append-only journal, the run lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loguru import logger

from retake_fsm.clock import FakeClock
from retake_fsm.errors import LockedError, StateError
from retake_fsm.redact import register_secret
from retake_fsm.settings import Paths
from retake_fsm.state import SCHEMA_VERSION
from retake_fsm.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    paths = Paths("alpha", env={"HOME": str(tmp_path / "home"),
                                "XDG_STATE_HOME": str(tmp_path / "state")})
    return Store(paths, FakeClock())


def test_fresh_profile_loads_a_new_state(store: Store) -> None:
    """No state.json yet: a fresh RunState for this profile, nothing written."""
    state = store.load()
    assert (state.state, state.profile, state.schema_version) == \
        ("unregistered", "alpha", SCHEMA_VERSION)
    assert not store.paths.state_file.exists()


def test_save_is_atomic_private_and_round_trips(store: Store) -> None:
    """save() replaces the file (new inode), mode 0600, no temp file left, load() reads it back."""
    state = store.load()
    state.state = "rtmp"
    store.save(state)
    first_inode = store.paths.state_file.stat().st_ino
    state.state = "started"
    store.save(state)
    assert store.paths.state_file.stat().st_ino != first_inode
    assert stat.S_IMODE(store.paths.state_file.stat().st_mode) == 0o600
    assert [p.name for p in store.paths.state_dir.iterdir() if p.name.endswith(".tmp")] == []
    assert store.load().state == "started"
    assert json.loads(store.paths.state_file.read_text())["schema_version"] == SCHEMA_VERSION


def test_corrupt_state_is_a_clear_error_and_the_file_is_kept(store: Store) -> None:
    """A torn state.json: StateError naming the file and the fix; the file is left as it was."""
    store.paths.ensure()
    store.paths.state_file.write_text('{"state": "li')
    with pytest.raises(StateError, match="corrupt") as info:
        store.load()
    assert str(store.paths.state_file) in str(info.value) and "move it away" in str(info.value)
    assert store.paths.state_file.read_text() == '{"state": "li'


def test_state_from_a_newer_version_is_refused(store: Store) -> None:
    """schema_version above ours: refuse instead of misreading it."""
    store.paths.ensure()
    store.paths.state_file.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StateError, match="newer"):
        store.load()


def test_journal_lines_and_log_lines_are_redacted(store: Store) -> None:
    """emit(): one JSON line with ts/event/fields; known and rtk_/sk_-shaped secrets masked."""
    register_secret("hunter2-secret-value")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    try:
        store.emit("api.call", token="rtk_0123456789abcdef", url="rtmp://h/live/sk_9876543210zz",
                   note="pw hunter2-secret-value")
    finally:
        logger.remove(sink)
    raw = store.paths.journal_file.read_text()
    for secret in ("0123456789abcdef", "9876543210zz", "hunter2-secret-value"):
        assert secret not in raw and secret not in "".join(lines)
    (entry,) = store.journal()
    assert entry["event"] == "api.call" and entry["token"] == "rtk_…cdef"
    assert entry["ts"].startswith("2026-01-01") and entry["pid"] == os.getpid()


def test_journal_is_append_only_and_skips_a_torn_last_line(store: Store) -> None:
    """journal(n) gives the last n whole entries; a half-written line (SIGKILL) is skipped."""
    for i in range(5):
        store.emit("tick", i=i)
    with open(store.paths.journal_file, "a") as fh:
        fh.write('{"event": "tick", "i": ')
    assert [e["i"] for e in store.journal()] == [0, 1, 2, 3, 4]
    assert [e["i"] for e in store.journal(2)] == [3, 4]


def test_lock_names_the_pid_holding_it(store: Store) -> None:
    """While held, a second lock fails naming our PID; lock_holder() agrees; released after."""
    assert store.lock_holder() is None
    with store.lock():
        assert store.lock_holder() == os.getpid()
        with pytest.raises(LockedError, match=f"PID {os.getpid()}"), Store(store.paths).lock():
            pass
    assert store.lock_holder() is None
    with Store(store.paths).lock():  # free again
        pass


def test_lock_held_by_another_process(store: Store, tmp_path: Path) -> None:
    """A lock held by a child process is refused naming the child's PID; freed when it exits."""
    script = (
        "import sys; from retake_fsm.store import Store; from retake_fsm.settings import Paths\n"
        f"s = Store(Paths('alpha', env={{'HOME': {str(tmp_path / 'home')!r}, "
        f"'XDG_STATE_HOME': {str(tmp_path / 'state')!r}}}))\n"
        "with s.lock():\n    print('locked', flush=True)\n    sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError) as info, store.lock():
            pass
        assert info.value.pid == child.pid and f"PID {child.pid}" in str(info.value)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    deadline = time.monotonic() + 5
    while store.lock_holder() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.lock_holder() is None
