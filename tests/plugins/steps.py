"""Test actions for real CLI runs (listed in a fixture definition's `plugins:`).

Real async functions, no mocks: they succeed, hang once, wait to be
cancelled, fail the way real actions fail, or carry a secret that must never
be printed. Markers go under the profile's state dir so a test can wait on
them.
"""

from __future__ import annotations

from retake_fsm.actions import action
from retake_fsm.context import ActionContext
from retake_fsm.errors import InputError, VerificationPending
from retake_fsm.redact import register_secret

SLOW_MARKER = "slow.started"
FAKE_TOKEN = "rtk_testtoken0123456789abcd"
FAKE_KEY = "sk_streamkey0123456789wxyz"


@action("t_ok")
async def t_ok(ctx: ActionContext) -> str | None:
    ctx.emit("test.step", transition=ctx.transition)
    return None


@action("t_slow_once")
async def t_slow_once(ctx: ActionContext) -> str | None:
    """First call: leave a marker, then take (far) longer than any test waits. Later: at once."""
    marker = ctx.paths.state_dir / SLOW_MARKER
    if marker.exists():
        return None
    marker.write_text("started\n")
    await ctx.clock.sleep(600)
    return None


@action("t_idle")
async def t_idle(ctx: ActionContext) -> str | None:
    """An activity that runs until the engine cancels it (a stop request)."""
    ctx.emit("test.idle", state=ctx.state.state)
    await ctx.clock.sleep(3600)
    return "stop"


@action("t_reconcile")
async def t_reconcile(ctx: ActionContext) -> str | None:
    ctx.emit("test.reconciled", state=ctx.state.state)
    return None


@action("t_pending")
async def t_pending(ctx: ActionContext) -> str | None:
    raise VerificationPending("the human has not tweeted the verification message yet",
                              hint="post it, then `retake-fsm verify --tweet-url URL`")


@action("t_bad_input")
async def t_bad_input(ctx: ActionContext) -> str | None:
    raise InputError("wallet 'xyz' is not a Solana public key", field="agent.wallet",
                     hint="set --set agent.wallet=<base58 key>")


@action("t_secret")
async def t_secret(ctx: ActionContext) -> str | None:
    """Learns secrets the way real actions do, and mentions them everywhere it can."""
    register_secret(FAKE_TOKEN)
    ctx.session.rtmp_url, ctx.session.rtmp_key = "rtmp://127.0.0.1/live", FAKE_KEY
    register_secret(FAKE_KEY)
    ctx.emit("test.secret", token=FAKE_TOKEN, publish=ctx.session.publish_url)
    ctx.state.stream.stream_url = f"https://example.invalid/watch?k={FAKE_KEY}"
    ctx.save()
    return None
