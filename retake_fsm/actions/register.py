"""Registration: validate the agent's fields, `POST agent/register`, save the credentials.

The same code serves `retake-fsm register` and the machine's `register` action
(which does nothing when credentials already exist). Every field is checked
before any request: a bad wallet or ticker never reaches the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import base58

from ..api import RegisterRequest, RetakeClient
from ..context import ActionContext
from ..credentials import Credentials, read_credentials_file, save_credentials
from ..errors import InputError
from . import action

# field -> the flag that sets it (`agent.<field>` in states.yaml)
FLAGS: dict[str, str] = {
    "name": "--name",
    "description": "--description",
    "image_url": "--image-url",
    "wallet": "--wallet",
    "ticker": "--ticker",
}
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SOLANA_KEY_BYTES = 32
TICKER_MAX = 10


def wallet_problem(wallet: str) -> str | None:
    """Why `wallet` is not a Solana public key (base58 of exactly 32 bytes), or None."""
    if not wallet:
        return "is empty"
    for ch in wallet:
        if ch not in BASE58_ALPHABET:
            return f"has {ch!r}, which is not a base58 character (base58 has no 0, O, I or l)"
    size = len(base58.b58decode(wallet))
    if size != SOLANA_KEY_BYTES:
        return f"decodes to {size} bytes (a Solana public key is {SOLANA_KEY_BYTES})"
    return None


def ticker_problem(ticker: str) -> str | None:
    if not ticker:
        return "is empty"
    if any(ch.isspace() for ch in ticker):
        return "contains whitespace"
    if len(ticker) > TICKER_MAX:
        return f"is {len(ticker)} characters long (at most {TICKER_MAX})"
    return None


def image_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return "must be an http(s) URL of a square jpg/png, e.g. https://example.com/avatar.png"
    return None


def registration_request(fields: Mapping[str, str | None]) -> RegisterRequest:
    """The register body from flags / `agent.*` settings; InputError (one line) if unusable."""
    missing = [FLAGS[k] for k in FLAGS if fields.get(k) is None]
    if missing:
        settings_names = ", ".join(f"agent.{k}" for k in FLAGS if fields.get(k) is None)
        raise InputError(f"registration needs {', '.join(missing)}", field=missing[0],
                         hint=f"run `retake-fsm register` with the flags first, or set "
                              f"{settings_names} in states.yaml or with --set")
    values = {k: (fields[k] or "").strip() for k in FLAGS}
    problems: list[tuple[str, str]] = []
    if not values["name"]:
        problems.append(("name", "is empty"))
    for key, check in (("wallet", wallet_problem), ("ticker", ticker_problem),
                       ("image_url", image_url_problem)):
        problem = check(values[key])
        if problem:
            problems.append((key, problem))
    if problems:
        text = "; ".join(f"{FLAGS[k]} {p}" for k, p in problems)
        raise InputError(text, field=FLAGS[problems[0][0]])
    return RegisterRequest(
        agent_name=values["name"], agent_description=values["description"],
        image_url=values["image_url"], wallet_address=values["wallet"], ticker=values["ticker"],
    )


async def register_agent(api: RetakeClient, path: Path, req: RegisterRequest) -> Credentials:
    """Register, then save the credentials (0600); the client uses the new token from now on."""
    resp = await api.register(req)
    creds = Credentials(
        access_token=resp.access_token,
        agent_name=req.agent_name,
        agent_id=resp.agent_id,
        userDbId=resp.user_db_id,
        wallet_address=resp.wallet_address or req.wallet_address,
        ticker=req.ticker,
        token_address=resp.token_address or "",
        token_ticker=resp.token_ticker or "",
    )
    save_credentials(path, creds)
    api.token = creds.access_token
    return creds


@action("register")
async def register(ctx: ActionContext) -> str | None:
    """Credentials exist -> nothing; else register from `settings.agent`."""
    creds = ctx.credentials or read_credentials_file(ctx.paths.credentials_file)
    if creds is not None:
        ctx.credentials = creds
        if not ctx.api.token:
            ctx.api.token = creds.access_token
        ctx.emit("register.skipped", reason="credentials exist",
                 credentials=str(ctx.paths.credentials_file))
        return None
    agent = ctx.settings.agent
    req = registration_request(agent.model_dump())
    creds = await register_agent(ctx.api, ctx.paths.credentials_file, req)
    ctx.credentials = creds
    ctx.emit("register.done", agent=creds.agent_name, user_db_id=creds.userDbId,
             credentials=str(ctx.paths.credentials_file))
    return None
