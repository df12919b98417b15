"""The agent API under /api/v1, as /work/shared/retake-api.md describes it.

Strict where the platform is strict: validation errors are 400 naming the
field, a missing or wrong token is 401, an unknown user 404, a call that needs
an active session without one 409.
"""

from __future__ import annotations

import io
import re
import secrets
from typing import Any

import base58
from starlette.datastructures import UploadFile
from starlette.routing import Route

from .http import Call, HttpError, api_endpoint
from .platform import Platform
from .store import Agent, TokenInfo, new_solana_address

NAME_MAX = 50
TICKER_MAX = 10
MESSAGE_MAX = 1000
THUMBNAIL_MAX_BYTES = 10 * 1024 * 1024
RESERVED_NAMES = {"api", "_sandbox", "static", "thumbnails", "skill.json", "skill.md",
                  "favicon.ico"}
TWEET_URL = re.compile(
    r"^https://(?:www\.|mobile\.)?(?:twitter|x)\.com/[A-Za-z0-9_]{1,15}/status/\d{1,25}"
    r"(?:[/?#]\S*)?$"
)
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
VERIFY_PREFIX = "Claiming my Livestreaming Agent on @retakedottv. Code: "


def _text(call: Call, name: str, *, max_len: int, required: bool = True) -> str:
    value = call.field(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise HttpError(400, f"{name} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise HttpError(400, f"{name} must be a string", field=name)
    value = value.strip()
    if len(value) > max_len:
        raise HttpError(400, f"{name} must be at most {max_len} characters", field=name)
    return value


def valid_wallet(wallet: str) -> bool:
    try:
        return len(base58.b58decode(wallet)) == 32
    except ValueError:
        return False


async def register(call: Call) -> dict[str, Any]:
    store = call.platform.store
    name = _text(call, "agent_name", max_len=NAME_MAX)
    if "/" in name or any(ord(c) < 32 for c in name) or name.casefold() in RESERVED_NAMES:
        raise HttpError(400, f"agent_name {name!r} is not allowed", field="agent_name")
    description = _text(call, "agent_description", max_len=500)
    image_url = _text(call, "image_url", max_len=2000)
    if not re.match(r"^https?://[^\s/]+", image_url):
        raise HttpError(400, "image_url must be an http(s) URL", field="image_url")
    wallet = _text(call, "wallet_address", max_len=64)
    if not valid_wallet(wallet):
        raise HttpError(400, "wallet_address must be a Solana public key "
                        "(base58, 32 bytes)", field="wallet_address")
    ticker = _text(call, "ticker", max_len=10 ** 6)
    if len(ticker) > TICKER_MAX or any(c.isspace() for c in ticker):
        raise HttpError(400, f"ticker must be 1-{TICKER_MAX} characters without spaces",
                        field="ticker")
    if store.agent_by_name(name) is not None:
        raise HttpError(400, f"agent_name {name!r} is already taken", field="agent_name")
    agent, token = store.add_agent(name=name, description=description, image_url=image_url,
                                   wallet=wallet, ticker=ticker)
    return {
        "access_token": token, "agent_id": agent.agent_id, "userDbId": agent.user_db_id,
        "wallet_address": agent.wallet, "token_address": "", "token_ticker": "",
    }


async def prepare_verify(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    if agent.verification_code is None:
        agent.verification_code = secrets.token_hex(4).upper()
        call.platform.store.save()
    return {"verification_message": VERIFY_PREFIX + agent.verification_code}


async def verify(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    tweet_url = _text(call, "tweet_url", max_len=500)
    if agent.verification_code is None:
        raise HttpError(400, "no verification in progress: call prepare-verify first")
    if not TWEET_URL.match(tweet_url):
        raise HttpError(400, "tweet_url must be a twitter.com or x.com status URL "
                        "(https://x.com/<user>/status/<id>)", field="tweet_url")
    if not call.platform.store.data.tweet_has_code:
        raise HttpError(400, "the tweet does not contain the verification code",
                        verified=False)
    agent.verified, agent.tweet_url = True, tweet_url
    call.platform.store.save()
    return {"verified": True}


async def verification_status(call: Call) -> dict[str, Any]:
    return {"verified": call.require_agent().verified}


async def rtmp(call: Call) -> dict[str, Any]:
    key = call.platform.store.issue_key(call.require_agent())
    return {"url": call.platform.endpoints.rtmp_url, "key": key}


async def stream_start(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    if not agent.verified:
        raise HttpError(400, "agent is not verified: token creation refused; "
                        "verify the agent on Twitter/X first (prepare-verify, verify)")
    if agent.token is None:
        agent.token = TokenInfo(name=agent.name, ticker=agent.ticker, imageUrl=agent.image_url,
                                tokenAddress=new_solana_address(), tokenType="dbc")
    call.platform.start_session(agent)
    return {"success": True, "token": agent.token.model_dump()}


async def stream_status(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    p = call.platform
    return {
        "is_live": p.is_live(agent), "viewers": p.viewers(agent),
        "uptime_seconds": p.uptime(agent),
        "token_address": agent.token.tokenAddress if agent.token else "",
        "userDbId": agent.user_db_id,
    }


def _need_session(agent: Agent) -> None:
    if agent.session is None:
        raise HttpError(409, "no active session: call stream/start first")


async def update_thumbnail(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    _need_session(agent)
    upload = call.form.get("image") if call.form is not None else None
    if not isinstance(upload, UploadFile):
        raise HttpError(400, "multipart field 'image' (a PNG or JPEG file) is required",
                        field="image")
    data = await upload.read()
    if len(data) > THUMBNAIL_MAX_BYTES:
        raise HttpError(400, f"image is larger than {THUMBNAIL_MAX_BYTES} bytes", field="image")
    fmt = _decode_image(data)
    agent.thumbnails += 1
    name = f"{agent.user_db_id}-{agent.thumbnails}.{'jpg' if fmt == 'JPEG' else 'png'}"
    (call.platform.store.thumbs_dir / name).write_bytes(data)
    agent.thumbnail_url = f"{call.platform.endpoints.root_url}/thumbnails/{name}"
    call.platform.store.save()
    return {"message": "Thumbnail updated", "thumbnail_url": agent.thumbnail_url}


def _decode_image(data: bytes) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = str(img.format)
            img.load()
    except Exception:
        raise HttpError(400, "image is not a decodable PNG or JPEG", field="image") from None
    if fmt not in ("PNG", "JPEG"):
        raise HttpError(400, f"image must be PNG or JPEG, got {fmt}", field="image")
    return fmt


async def chat_send(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    message = _text(call, "message", max_len=MESSAGE_MAX)
    dest_id = _text(call, "destination_user_id", max_len=100)
    dest = call.platform.store.data.agents.get(dest_id)
    if dest is None:
        raise HttpError(404, f"destination_user_id {dest_id!r}: no such user")
    _need_session(dest)
    rec = call.platform.store.add_comment(dest, message, call.platform.agent_author(agent),
                                          from_agent=True)
    return {"success": True, "message": "sent", "_id": rec.id}


async def comments(call: Call) -> dict[str, Any]:
    q = call.request.query_params
    user_id = q.get("userDbId")
    if not user_id:
        raise HttpError(400, "userDbId is required", field="userDbId")
    raw_limit = q.get("limit", "50")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise HttpError(400, "limit must be an integer 1-100", field="limit") from None
    if not 1 <= limit <= 100:
        raise HttpError(400, "limit must be between 1 and 100", field="limit")
    before = q.get("beforeId")
    if before is not None and not OBJECT_ID.match(before):
        raise HttpError(400, "beforeId must be a comment _id (24 hex digits)", field="beforeId")
    streamer = call.platform.store.data.agents.get(user_id)
    if streamer is None:
        raise HttpError(404, f"userDbId {user_id!r}: no such user")
    recs = call.platform.store.comments_for(streamer, limit=limit, before_id=before)
    return {"comments": [r.public() for r in recs]}


async def stream_stop(call: Call) -> dict[str, Any]:
    agent = call.require_agent()
    _need_session(agent)
    return call.platform.stop_session(agent)


# public --------------------------------------------------------------------
def profile(p: Platform, agent: Agent) -> dict[str, Any]:
    return {
        "userDbId": agent.user_db_id, "agent_id": agent.agent_id, "username": agent.name,
        "bio": agent.description, "pfp": agent.image_url, "wallet_address": agent.wallet,
        "ticker": agent.ticker, "verified": agent.verified,
        "token": agent.token.model_dump() if agent.token else None,
        "is_live": p.is_live(agent), "viewers": p.viewers(agent),
        "thumbnail_url": agent.thumbnail_url,
    }


def session_info(p: Platform, agent: Agent) -> dict[str, Any] | None:
    if agent.session is None:
        return None
    return {
        "session_id": agent.session.id, "streamer_id": agent.user_db_id,
        "username": agent.name, "is_live": p.is_live(agent), "viewers": p.viewers(agent),
        "uptime_seconds": p.uptime(agent), "thumbnail_url": agent.thumbnail_url,
        "token_address": agent.token.tokenAddress if agent.token else "",
    }


def _find(call: Call, key: str) -> Agent:
    ident = call.request.path_params[key]
    agent = call.platform.store.find_agent(ident)
    if agent is None:
        raise HttpError(404, f"streamer {ident!r} not found")
    return agent


async def streamer(call: Call) -> dict[str, Any]:
    return profile(call.platform, _find(call, "identifier"))


async def active_session(call: Call) -> dict[str, Any]:
    agent = _find(call, "streamer_id")
    info = session_info(call.platform, agent)
    if info is None:
        raise HttpError(404, f"{agent.name!r} has no active session")
    return info


async def active_sessions(call: Call) -> dict[str, Any]:
    p = call.platform
    infos = [session_info(p, a) for a in p.store.data.agents.values()]
    return {"sessions": [i for i in infos if i is not None]}


async def users_live(call: Call) -> dict[str, Any]:
    p = call.platform
    return {"users": [profile(p, a) for a in p.store.data.agents.values() if p.is_live(a)]}


async def users_newest(call: Call) -> dict[str, Any]:
    p = call.platform
    agents = sorted(p.store.data.agents.values(), key=lambda a: a.created_at, reverse=True)
    return {"users": [profile(p, a) for a in agents[:20]]}


async def users_search(call: Call) -> dict[str, Any]:
    p = call.platform
    q = call.request.path_params["query"].casefold()
    return {"users": [profile(p, a) for a in p.store.data.agents.values()
                      if q in a.name.casefold()]}


async def user_metadata(call: Call) -> dict[str, Any]:
    return profile(call.platform, _find(call, "user_id"))


async def sessions_recorded(call: Call) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for a in call.platform.store.data.agents.values():
        for sess in a.sessions:
            out.append({"session_id": sess.id, "streamer_id": a.user_db_id, "username": a.name,
                        "started_at": sess.started_at, "ended_at": sess.ended_at,
                        "peak_viewers": sess.peak_viewers})
    out.sort(key=lambda r: r["ended_at"] or 0, reverse=True)
    return {"sessions": out[:50]}


def _tokens(p: Platform) -> list[dict[str, Any]]:
    return [{**a.token.model_dump(), "userDbId": a.user_db_id, "is_live": p.is_live(a)}
            for a in p.store.data.agents.values() if a.token is not None]


async def tokens_top(call: Call) -> dict[str, Any]:
    return {"tokens": _tokens(call.platform)}


async def token_stats(call: Call) -> dict[str, Any]:
    address = call.request.path_params["address"]
    for t in _tokens(call.platform):
        if t["tokenAddress"] == address:
            return {**t, "price": 0.0, "market_cap": 0.0, "volume_24h": 0.0, "holders": 0}
    raise HttpError(404, f"token {address!r} not found")


async def trades_recent(call: Call) -> dict[str, Any]:
    return {"trades": []}  # the sandbox has no market


async def public_chat(call: Call) -> dict[str, Any]:
    q = call.request.query_params
    ident = q.get("streamer_id")
    if not ident:
        raise HttpError(400, "streamer_id is required", field="streamer_id")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise HttpError(400, "limit must be an integer 1-100", field="limit") from None
    if not 1 <= limit <= 100:
        raise HttpError(400, "limit must be between 1 and 100", field="limit")
    agent = call.platform.store.find_agent(ident)
    if agent is None:
        raise HttpError(404, f"streamer {ident!r} not found")
    return {"comments": [r.public() for r in call.platform.store.comments_for(agent,
                                                                              limit=limit)]}


async def top_tippers(call: Call) -> dict[str, Any]:
    if not call.request.query_params.get("streamer_id"):
        raise HttpError(400, "streamer_id is required", field="streamer_id")
    return {"tippers": []}  # the sandbox has no tips


async def not_found(call: Call) -> dict[str, Any]:
    rel = call.request.url.path.removeprefix("/api/v1/").rstrip("/")
    if any(path == rel for _, path, _, _ in AGENT_ROUTES):
        raise HttpError(405, f"method {call.request.method} not allowed on {rel}")
    raise HttpError(404, f"no such endpoint: {call.request.method} {call.request.url.path}")


AGENT_ROUTES: list[tuple[str, str, Any, bool]] = [
    ("POST", "agent/register", register, False),
    ("POST", "agent/prepare-verify", prepare_verify, True),
    ("POST", "agent/verify", verify, True),
    ("GET", "agent/verification-status", verification_status, True),
    ("POST", "agent/rtmp", rtmp, True),
    ("POST", "agent/stream/start", stream_start, True),
    ("GET", "agent/stream/status", stream_status, True),
    ("POST", "agent/update-thumbnail", update_thumbnail, True),
    ("POST", "agent/stream/chat/send", chat_send, True),
    ("GET", "agent/stream/comments", comments, True),
    ("POST", "agent/stream/stop", stream_stop, True),
    ("GET", "users/streamer/{identifier}", streamer, False),
    ("GET", "users/live", users_live, False),
    ("GET", "users/newest", users_newest, False),
    ("GET", "users/search/{query}", users_search, False),
    ("GET", "sessions/active", active_sessions, False),
    ("GET", "sessions/active/{streamer_id}", active_session, False),
    ("GET", "users/metadata/{user_id}", user_metadata, False),
    ("GET", "sessions/recorded", sessions_recorded, False),
    ("GET", "tokens/top", tokens_top, False),
    ("GET", "tokens/trending", tokens_top, False),
    ("GET", "tokens/{address}/stats", token_stats, False),
    ("GET", "trades/recent", trades_recent, False),
    ("GET", "chat/top-tippers", top_tippers, False),
    ("GET", "chat", public_chat, False),
]


def routes(platform: Platform) -> list[Route]:
    out = []
    for method, path, handler, auth in AGENT_ROUTES:
        endpoint = api_endpoint(platform, handler, auth=auth)
        out.append(Route(f"/api/v1/{path}", endpoint, methods=[method]))
        if not path.startswith("agent/"):  # the platform lists public paths with a slash
            out.append(Route(f"/api/v1/{path}/", endpoint, methods=[method]))
    out.append(Route("/api/v1/{rest:path}", api_endpoint(platform, not_found, auth=False),
                     methods=["GET", "POST", "PUT", "DELETE", "PATCH"]))
    return out
