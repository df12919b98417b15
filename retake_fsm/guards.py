"""Guards: the retry policy and total timeout around a transition's actions.

A transition's actions run in order under one deadline (`timeout`, total across
every attempt of every action). Each action is retried by tenacity only when
the error's `kind` is in `retry_on`, at most `attempts` times, waiting an
exponential backoff with jitter (from an injectable `random.Random`) on the
injected clock; tenacity also stops when the next wait would pass the deadline.
Each attempt runs under `asyncio.timeout(remaining)`; running out of total time
is a `GuardTimeout`, never retried.

Every attempt, success, retry (with its wait) and failure is reported as a
frozen `Record` through one hook; `journal_hook(emit)` writes it to the
journal and the log. The engine reports its transitions through the same hook.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .clock import Clock
from .errors import GuardTimeout, RetakeError
from .redact import redact

if TYPE_CHECKING:
    from .context import Emit
    from .definition import RetryPolicy

Step = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Record:
    """One thing that happened while running a transition: what the journal keeps.

    `event`: attempt | attempt.ok | retry | failure | transition | on_error |
    activity | activity.end | activity.error | reconcile.
    """

    event: str
    transition: str | None = None
    action: str | None = None
    attempt: int | None = None
    wait: float | None = None  # seconds before the next attempt (retry)
    kind: str | None = None  # the cause's error kind
    message: str | None = None  # the cause's message, redacted
    reason: str | None = None  # why a failure is final
    source: str | None = None
    dest: str | None = None
    elapsed: float | None = None  # seconds since the transition began (guard clock)


Hook = Callable[[Record], None]


def journal_hook(emit: Emit) -> Hook:
    """The one hook: every record becomes a journal line and a log line."""

    def hook(record: Record) -> None:
        fields = {k: v for k, v in asdict(record).items() if k != "event" and v is not None}
        emit(record.event, **fields)

    return hook


def error_kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, RetakeError) else "internal"


def error_text(exc: BaseException) -> str:
    return redact(str(exc) or type(exc).__name__)


class BackoffWait(wait_base):
    """min(max_delay, initial * multiplier**(n-1)) + uniform(0, jitter), capped at max_delay."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def delay(self, attempt: int) -> float:
        p = self.policy
        base = min(p.max_delay, p.initial * p.multiplier ** (attempt - 1))
        jitter = self.rng.uniform(0, p.jitter) if p.jitter > 0 else 0.0
        return min(p.max_delay, base + jitter)

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.delay(retry_state.attempt_number)


class StopAtDeadline(stop_base):
    """Stop when the next wait would end past the deadline (on the injected clock)."""

    def __init__(self, clock: Clock, deadline: float | None) -> None:
        self.clock = clock
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return self.clock.monotonic() + retry_state.upcoming_sleep >= self.deadline


class StopAfterAttempts(stop_base):
    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.attempt_number >= self.attempts


@dataclass
class Guard:
    """Runs one transition's actions under its policy and total timeout."""

    transition: str
    policy: RetryPolicy
    timeout: float | None
    clock: Clock
    hook: Hook
    rng: random.Random
    # called with the time of the next attempt before a retry wait, and None after it
    on_wait: Callable[[datetime | None], None] | None = None
    run_all: bool = False

    async def run(self, steps: Sequence[tuple[str, Step]]) -> list[str | None]:
        """Run every (action name, coroutine factory) in order; the results, in order.

        Raises the first error that is not retried (or is retried no more); with
        `run_all`, the later actions still run first.
        """
        started = self.clock.monotonic()
        deadline = None if self.timeout is None else started + self.timeout
        results: list[str | None] = []
        first_error: BaseException | None = None
        for name, step in steps:
            try:
                results.append(await self._run_one(name, step, started, deadline))
            except Exception as exc:
                if not self.run_all:
                    raise
                first_error = first_error or exc
                results.append(None)
        if first_error is not None:
            raise first_error
        return results

    async def _run_one(self, action: str, step: Step, started: float,
                       deadline: float | None) -> str | None:
        spent: list[BaseException] = []  # our own "out of total time": never retried

        def elapsed() -> float:
            return round(self.clock.monotonic() - started, 3)

        def should_retry(exc: BaseException) -> bool:
            return (isinstance(exc, RetakeError) and exc.kind in self.policy.retry_on
                    and exc not in spent)

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            wait = rs.upcoming_sleep
            self.hook(Record("retry", self.transition, action, rs.attempt_number,
                             wait=round(wait, 3), kind=error_kind(exc) if exc else None,
                             message=error_text(exc) if exc else None, elapsed=elapsed()))
            if self.on_wait:
                self.on_wait(self.clock.now() + timedelta(seconds=wait))

        async def sleep(seconds: float) -> None:
            try:
                await self.clock.sleep(seconds)
            finally:
                if self.on_wait:
                    self.on_wait(None)

        attempt = 0

        async def once() -> str | None:
            nonlocal attempt
            attempt += 1
            self.hook(Record("attempt", self.transition, action, attempt, elapsed=elapsed()))
            remaining = None if deadline is None else deadline - self.clock.monotonic()
            if remaining is not None and remaining <= 0:
                exc = self._out_of_time(action)
                spent.append(exc)
                raise exc
            try:
                async with asyncio.timeout(remaining) as scope:
                    result = await step()
            except TimeoutError as err:
                if not scope.expired():
                    raise
                exc = self._out_of_time(action)
                spent.append(exc)
                raise exc from err
            self.hook(Record("attempt.ok", self.transition, action, attempt, elapsed=elapsed()))
            return result

        retrying = AsyncRetrying(
            sleep=sleep,
            stop=StopAfterAttempts(self.policy.attempts) | StopAtDeadline(self.clock, deadline),
            wait=BackoffWait(self.policy, self.rng),
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            result: str | None = await retrying(once)
        except asyncio.CancelledError:
            self.hook(Record("failure", self.transition, action, attempt, kind="cancelled",
                             message="cancelled (stop requested)", reason="cancelled",
                             elapsed=elapsed()))
            raise
        except Exception as exc:
            self.hook(Record("failure", self.transition, action, attempt, kind=error_kind(exc),
                             message=error_text(exc), reason=self._reason(exc, attempt, spent),
                             elapsed=elapsed()))
            raise
        return result

    def _out_of_time(self, action: str) -> GuardTimeout:
        total = f"{self.timeout:g}s" if self.timeout is not None else "its"
        return GuardTimeout(
            f"transition {self.transition!r} ran out of its {total} total time in {action!r}",
            hint="raise its `timeout` in states.yaml if the platform is just slow",
        )

    def _reason(self, exc: BaseException, attempt: int, spent: list[BaseException]) -> str:
        if exc in spent:
            return "out of total time"
        if not (isinstance(exc, RetakeError) and exc.kind in self.policy.retry_on):
            return "not retryable"
        if attempt >= self.policy.attempts:
            return f"gave up after {attempt} attempts"
        return "next wait would pass the total timeout"
