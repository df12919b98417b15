"""`retake-fsm register`: create the agent's retake.tv account and save its credentials.

Fields come from the flags, else from `agent.*` in states.yaml; on a TTY a
missing one is asked for, otherwise it is an error naming the flag. Everything
is validated before the request; existing credentials are kept unless --force.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import TYPE_CHECKING

from ..actions.register import FLAGS, register_agent, registration_request
from ..actions.verify import INBOX_MESSAGE, inbox_path
from ..api import RetakeClient
from ..context import Console
from ..errors import InputError
from ..settings import Paths
from ..store import Store

if TYPE_CHECKING:
    from ..app import App


async def _fields(args: argparse.Namespace, app: App, console: Console) -> dict[str, str | None]:
    agent = app.settings.agent.model_dump()
    fields: dict[str, str | None] = {
        key: getattr(args, key, None) if getattr(args, key, None) is not None else agent[key]
        for key in FLAGS
    }
    for key, flag in FLAGS.items():
        if fields[key] is None and console.interactive:
            fields[key] = await console.prompt(f"{flag.lstrip('-').replace('-', ' ')}: ")
    return fields


def _forget_verification_message(paths: Paths) -> None:
    """A new account gets a new code: drop the message kept for the old one."""
    with contextlib.suppress(OSError):
        inbox_path(paths, INBOX_MESSAGE).unlink()
    store = Store(paths)
    if store.lock_holder() is None and paths.state_file.exists():
        with store.lock():
            state = store.load()
            if state.verification_message is not None:
                state.verification_message = None
                store.save(state)


async def _register(args: argparse.Namespace, app: App) -> int:
    path = app.paths.credentials_file
    if path.exists() and not args.force:
        raise InputError(f"credentials already exist at {path}", field="--force",
                         hint="pass --force to register again and replace them")
    console = Console()
    req = registration_request(await _fields(args, app, console))
    async with RetakeClient.from_settings(app.settings, None) as api:
        creds = await register_agent(api, path, req)
    if args.force:
        _forget_verification_message(app.paths)
    console.print(f"registered {creds.agent_name} (userDbId {creds.userDbId}); "
                  f"credentials saved to {path} (mode 600)")
    console.print("next: the human operator verifies the agent: retake-fsm verify")
    return 0


def main(args: argparse.Namespace, app: App) -> int:
    return asyncio.run(_register(args, app))
