"""Fault specs and decisions as pure functions: parsing, matching, seeded draws, counts."""

from __future__ import annotations

import pytest

from retake_fsm.errors import InputError
from retake_fsm.sandbox.faults import Faults, parse_spec


def test_parse_spec_reads_every_key() -> None:
    """A spec string becomes a rule with durations in seconds and flags as booleans."""
    rules, seed = parse_spec("path=stream/status, rate=0.25, status=503, latency=500ms, count=2")
    assert seed is None
    rule = rules[0]
    assert (rule.path, rule.rate, rule.status, rule.latency, rule.count) == \
        ("stream/status", 0.25, 503, 0.5, 2)
    hang, _ = parse_spec("path=stream/comments,hang")
    assert hang[0].hang is True
    ingest, _ = parse_spec("ingest=freeze,after=2s,for=10s")
    assert (ingest[0].ingest, ingest[0].after, ingest[0].for_) == ("freeze", 2.0, 10.0)
    assert parse_spec("seed=42") == ([], 42)


@pytest.mark.parametrize("spec,needle", [
    ("rate=1.5,status=503", "rate"),
    ("status=503,colour=red", "colour"),
    ("path=stream/status", "needs one of"),
    ("latency=fast", "duration"),
    ("ingest=explode", "ingest"),
    ("seed=abc", "seed"),
    ("status", "needs a value"),
])
def test_bad_specs_are_input_errors(spec: str, needle: str) -> None:
    """Every malformed spec is an InputError whose one-line message names what is wrong."""
    with pytest.raises(InputError) as exc:
        parse_spec(spec)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_path_matching_and_down() -> None:
    """`stream/status` matches agent/stream/status only; `down` matches every path."""
    faults = Faults(parse_spec("path=stream/status,status=500")[0])
    assert faults.decide("GET", "agent/stream/status").status == 500
    assert faults.decide("GET", "agent/stream/start").status is None
    down = Faults(parse_spec("down")[0])
    assert down.down and down.decide("POST", "agent/register").status == 503
    assert down.decide("GET", "skill.json").status == 503


def test_seeded_draws_repeat_and_counts_expire() -> None:
    """The same seed gives the same failures; `count` stops a rule after N firings."""
    spec = parse_spec("rate=0.5,status=503")[0]
    a = Faults(spec, seed=1)
    first = [a.decide("GET", "x").status for _ in range(30)]
    b = Faults(parse_spec("rate=0.5,status=503")[0], seed=1)
    assert [b.decide("GET", "x").status for _ in range(30)] == first
    assert 5 < first.count(503) < 25
    once = Faults(parse_spec("status=409,count=1")[0])
    assert [once.decide("POST", "agent/stream/start").status for _ in range(3)] == \
        [409, None, None]
