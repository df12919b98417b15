"""One profile's persisted facts: state.json, journal.jsonl and the run lock.

- `state.json`: the `RunState` model (with `schema_version`), written to a temp
  file in the same directory, fsynced, then `os.replace`d: a crash leaves the
  old file or the new one, never half of one.
- `journal.jsonl`: append-only, one JSON object per line, secrets redacted;
  each line is a single `write()` on an O_APPEND descriptor, so a killed run
  leaves whole lines (a torn last line is skipped when reading).
- `run.lock`: `fcntl.flock` held for the life of a `run`, the holder's PID
  written inside, so a second `run` names who holds the profile.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loguru import logger
from pydantic import ValidationError

from .clock import Clock, SystemClock
from .errors import LockedError, StateError
from .fsutil import write_atomic
from .redact import redact, redact_obj
from .settings import Paths
from .state import SCHEMA_VERSION, RunState

# Journal events logged above INFO; chatty ones below it.
_LEVELS = {
    "failure": "WARNING",
    "error": "WARNING",
    "activity.error": "WARNING",
    "attempt": "DEBUG",
    "attempt.ok": "DEBUG",
}


def _fields_text(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)


def read_journal(path: Path, start: int = 0) -> list[dict[str, Any]]:
    """Every entry of a journal file from line `start` on; torn or foreign lines skipped.
    Readers outside the lock holder (status, tests, benchmarks) use this too."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[start:]
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class Store:
    def __init__(self, paths: Paths, clock: Clock | None = None) -> None:
        self.paths = paths
        self.clock: Clock = clock or SystemClock()
        self._lock_fd: int | None = None

    # --- state.json ---------------------------------------------------------------------

    def load(self) -> RunState:
        """The persisted state; a fresh one when there is none; StateError if unusable."""
        path = self.paths.state_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return RunState(profile=self.paths.profile, since=self.clock.now())
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc}") from exc
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(f"{path} is corrupt ({exc.msg} at line {exc.lineno})",
                             hint="move it away to start over; it was left as it is") from exc
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise StateError(f"{path} has schema_version {version}, newer than this "
                             f"retake-fsm understands ({SCHEMA_VERSION})",
                             hint="upgrade retake-fsm or use another --profile")
        try:
            return RunState.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StateError(f"{path} is not a valid state file ({where}: {first['msg']})",
                             hint="move it away to start over; it was left as it is") from exc

    def save(self, state: RunState) -> None:
        """Atomically replace state.json (temp file, fsync, os.replace, fsync the directory)."""
        self.paths.ensure()
        write_atomic(self.paths.state_file, redact(state.model_dump_json(indent=2)) + "\n")

    # --- journal ------------------------------------------------------------------------

    def emit(self, event: str, /, **fields: Any) -> None:
        """One journal line and one log line for `event`, secrets redacted."""
        clean = {k: v for k, v in fields.items() if v is not None}
        record = redact_obj({"ts": self.clock.now().isoformat(), "event": event,
                             "pid": os.getpid(), **clean})
        line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        self.paths.ensure()
        fd = os.open(self.paths.journal_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        text = redact(_fields_text(clean))
        logger.log(_LEVELS.get(event, "INFO"), "{} {}", event, text)

    def journal(self, n: int = 0) -> list[dict[str, Any]]:
        """The last `n` journal entries (all with 0); torn or foreign lines are skipped."""
        entries = read_journal(self.paths.journal_file)
        return entries[-n:] if n > 0 else entries

    # --- lock ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the profile for one run; LockedError naming the holder's PID otherwise."""
        self.paths.ensure()
        fd = os.open(self.paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockedError(self.paths.profile, pid) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._lock_fd = fd
            yield
        finally:
            self._lock_fd = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    def lock_holder(self) -> int | None:
        """PID of the live `run` holding this profile, else None."""
        try:
            fd = os.open(self.paths.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
