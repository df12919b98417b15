"""Secrets never leave in text: one redactor for logs, the journal, status and errors.

Known secrets (the access token, each RTMP key) are registered as they are
learnt; anything shaped like a platform token (`rtk_...`) or stream key
(`sk_...`) is masked even if it was never registered. A secret becomes its
prefix, an ellipsis and its last four characters: `rtk_…abcd`.
"""

from __future__ import annotations

import re
from typing import Any

_PATTERN = re.compile(r"\b(rtk|sk)_([A-Za-z0-9_\-]{6,})")
_known: set[str] = set()


def mask(secret: str) -> str:
    """`rtk_0123456789abcd` -> `rtk_…abcd`; short or unprefixed secrets keep only the tail."""
    if "_" in secret[:5]:
        prefix = secret.split("_", 1)[0] + "_"
    else:
        prefix = ""
    tail = secret[-4:] if len(secret) > 8 else ""
    return f"{prefix}…{tail}"


def register_secret(secret: str | None) -> None:
    """Remember a secret so every later `redact()` masks it wherever it appears."""
    if secret and len(secret) >= 6:
        _known.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask(secret))
    return _PATTERN.sub(lambda m: mask(m.group(0)), text)


def redact_obj(obj: Any) -> Any:
    """Redact every string inside a JSON-like structure (dicts, lists, tuples)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj
