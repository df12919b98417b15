"""Guards: retry only what retry_on names, bounded attempts AND total time, one hook."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import datetime
from pathlib import Path

import pytest
from loguru import logger

from retake_fsm.clock import FakeClock
from retake_fsm.definition import RetryPolicy
from retake_fsm.errors import GuardTimeout, InputError, NetworkError, ServerError
from retake_fsm.guards import BackoffWait, Guard, Record, journal_hook
from retake_fsm.settings import Paths
from retake_fsm.store import Store


def policy(**kw: object) -> RetryPolicy:
    base: dict[str, object] = {"attempts": 5, "initial": "1s", "multiplier": 2,
                               "max_delay": "10s", "jitter": 0, "retry_on": ["server"]}
    return RetryPolicy.model_validate({**base, **kw})


class Rec:
    """Collects hook records."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)

    def events(self) -> list[str]:
        return [r.event for r in self.records]


def guard(clock: FakeClock, hook: Rec, *, timeout: float | None = 60.0, seed: int = 1,
          **kw: object) -> Guard:
    return Guard("start", policy(**kw), timeout, clock, hook, random.Random(seed))


def flaky(failures: int, exc: type[Exception] = ServerError) -> tuple[list[int], object]:
    calls: list[int] = []

    async def step() -> str | None:
        calls.append(1)
        if len(calls) <= failures:
            raise exc("platform said 503")
        return None

    return calls, step


def test_backoff_is_exponential_capped_and_jittered_from_the_injected_rng() -> None:
    """Waits are min(max_delay, initial*multiplier**(n-1) + U(0, jitter)), reproducible by seed."""
    p = policy(initial="1s", multiplier=3, max_delay="10s", jitter="500ms")
    waits = [BackoffWait(p, random.Random(42)).delay(n) for n in (1, 2, 3, 4)]
    again = [BackoffWait(p, random.Random(42)).delay(n) for n in (1, 2, 3, 4)]
    assert waits == again
    for n, wait in enumerate(waits[:3], start=1):
        base = 3 ** (n - 1)
        assert base <= wait <= base + 0.5
    assert waits[3] == 10.0  # 27 s capped at max_delay


async def test_retryable_error_is_retried_with_backoff_then_succeeds() -> None:
    """Two 5xx then success: three attempts, FakeClock waits 1 s and 2 s, hook sees each step."""
    clock, hook = FakeClock(), Rec()
    calls, step = flaky(2)
    await guard(clock, hook).run([("start_stream", step)])  # type: ignore[list-item]
    assert len(calls) == 3
    assert clock.sleeps == [1.0, 2.0]
    assert hook.events() == ["attempt", "retry", "attempt", "retry", "attempt", "attempt.ok"]
    retries = [r for r in hook.records if r.event == "retry"]
    assert [r.wait for r in retries] == [1.0, 2.0]
    assert {r.kind for r in retries} == {"server"}
    assert retries[0].action == "start_stream" and retries[0].transition == "start"


async def test_non_retryable_error_fails_at_once() -> None:
    """An InputError is never retried: one attempt, no wait, failure says why."""
    clock, hook = FakeClock(), Rec()
    calls, step = flaky(5, InputError)
    with pytest.raises(InputError):
        await guard(clock, hook).run([("register", step)])  # type: ignore[list-item]
    assert len(calls) == 1 and clock.sleeps == []
    assert hook.records[-1].event == "failure"
    assert hook.records[-1].reason == "not retryable"


async def test_retryable_kind_not_named_in_retry_on_is_not_retried() -> None:
    """A NetworkError is retryable in general, but not when retry_on names only `server`."""
    clock, hook = FakeClock(), Rec()
    calls, step = flaky(5, NetworkError)
    with pytest.raises(NetworkError):
        await guard(clock, hook, retry_on=["server"]).run([("x", step)])  # type: ignore[list-item]
    assert len(calls) == 1 and clock.sleeps == []


async def test_attempts_are_bounded() -> None:
    """attempts: 3 means three tries, two waits, then the last error is raised."""
    clock, hook = FakeClock(), Rec()
    calls, step = flaky(99)
    with pytest.raises(ServerError):
        await guard(clock, hook, attempts=3).run([("x", step)])  # type: ignore[list-item]
    assert len(calls) == 3 and clock.sleeps == [1.0, 2.0]
    assert hook.records[-1].reason == "gave up after 3 attempts"


async def test_total_time_stops_before_a_wait_that_would_pass_the_deadline() -> None:
    """timeout 6s: waits 1 s and 2 s fit, the next 4 s would end at 7 s, so it stops at 3 s."""
    clock, hook = FakeClock(), Rec()
    calls, step = flaky(99)
    with pytest.raises(ServerError):
        await guard(clock, hook, timeout=6.0, attempts=10).run([("x", step)])  # type: ignore[list-item]
    assert clock.sleeps == [1.0, 2.0] and len(calls) == 3
    assert clock.monotonic() == 3.0
    assert hook.records[-1].reason == "next wait would pass the total timeout"


async def test_a_hanging_action_is_cut_by_the_total_timeout_and_not_retried() -> None:
    """A hang hits asyncio.timeout at the deadline (real 0.2 s): GuardTimeout, one attempt only."""
    clock, hook = FakeClock(), Rec()
    calls: list[int] = []

    async def hang() -> str | None:
        calls.append(1)
        await asyncio.Event().wait()
        return None

    started = time.monotonic()
    with pytest.raises(GuardTimeout, match=r"0\.2s total time"):
        await guard(clock, hook, timeout=0.2, retry_on=["timeout"]).run([("confirm_live", hang)])
    assert time.monotonic() - started < 2.0
    assert calls == [1]
    assert hook.records[-1].reason == "out of total time"


async def test_total_time_covers_every_action_of_the_transition() -> None:
    """The first action uses up the 5 s budget: the second is not even started."""
    clock, hook = FakeClock(), Rec()
    second: list[int] = []

    async def slow_first() -> str | None:
        await clock.sleep(6.0)
        return None

    async def never() -> str | None:
        second.append(1)
        return None

    with pytest.raises(GuardTimeout, match="'second'"):
        await guard(clock, hook, timeout=5.0).run([("first", slow_first), ("second", never)])
    assert second == []


async def test_next_retry_is_announced_before_each_wait_and_cleared_after() -> None:
    """on_wait gets the wall time of the next attempt before sleeping, then None."""
    clock, hook = FakeClock(), Rec()
    seen: list[tuple[datetime | None, datetime]] = []
    _, step = flaky(2)
    g = guard(clock, hook)
    g.on_wait = lambda when: seen.append((when, clock.now()))
    await g.run([("x", step)])  # type: ignore[list-item]
    assert [w is None for w, _ in seen] == [False, True, False, True]
    first_when, announced_at = seen[0]
    assert first_when is not None and (first_when - announced_at).total_seconds() == 1.0
    assert seen[1][1] == first_when  # cleared once that moment came


async def test_records_are_frozen() -> None:
    """A hook cannot alter what it was told."""
    record = Record("retry", "start", "start_stream", 1, wait=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.wait = 0.0  # type: ignore[misc]


async def test_cancellation_propagates_and_is_not_retried() -> None:
    """Cancelling the task (a stop request) ends the guard at once, recorded as cancelled."""
    clock, hook = FakeClock(), Rec()
    started = asyncio.Event()
    calls: list[int] = []

    async def wait_forever() -> str | None:
        calls.append(1)
        started.set()
        await asyncio.Event().wait()
        return None

    task = asyncio.create_task(
        guard(clock, hook, retry_on=["server", "timeout"]).run([("x", wait_forever)]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == [1]
    assert hook.records[-1].event == "failure" and hook.records[-1].kind == "cancelled"


async def test_run_all_runs_later_actions_after_a_failure_then_raises_the_first() -> None:
    """With run_all (stop), cleanup after a failed step still happens."""
    clock, hook = FakeClock(), Rec()
    ran: list[str] = []

    async def fails() -> str | None:
        ran.append("stop_stream")
        raise InputError("no session")

    async def cleanup() -> str | None:
        ran.append("cleanup")
        return None

    g = Guard("stop", policy(attempts=1), 30.0, clock, hook, random.Random(0), run_all=True)
    with pytest.raises(InputError):
        await g.run([("stop_stream", fails), ("cleanup", cleanup)])
    assert ran == ["stop_stream", "cleanup"]


def test_journal_hook_writes_one_journal_line_and_one_log_line_redacted(tmp_path: Path) -> None:
    """The one hook: a record lands in journal.jsonl and the log, secrets masked in both."""
    paths = Paths("p", env={"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "s")})
    store = Store(paths, FakeClock())
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    try:
        journal_hook(store.emit)(Record("retry", "register", "register", 1, wait=1.5,
                                        kind="auth", message="bad token rtk_abcdef0123456789"))
    finally:
        logger.remove(sink)
    (entry,) = store.journal()
    assert entry["event"] == "retry" and entry["wait"] == 1.5 and entry["attempt"] == 1
    assert "rtk_abcdef0123456789" not in paths.journal_file.read_text()
    assert entry["message"] == "bad token rtk_…6789"
    assert len(lines) == 1 and "rtk_…6789" in lines[0] and "0123456789" not in lines[0]
