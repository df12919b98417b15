"""Time, injected: everything that waits or reads the time takes a Clock.

`SystemClock` is the real one. `FakeClock` (public, for tests and for anyone
embedding the engine) never sleeps: `sleep()` advances its time at once and
lets other tasks run, so retry backoffs, poll intervals and the 3-minute
thumbnail cadence are exercised in microseconds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (cancellable)."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock whose sleeps return at once after advancing its time.

    `sleeps` records every requested wait, so tests can assert backoffs.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        self._elapsed += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def utcnow() -> datetime:
    return datetime.now(UTC)
