"""`POST agent/stream/start` (after the once-per-run skill version check).

A stream is *fresh* when none was ever started or the last one was stopped
(`state.final_stats` is set by stop_stream): then the chat cursor is reset, so
the first poll of the new stream only sets it. A start after a recovery keeps
the cursor (no double replies). Token fields go into the state and, when the
platform has them (first stream), into the credentials file.
"""

from __future__ import annotations

from loguru import logger

from ..api import check_skill
from ..context import ActionContext
from ..credentials import update_credentials_file
from ..errors import ApiError, PayloadError
from ..state import StreamFacts
from . import action

SKILL_CHECKED = "skill_checked"  # ctx.session.extras flag: once per run


async def _skill_check(ctx: ActionContext) -> None:
    api = ctx.settings.api
    result = await check_skill(ctx.api, api.skill_url, api.skill_version, ctx.paths.skill_cache,
                               ctx.clock.now())
    if result.outcome == "changed":
        where = f"; the new skill text is in {result.doc}" if result.doc else ""
        logger.warning("the retake.tv skill moved from {} to {}: the platform contract may have "
                       "changed{}", result.known, result.current, where)
    elif result.outcome == "unreachable":
        logger.warning("skill version check skipped ({}); continuing with {}", result.reason,
                       result.known)
    ctx.emit("skill.checked", outcome=result.outcome, known=result.known,
             current=result.current)


async def _remember_token(ctx: ActionContext, address: str | None, ticker: str | None) -> None:
    creds = ctx.credentials
    if creds is None:
        return
    fields: dict[str, str] = {}
    if address and address != creds.token_address:
        fields["token_address"] = address
    if ticker and ticker != creds.token_ticker:
        fields["token_ticker"] = ticker
    if not creds.userDbId:  # a token from RETAKE_ACCESS_TOKEN alone: learn our id
        try:
            user_db_id = (await ctx.api.stream_status()).user_db_id
        except ApiError as exc:  # the stream is started; the loops can ask again
            ctx.emit("credentials.user_db_id_unknown", reason=exc.message)
            user_db_id = None
        if user_db_id:
            fields["userDbId"] = user_db_id
    if fields:
        ctx.credentials = creds.model_copy(update=fields)
        update_credentials_file(ctx.paths.credentials_file, **fields)
        ctx.emit("credentials.updated", fields=sorted(fields))


@action("start_stream")
async def start_stream(ctx: ActionContext) -> str | None:
    if not ctx.session.extras.get(SKILL_CHECKED):
        ctx.session.extras[SKILL_CHECKED] = True
        await _skill_check(ctx)
    state = ctx.state
    fresh = state.stream.started_at is None or state.final_stats is not None
    result = await ctx.api.stream_start()
    if not result.success:
        raise PayloadError("agent/stream/start answered success=false",
                           endpoint="agent/stream/start",
                           hint="check `retake-fsm verify --status`: streaming needs verification")
    token = result.token
    name = ctx.credentials.agent_name if ctx.credentials else ""
    state.stream = StreamFacts(
        started_at=ctx.clock.now(),
        key_hint=state.stream.key_hint,
        stream_url=ctx.settings.api.stream_page.format(name=name) if name else None,
        token_name=token.name if token else None,
        token_address=token.token_address if token else None,
        token_ticker=token.ticker if token else None,
    )
    if fresh:
        state.chat.cursor_set = False
        state.chat.greeted_at = state.announced_at = None  # a new stream is greeted again
        state.final_stats = None
        state.recoveries = []  # the recovery budget is per stream: a stopped one spent its own
        # and so are the counts its final stats report
        state.chat.comments_seen = state.chat.replies_sent = state.chat.keepalives_sent = 0
        state.thumbnails = 0
    state.streams += 1
    ctx.save()
    ctx.emit("stream.started", fresh=fresh, streams=state.streams,
             token_ticker=state.stream.token_ticker, token_address=state.stream.token_address)
    await _remember_token(ctx, state.stream.token_address, state.stream.token_ticker)
    return None
