"""The engine: a `transitions` AsyncMachine built from a Definition, and the loop that drives it.

The library is extended its own way, never patched:
- `GuardedTransition` (an `AsyncTransition`, set as `transition_cls`) runs the
  transition's declared actions under their guards before the state changes;
  if they fail for good, the trigger raises and the state stays where it was.
- `FsmMachine` / `FsmGraphMachine` subclass `AsyncMachine` / `AsyncGraphMachine`;
  their `process_context` lets a cancellation from outside (a stop request)
  propagate instead of turning it into a `False` result.
- The machine's `after_state_change` callback persists the state and journals
  a `transition` record through the same hook the guards use.

`Engine.run()` reconciles, then fires forward triggers (the shortest route over
transitions that are not `on_demand`) until the target state; failures follow
their `on_error` edge (`recover` is budgeted: more than `recover.max` within
`recover.window` fires `stop` and ends with `TooManyRecoveries`). Staying at
the target runs the state's `activity`, which returns the trigger to fire
(`recover` or `stop`). A stop request (`ctx.stop_requested`) cancels whatever
runs, then fires `stop` where it is allowed, else ends with `Interrupted`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Mapping
from typing import Any, Literal, TypeVar

from transitions.extensions.asyncio import AsyncEventData, AsyncMachine, AsyncTransition
from transitions.extensions.factory import AsyncGraphMachine

from .actions import REGISTRY, ActionFn
from .context import ActionContext
from .definition import Definition, TransitionSpec
from .errors import (
    ConfigError,
    Interrupted,
    RetakeError,
    StateError,
    TooManyRecoveries,
    needs_human,
)
from .guards import Guard, Record, error_kind, error_text, journal_hook
from .settings import format_duration
from .state import ErrorRecord

T = TypeVar("T")

RECOVER = "recover"  # the trigger counted against the recovery budget
STOP = "stop"  # the trigger a stop request fires; a run ends once it has fired


class Model:
    """The machine's model: `state` is kept by transitions; `ctx` is what actions receive."""

    state: str

    def __init__(self, ctx: ActionContext | None = None) -> None:
        self.ctx = ctx


class GuardedTransition(AsyncTransition):
    """An AsyncTransition that first runs its declared actions under their guards."""

    def __init__(self, source: str, dest: str, conditions: Any = None, unless: Any = None,
                 before: Any = None, after: Any = None, prepare: Any = None, *,
                 engine: Engine | None = None, spec: TransitionSpec | None = None,
                 label: str | None = None) -> None:
        super().__init__(source, dest, conditions, unless, before, after, prepare)
        self.engine = engine
        self.spec = spec
        if label:
            self.label = label

    async def execute(self, event_data: AsyncEventData) -> bool:  # type: ignore[override]
        if self.engine is not None and self.spec is not None:
            await self.engine.run_actions(event_data.event.name, self.spec)
        return await super().execute(event_data)


class _ExternalCancel:
    """Mixin: a cancellation from outside the machine propagates (the library would
    report it as a failed trigger)."""

    async def process_context(self, func: Any, model: Any) -> bool:
        result: bool = await super().process_context(func, model)  # type: ignore[misc]
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return result


class FsmMachine(_ExternalCancel, AsyncMachine):
    transition_cls = GuardedTransition


class FsmGraphMachine(_ExternalCancel, AsyncGraphMachine):  # type: ignore[misc]
    transition_cls = GuardedTransition


def build_machine(definition: Definition, model: Model, current: str, *,
                  engine: Engine | None = None,
                  graph: Literal["mermaid", "graphviz"] | None = None) -> AsyncMachine:
    """The machine for `definition` with `model` in state `current` (graph-capable on demand)."""
    common: dict[str, Any] = dict(
        model=[], states=list(definition.states), initial=definition.initial,
        auto_transitions=False, send_event=True, name="retake-fsm",
        after_state_change=[engine.after_change] if engine else None,
    )
    machine: AsyncMachine
    if graph is None:
        machine = FsmMachine(**common)
    else:
        title = "retake-fsm" if graph == "graphviz" else "title: retake-fsm"
        machine = FsmGraphMachine(graph_engine=graph, title=title, **common)
    for name, spec in definition.transitions.items():
        label = f"{name} (on demand)" if spec.on_demand else None
        machine.add_transition(name, list(spec.source), spec.dest, engine=engine, spec=spec,
                               label=label)
    machine.add_model(model, initial=current)
    return machine


class _StopRequested(Exception):
    """Internal: ctx.stop_requested was set while something ran."""


class Engine:
    def __init__(self, definition: Definition, ctx: ActionContext, *,
                 registry: Mapping[str, ActionFn] | None = None,
                 rng: random.Random | None = None) -> None:
        self.definition = definition
        self.ctx = ctx
        self.registry = REGISTRY if registry is None else registry
        self.rng = rng or random.Random()
        self.hook = journal_hook(ctx.emit)
        current = ctx.state.state
        if current not in definition.states:
            raise StateError(
                f"state.json says {current!r}, which the definition does not declare",
                hint="fix states.yaml, or move state.json away to start over",
            )
        self.model = Model(ctx)
        self.machine = build_machine(definition, self.model, current, engine=self)
        self.stopped = False  # `stop` fired during this run

    @property
    def state(self) -> str:
        return self.model.state

    # --- one transition ----------------------------------------------------------------

    async def run_actions(self, trigger: str, spec: TransitionSpec) -> None:
        """Called by GuardedTransition: the transition's actions under its guards."""
        guard = Guard(trigger, spec.retry, spec.timeout, self.ctx.clock, self.hook, self.rng,
                      on_wait=self._set_next_retry, run_all=spec.run_all)
        self.ctx.transition = trigger
        try:
            await guard.run([(name, self._step(name)) for name in spec.actions])
        finally:
            self.ctx.transition = None

    def _step(self, name: str) -> Any:
        async def step() -> str | None:
            return await self._call(name)

        return step

    async def _call(self, name: str) -> str | None:
        fn = self.registry.get(name)
        if fn is None:
            raise ConfigError(f"action {name!r} is not registered",
                              hint="run `retake-fsm validate` on the definition")
        return await fn(self.ctx)

    def _set_next_retry(self, when: Any) -> None:
        self.ctx.state.next_retry = when
        self.ctx.save()

    def after_change(self, event_data: AsyncEventData) -> None:
        """after_state_change: persist the new state, then journal the transition."""
        st = self.ctx.state
        st.state = self.model.state
        st.since = self.ctx.clock.now()
        st.last_transition = event_data.event.name
        st.next_retry = None
        self.ctx.save()
        self.hook(Record("transition", event_data.event.name,
                         source=event_data.transition.source, dest=event_data.transition.dest))

    async def fire(self, trigger: str) -> None:
        """Fire `trigger` now; a failure for good follows its `on_error` edge or raises."""
        source = self.state
        if not self.definition.allows(trigger, source):
            raise StateError(f"{trigger!r} is not allowed from state {source!r}")
        if trigger == RECOVER:
            await self._spend_recovery()
        spec = self.definition.transitions[trigger]
        try:
            await self.machine.events[trigger].trigger(self.model)
        except Exception as exc:
            await self._failed(trigger, spec.on_error, exc)
            return
        if trigger == STOP:
            self.stopped = True

    def _record_error(self, trigger: str | None, exc: BaseException) -> None:
        self.ctx.state.last_error = ErrorRecord(kind=error_kind(exc), message=error_text(exc),
                                                at=self.ctx.clock.now(), transition=trigger)
        self.ctx.state.next_retry = None
        self.ctx.save()

    async def _failed(self, trigger: str, on_error: str | None, exc: Exception) -> None:
        self._record_error(trigger, exc)
        if not isinstance(exc, RetakeError) or self.ctx.stop_requested.is_set():
            raise exc
        if on_error is None or not self.definition.allows(on_error, self.state):
            raise exc
        if needs_human(exc):  # an on_error edge retries; this needs a human: stop instead
            await self._stop_for(trigger, exc)
            raise exc
        self.hook(Record("on_error", trigger, kind=exc.kind, message=error_text(exc),
                         source=self.state, dest=on_error))
        await self.fire(on_error)
        if on_error == STOP:
            raise exc  # stopped cleanly, but the run failed

    async def _stop_for(self, trigger: str | None, exc: RetakeError) -> None:
        """An error only a human can fix (bad input, missing package, rejected token)
        where the definition's `on_error` edge would go round again: stop the stream
        cleanly instead (where allowed), so the one-line fix is what the user sees."""
        self.hook(Record("failure", trigger, kind=exc.kind, message=error_text(exc),
                         reason="needs a human", source=self.state))
        if trigger != STOP and self.definition.allows(STOP, self.state):
            try:
                await self.fire(STOP)
            except RetakeError:
                pass  # journaled; the original error is the one to report

    async def _spend_recovery(self) -> None:
        st, cfg = self.ctx.state, self.ctx.settings.recover
        now = self.ctx.clock.now()
        st.recoveries = [t for t in st.recoveries if (now - t).total_seconds() < cfg.window]
        if len(st.recoveries) >= cfg.max:
            exc = TooManyRecoveries(
                f"{len(st.recoveries) + 1} recoveries needed within "
                f"{format_duration(cfg.window)} (recover.max is {cfg.max}): stopping",
                hint="check the encoder and the platform, then `retake-fsm run` again",
            )
            self._record_error(RECOVER, exc)
            self.hook(Record("failure", RECOVER, kind=exc.kind, message=error_text(exc),
                             reason="recovery budget spent", source=self.state))
            if self.definition.allows(STOP, self.state):
                try:
                    await self.fire(STOP)
                except RetakeError:
                    pass  # journaled; the budget error is the one to report
            raise exc
        st.recoveries.append(now)
        self.ctx.save()

    # --- the run -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Run the definition's `reconcile` action; follow its state move and trigger."""
        name = self.definition.reconcile
        if not name:
            return
        before = self.state
        try:
            trigger = await self._call(name)
        except Exception as exc:
            self._record_error("reconcile", exc)
            raise
        after = self.ctx.state.state
        if after != before:
            if after not in self.definition.states:
                raise StateError(f"reconcile moved to unknown state {after!r}")
            self.machine.set_state(after, self.model)
            self.ctx.state.since = self.ctx.clock.now()
            self.ctx.save()
        self.hook(Record("reconcile", action=name, source=before, dest=after,
                         message=trigger and f"fires {trigger}"))
        if trigger:
            await self.fire(trigger)

    async def drive(self, until: str) -> None:
        """Fire forward triggers until the machine is in `until`."""
        while self.state != until:
            if self.ctx.stop_requested.is_set():
                raise _StopRequested
            if self.stopped:
                return
            route = self.definition.route(self.state, until)
            if route is None:
                raise StateError(f"no forward route from {self.state!r} to {until!r}",
                                 hint="pick another --until, or check the transitions")
            before = self.state
            await self.fire(route[0])
            if self.state == before and not self.ctx.stop_requested.is_set():
                raise StateError(f"{route[0]!r} left the machine in {before!r}")

    async def activity(self) -> str | None:
        """Run the current state's activity; the trigger it (or its on_error) asks for."""
        state = self.state
        spec = self.definition.states[state]
        if not spec.activity:
            await self.ctx.stop_requested.wait()
            return None
        self.hook(Record("activity", action=spec.activity, source=state))
        try:
            trigger = await self._call(spec.activity)
        except RetakeError as exc:
            self._record_error(None, exc)
            self.hook(Record("activity.error", action=spec.activity, kind=exc.kind,
                             message=error_text(exc), source=state, dest=spec.on_error))
            if needs_human(exc):
                await self._stop_for(None, exc)
                raise
            if spec.on_error and self.definition.allows(spec.on_error, state):
                return spec.on_error
            raise
        self.hook(Record("activity.end", action=spec.activity, source=state, dest=trigger))
        if trigger is not None and not self.definition.allows(trigger, self.state):
            raise StateError(f"activity {spec.activity!r} asked for {trigger!r}, "
                             f"which is not allowed from {self.state!r}")
        return trigger

    async def run(self, until: str, *, stay: bool = False) -> str:
        """Reconcile, drive to `until`; with `stay`, run its activity until stopped.

        Returns the final state. Raises the error a failure ended with,
        `Interrupted` for a stop request where `stop` is not allowed.
        """
        if until not in self.definition.states:
            raise StateError(f"--until {until!r}: not a state of the definition")
        self.hook(Record("run", source=self.state, dest=until))
        try:
            await self._interruptible(self.reconcile())
            while True:
                await self._interruptible(self.drive(until))
                if self.stopped or not stay:
                    return self.state
                trigger = await self._interruptible(self.activity())
                if trigger is None:
                    await self._interruptible(self.ctx.stop_requested.wait())
                elif trigger == STOP:
                    await self.fire(STOP)
                    return self.state
                else:
                    await self._interruptible(self.fire(trigger))
        except _StopRequested:
            return await self._stop_on_request()

    async def _stop_on_request(self) -> str:
        state = self.state
        self.hook(Record("stop.requested", source=state))
        if self.definition.allows(STOP, state):
            await self.fire(STOP)
            return self.state
        self.ctx.save()
        raise Interrupted(f"interrupted in state {state!r}",
                          hint="`retake-fsm run` resumes from here")

    async def _interruptible(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro`, cancelling it if a stop is requested meanwhile (-> _StopRequested)."""
        stop = self.ctx.stop_requested
        if stop.is_set():
            coro.close()
            raise _StopRequested
        task = asyncio.ensure_future(coro)
        waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # we are cancelled ourselves: take the work down with us
            waiter.cancel()
            task.cancel()
            await asyncio.wait({task})
            raise
        waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: it came from the cancellation
        raise _StopRequested
