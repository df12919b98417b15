"""states.yaml: pydantic models, exact FILE:LINE:COL problems, meaning checks, routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from retake_fsm.definition import load_definition
from retake_fsm.errors import ConfigError, DefinitionError

REPO = Path(__file__).resolve().parents[1]
DEFS = REPO / "tests" / "definitions"
SEVEN = ["unregistered", "unverified", "rtmp", "started", "encoding", "live", "stopped"]

# fixture -> (line, column, part of the message): the one problem each file has.
BROKEN = {
    "bad_yaml_syntax.yaml": (16, 10, "YAML syntax: expected ',' or ']'"),
    "bad_unknown_field.yaml": (21, 5, "transitions.confirm.timout: unknown field (allowed: source"),
    "bad_missing_dest.yaml": (12, 3, "transitions.go.dest: missing required field 'dest'"),
    "bad_unknown_state.yaml": (18, 11, "transitions.confirm.dest: unknown state 'livee'"),
    "bad_unreachable.yaml": (11, 3, "state 'limbo' is unreachable from the initial state"),
    "bad_no_path.yaml": (4, 9, "target: no path from 'unregistered' to 'live'"),
    "bad_unknown_action.yaml": (19, 21, "unknown action 't_okk'; did you mean 't_ok'?"),
    "bad_on_error_unknown.yaml": (22, 15, "unknown transition 'stpo'; did you mean 'stop'?"),
    "bad_on_error_not_allowed.yaml": (22, 15, "'restart' is not allowed from 'rtmp'"),
    "bad_negative_duration.yaml": (21, 14, "timeout: duration must be positive, got '-30s'"),
    "bad_zero_duration.yaml": (20, 35, "retry.initial: duration must be positive, got '0s'"),
    "bad_attempts.yaml": (20, 23, "retry.attempts: Input should be greater than or equal to 1"),
    "bad_retry_on.yaml": (20, 88, "'auth' is not a retryable error kind"),
    "bad_duplicate_key.yaml": (29, 3, "duplicate key 'restart' (first at line 28)"),
    "bad_plugin.yaml": (5, 32, "plugins: cannot import 'tests.plugins.nope'"),
}


def problems_of(path: Path) -> list[tuple[str, int, int, str]]:
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    return info.value.problems


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_fixture_reports_the_exact_position(name: str) -> None:
    """Each broken fixture gives exactly one problem, at the offending token's line:column."""
    line, col, text = BROKEN[name]
    (problem,) = problems_of(DEFS / name)
    assert problem[:3] == (str(DEFS / name), line, col)
    assert text in problem[3]


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    """Four unrelated mistakes: four problems, sorted by position, in the error's message."""
    problems = problems_of(DEFS / "bad_many.yaml")
    assert [(line, col) for _, line, col, _ in problems] == [(5, 1), (19, 11), (21, 23), (23, 15)]
    assert "extra: unknown field" in problems[0][3]
    with pytest.raises(DefinitionError) as info:
        load_definition(DEFS / "bad_many.yaml")
    assert str(info.value).count(f"{DEFS / 'bad_many.yaml'}:") == 4


def test_settings_block_is_validated_with_positions() -> None:
    """A bad duration and an unknown key inside `settings:` are both located."""
    problems = problems_of(DEFS / "bad_settings.yaml")
    assert [(line, col) for _, line, col, _ in problems] == [(31, 16), (32, 3)]
    assert "settings.chat.poll: not a duration: 'fast'" in problems[0][3]
    assert "settings.colour: unknown field" in problems[1][3]


def test_repo_states_yaml_declares_the_seven_states_and_every_transition() -> None:
    """The shipped machine: 7 states, the happy path plus recover/stop/restart, durations parsed."""
    d = load_definition(REPO / "states.yaml", check_actions=False)
    assert list(d.states) == SEVEN
    assert set(d.transitions) == {"register", "verify", "start", "encode", "confirm",
                                  "recover", "stop", "restart"}
    assert (d.initial, d.target, d.reconcile) == ("unregistered", "live", "reconcile")
    assert d.transitions["recover"].source == ["started", "encoding", "live"]
    assert d.transitions["recover"].on_demand and d.transitions["stop"].on_demand
    assert d.transitions["start"].retry.initial == 0.5
    assert d.transitions["recover"].timeout == 120.0
    assert d.transitions["encode"].on_error == "recover"
    assert d.states["live"].activity == "live_loops"
    assert d.settings["chat"]["poll"] == "3s"  # the raw block; Settings parses it


def test_repo_states_yaml_validates_with_the_built_in_actions() -> None:
    """`retake-fsm validate states.yaml` holds: every action it names is registered."""
    d = load_definition(REPO / "states.yaml")
    assert d.path == REPO / "states.yaml"


def test_forward_route_is_the_shortest_path_without_on_demand_transitions() -> None:
    """run's route: happy path from scratch, restart after a stop, none from live backwards."""
    d = load_definition(REPO / "states.yaml", check_actions=False)
    assert d.route("unregistered", "live") == ["register", "verify", "start", "encode",
                                               "confirm"]
    assert d.route("stopped", "live") == ["restart", "start", "encode", "confirm"]
    assert d.route("live", "rtmp") is None  # only `recover` goes there: on demand
    assert d.route("live", "live") == []


def test_bad_names_and_reserved_triggers_are_refused(tmp_path: Path) -> None:
    """A trigger may not shadow the model (`state`, `to_*`); state names are identifiers."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "version: 1\ninitial: a\ntarget: b\nstates:\n  a: {}\n  B-2: {}\n  b: {}\n"
        "transitions:\n  state: {source: a, dest: b}\n  to_x: {source: b, dest: B-2}\n")
    problems = problems_of(path)
    assert [(line, col) for _, line, col, _ in problems] == [(6, 3), (9, 3), (10, 3)]
    assert "state name 'B-2'" in problems[0][3]
    assert "transition name 'state'" in problems[1][3]


def test_missing_file_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    """No such file: a ConfigError that says how to point at one, not an OSError."""
    with pytest.raises(ConfigError, match="no such file") as info:
        load_definition(tmp_path / "nope.yaml")
    assert "--states" in str(info.value)


def test_a_file_that_is_not_a_mapping_is_reported_at_1_1(tmp_path: Path) -> None:
    """A list at the top level: one problem at 1:1 saying what is expected."""
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    ((_, line, col, msg),) = problems_of(path)
    assert (line, col) == (1, 1) and "expected a mapping" in msg
