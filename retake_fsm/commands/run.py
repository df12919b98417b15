"""`retake-fsm run [--until STATE] [--exit-when-reached]`: go live (or resume) and stay live.

Holds the profile's lock, loads the persisted state, builds the action
context (platform client, process runner), loads the definition's plugins,
reconciles, then drives the machine to `--until` (default `live`) and, unless
`--exit-when-reached`, runs that state's activity until stopped. SIGINT or
SIGTERM asks for a stop (`stop` where allowed, exit 0; else exit 130); a
second one gives up at once. Exit codes: 0 reached/stopped, 1 failure,
2 usage, 3 verification pending, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, InputError, Interrupted

if TYPE_CHECKING:
    from ..app import App


def main(args: argparse.Namespace, app: App) -> int:
    until = args.until
    if until not in app.definition.states:
        raise InputError(f"--until {until!r}: not a state "
                         f"(one of: {', '.join(app.definition.states)})", field="--until")
    return asyncio.run(_run(app, until, stay=not args.exit_when_reached))


async def _run(app: App, until: str, *, stay: bool) -> int:
    from ..actions import load_builtin, load_plugins
    from ..api import RetakeClient
    from ..clock import SystemClock
    from ..context import ActionContext, Console, Session
    from ..credentials import load_credentials
    from ..engine import Engine
    from ..procs import ProcessRunner
    from ..store import Store

    definition = app.definition  # validated: built-in actions and plugins are loaded
    load_builtin()
    load_plugins(definition.plugins)
    clock = SystemClock()
    store = Store(app.paths, clock)
    with store.lock():
        state = store.load()
        state.profile = app.paths.profile

        def save() -> None:
            store.save(state)

        credentials = load_credentials(app.paths)
        api = RetakeClient.from_settings(app.settings, credentials)
        procs = ProcessRunner(app.paths, state, clock, store.emit, save)
        ctx = ActionContext(settings=app.settings, paths=app.paths, clock=clock, state=state,
                            session=Session(), api=api, procs=procs, emit=store.emit,
                            save=save, console=Console(), credentials=credentials)
        engine = Engine(definition, ctx)
        main_task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if ctx.stop_requested.is_set():
                if main_task is not None:
                    main_task.cancel()  # second signal: give up now
                return
            store.emit("signal", signal=signal.Signals(signum).name)
            ctx.stop_requested.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            final = await engine.run(until, stay=stay)
        except asyncio.CancelledError:
            save()
            raise Interrupted(f"gave up in state {engine.state!r} on a second signal",
                              hint="`retake-fsm stop` cleans up what is left") from None
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await _close(api, procs)
        save()
    ctx.console.print(f"state: {final}")
    return int(ExitCode.OK)


async def _close(api: Any, procs: Any) -> None:
    for part in (procs, api):
        close = getattr(part, "aclose", None)
        if close is not None:
            await close()
