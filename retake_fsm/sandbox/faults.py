"""Fault injection: what the sandbox does wrong on purpose, repeatably.

A fault *rule* is written as a spec, `key=value` pairs joined by commas, or as
the same keys in a JSON object:

    rate=0.2,status=503                     20 % of every API call answer 503
    path=stream/status,latency=500ms        that endpoint answers half a second late
    path=stream/start,status=409,count=2    the next two stream/start calls get 409
    path=stream/comments,hang               that endpoint never answers
    down                                    the whole platform answers 503
    ingest=drop,after=5s                    every accepted publisher is dropped after 5 s
    ingest=freeze,after=2s,for=10s          ... frozen 2 s after it starts, for 10 s
    ingest=rotate-key,after=3s              ... its key revoked (and dropped) after 3 s
    seed=7                                  reseed every rule's random draws

Keys: `path` (glob on the path under /api/v1, `stream/status` also matches
`agent/stream/status`; default `*`), `method`, `rate` (0..1, default 1),
`status`, `latency`, `hang`, `count` (fire at most N times), `down`, `ingest`
(`drop` | `freeze` | `rotate-key`), `after`, `for`, `seed`. Durations as in
states.yaml (`500ms`, `3s`). Each rule draws from its own `random.Random`
seeded from (seed, position), so a test sees the same sequence every run.
"""

from __future__ import annotations

import fnmatch
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import InputError
from ..settings import parse_duration

INGEST_ACTIONS = ("drop", "freeze", "rotate-key")
_FLAGS = {"hang", "down"}
_DURATIONS = {"latency", "after", "for"}


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = "*"
    method: str = "*"
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    status: int | None = Field(default=None, ge=100, le=599)
    latency: float = Field(default=0.0, ge=0.0)
    hang: bool = False
    down: bool = False
    count: int | None = Field(default=None, ge=1)
    ingest: str | None = None
    after: float = Field(default=0.0, ge=0.0)
    for_: float | None = Field(default=None, alias="for", gt=0.0)
    fired: int = 0

    @field_validator("latency", "after", "for_", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("ingest")
    @classmethod
    def _ingest(cls, v: str | None) -> str | None:
        if v is not None and v not in INGEST_ACTIONS:
            raise ValueError(f"ingest must be one of {', '.join(INGEST_ACTIONS)}")
        return v

    @model_validator(mode="after")
    def _does_something(self) -> FaultRule:
        if not (self.status or self.latency or self.hang or self.down or self.ingest):
            raise ValueError("a rule needs one of status, latency, hang, down, ingest")
        return self

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def matches(self, method: str, path: str) -> bool:
        """`path` is relative to /api/v1 (or `skill.json`), without a leading slash."""
        if self.ingest:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        pat = self.path.strip("/")
        return self.down or fnmatch.fnmatchcase(path, pat) or \
            fnmatch.fnmatchcase(path, f"*/{pat}")

    def describe(self) -> str:
        return ",".join(
            f"{k.rstrip('_')}={v}" for k, v in self.model_dump(exclude_defaults=True).items()
            if k != "fired"
        ) or "(none)"


def parse_spec(spec: str) -> tuple[list[FaultRule], int | None]:
    """One `--faults` spec -> its rule (or none, for a bare `seed=N`) and its seed."""
    fields: dict[str, Any] = {}
    seed: int | None = None
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            if key not in _FLAGS:
                raise InputError(f"--faults {spec!r}: {key!r} needs a value (e.g. {key}=...)",
                                 field="--faults")
            fields[key] = True
            continue
        value = value.strip()
        if key == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise InputError(f"--faults {spec!r}: seed must be an integer",
                                 field="--faults") from None
            continue
        fields[key] = value
    if not fields:
        return [], seed
    return [make_rule(fields, source=spec)], seed


def make_rule(fields: dict[str, Any], *, source: str | None = None) -> FaultRule:
    try:
        return FaultRule.model_validate(fields)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        detail = str(exc)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "rule"
            detail = f"{where}: {first['msg']}"
        shown = source if source is not None else fields
        raise InputError(
            f"fault {shown!r}: {detail}",
            field="--faults",
            hint="see `retake-fsm sandbox --help` or docs/sandbox.md for the fault keys",
        ) from None


class Decision(BaseModel):
    """What the faults say about one API call."""

    latency: float = 0.0
    status: int | None = None
    hang: bool = False
    rules: list[str] = Field(default_factory=list)


class Faults:
    """The active rules and their seeded random draws."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.seed = seed
        self.rules: list[FaultRule] = []
        self._rngs: list[random.Random] = []
        self.set(rules or [], seed)

    def set(self, rules: list[FaultRule], seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.rules = list(rules)
        self._rngs = [random.Random(f"{self.seed}:{i}") for i in range(len(self.rules))]

    def add(self, rules: list[FaultRule]) -> None:
        self.set([*self.rules, *rules])

    def clear(self) -> None:
        self.set([])

    @property
    def down(self) -> bool:
        return any(r.down and not r.exhausted for r in self.rules)

    def _fires(self, i: int, rule: FaultRule) -> bool:
        if rule.exhausted:
            return False
        if rule.rate < 1.0 and self._rngs[i].random() >= rule.rate:
            return False
        rule.fired += 1
        return True

    def decide(self, method: str, path: str) -> Decision:
        d = Decision()
        for i, rule in enumerate(self.rules):
            if not rule.matches(method, path) or not self._fires(i, rule):
                continue
            d.rules.append(rule.describe())
            d.latency += rule.latency
            if d.status is None and not d.hang:
                if rule.down:
                    d.status = rule.status or 503
                elif rule.hang:
                    d.hang = True
                elif rule.status:
                    d.status = rule.status
        return d

    def ingest_actions(self) -> list[FaultRule]:
        """Standing ingest rules that fire for one newly accepted publisher."""
        out = []
        for i, rule in enumerate(self.rules):
            if rule.ingest and self._fires(i, rule):
                out.append(rule)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rules": [r.model_dump(by_alias=True) for r in self.rules],
        }
