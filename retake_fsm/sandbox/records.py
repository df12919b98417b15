"""The call log: every API call and ingest event, secrets masked, for tests to read.

Kept in memory (the newest `MAX_RECORDS`), numbered by `seq` so a test can
take a mark before it acts and read only what came after it.
"""

from __future__ import annotations

import re
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from ..redact import mask, redact_obj

MAX_RECORDS = 20_000
_SECRET_FIELD = re.compile(r"token|key|secret|password", re.IGNORECASE)


def mask_fields(obj: Any) -> Any:
    """Mask the values of secret-looking fields, then anything shaped like a secret."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if isinstance(v, str) and _SECRET_FIELD.search(str(k)) and v and "…" not in v:
                out[k] = mask(v)
            else:
                out[k] = mask_fields(v)
        return out
    if isinstance(obj, list):
        return [mask_fields(v) for v in obj]
    return redact_obj(obj)


def mask_auth(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if not value:
        return mask(scheme)
    return f"{scheme} {mask(value.strip())}"


class CallLog:
    def __init__(self) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self.seq = 0

    def add(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        now = time.time()
        rec: dict[str, Any] = {
            "seq": self.seq,
            "kind": kind,
            "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "t": now,
        }
        rec.update(mask_fields(fields))
        self._records.append(rec)
        return rec

    def query(self, *, since: int = 0, kind: str | None = None, path: str | None = None,
              method: str | None = None, event: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for rec in self._records:
            if rec["seq"] <= since:
                continue
            if kind and rec["kind"] != kind:
                continue
            if method and rec.get("method", "").upper() != method.upper():
                continue
            if event and rec.get("event") != event:
                continue
            if path:
                p = str(rec.get("path", ""))
                if not (p == path or p.endswith("/" + path.strip("/"))):
                    continue
            out.append(rec)
        return out[-limit:] if limit else out

    def clear(self) -> None:
        self._records.clear()
