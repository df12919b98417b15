"""`retake-fsm stop`: end the stream from another shell.

A live `run` holds the profile's lock: it gets SIGTERM (its own stop path:
`stream/stop`, our processes gone, final stats) and we wait for it to finish,
bounded, then report the state it left. With no run alive we do the stop
ourselves under the lock: the `stop` transition (`stream/stop` if a session is
open, leftover processes of ours adopted by PID + start time and stopped),
state `stopped`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING

from ..clock import SystemClock
from ..context import ActionContext, Console, Session
from ..errors import StateError
from ..procs import ProcessRunner
from ..store import Store

if TYPE_CHECKING:
    from ..app import App

WAIT = 60.0  # how long we wait for a signalled run to finish (its stop has a 30s budget)
POLL = 0.1


def main(args: argparse.Namespace, app: App) -> int:
    store = Store(app.paths)
    console = Console()
    pid = store.lock_holder()
    if pid is not None:
        _stop_run(store, pid, console)
    else:
        asyncio.run(_stop_here(app, store, console))
    return 0


def _stop_run(store: Store, pid: int, console: Console) -> None:
    """SIGTERM the run holding the lock; wait until it let go of it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it finished between our look and our signal
    console.print(f"asked run PID {pid} to stop; waiting for it (up to {WAIT:g}s)")
    deadline = time.monotonic() + WAIT
    while store.lock_holder() == pid:
        if time.monotonic() >= deadline:
            raise StateError(f"run PID {pid} is still stopping after {WAIT:g}s",
                             hint="see `retake-fsm history`; run `retake-fsm stop` again")
        time.sleep(POLL)
    state = store.load()
    console.print(f"run PID {pid} finished; state: {state.state}")
    if state.final_stats and state.state == "stopped":
        console.print(_stats_line(state.final_stats))


async def _stop_here(app: App, store: Store, console: Console) -> None:
    """No run alive: stop what a dead run left, under the lock."""
    from ..actions import load_builtin
    from ..api import RetakeClient
    from ..credentials import load_credentials
    from ..engine import Engine

    with store.lock():
        state = store.load()
        clock = SystemClock()

        def save() -> None:
            store.save(state)

        runner = ProcessRunner(app.paths, state, clock, store.emit, save)
        definition = app.definition
        if not definition.allows("stop", state.state):
            left = sorted(state.processes)
            await runner.stop_all()
            save()
            console.print(f"no stream to stop (state: {state.state})"
                          + (f"; stopped leftover processes: {', '.join(left)}" if left else ""))
            return
        load_builtin()
        credentials = load_credentials(app.paths)
        async with RetakeClient.from_settings(app.settings, credentials) as api:
            ctx = ActionContext(settings=app.settings, paths=app.paths, clock=clock,
                                state=state, session=Session(), api=api, procs=runner,
                                emit=store.emit, save=save, console=console,
                                credentials=credentials)
            engine = Engine(definition, ctx)
            store.emit("stop.requested", source=state.state, by="stop command")
            await engine.fire("stop")
        console.print(f"state: {state.state}")


def _stats_line(stats: dict[str, object]) -> str:
    keys = ("duration_seconds", "viewers", "comments_seen", "replies_sent", "thumbnails",
            "recoveries")
    return "final stats: " + ", ".join(f"{k}={stats[k]}" for k in keys if k in stats)
