"""The engine's commands as a user runs them: validate, run, status, history, diagram."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.env import Env
from tests.plugins.steps import FAKE_KEY, FAKE_TOKEN, SLOW_MARKER
from tests.test_diagram import node_fill

REPO = Path(__file__).resolve().parents[1]
DEFS = REPO / "tests" / "definitions"
UNTIL_LIVE = ("run", "--until", "live", "--exit-when-reached")


def machine(env: Env, **swap: str) -> str:
    """ok_steps.yaml, with `old=new` text swaps (keys are just labels), written under HOME."""
    text = (DEFS / "ok_steps.yaml").read_text()
    for pair in swap.values():
        old, new = pair.split("=>")
        assert old in text, old
        text = text.replace(old, new)
    path = env.home / "states.yaml"
    path.write_text(text)
    return str(path)


def state_dir(env: Env, profile: str = "default") -> Path:
    return env.state_home / "retake-fsm" / profile


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"run exited {proc.returncode} early: {err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def skip_slow_step(env: Env, profile: str = "default") -> None:
    state_dir(env, profile).mkdir(parents=True, exist_ok=True)
    (state_dir(env, profile) / SLOW_MARKER).write_text("done before\n")


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


def test_validate_prints_one_summary_line_and_exits_0(env: Env) -> None:
    """A good definition: exit 0, a single line naming the file and what it declares."""
    done = env.cli("validate", str(DEFS / "ok_steps.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{DEFS / 'ok_steps.yaml'}: ok, 7 states, 8 transitions, 5 actions; "
        "unregistered -> live"]


def test_validate_reports_every_problem_as_file_line_col_and_exits_2(env: Env) -> None:
    """A file with four mistakes: four FILE:LINE:COL lines (then a count), exit 2, no traceback."""
    path = DEFS / "bad_many.yaml"
    done = env.cli("validate", str(path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert [line.split(": ")[0] for line in lines[:4]] == [
        f"{path}:5:1", f"{path}:19:11", f"{path}:21:23", f"{path}:23:15"]
    assert lines[4] == f"{path}: 4 problem(s)"
    no_traceback(done.stdout, done.stderr)


def test_run_with_a_broken_definition_is_a_usage_error(env: Env) -> None:
    """`run` refuses a broken definition the same way: positions, exit 2, no traceback."""
    done = env.cli("--states", str(DEFS / "bad_unknown_state.yaml"), *UNTIL_LIVE)
    assert done.returncode == 2
    assert f"{DEFS / 'bad_unknown_state.yaml'}:18:11:" in done.stderr
    no_traceback(done.stderr)


def test_run_to_live_then_status_history_diagram_and_no_secret_anywhere(env: Env) -> None:
    """Run reaches live (exit 0); status/history/diagram report it; no token or key leaks."""
    states = machine(env)
    skip_slow_step(env)
    outputs = []
    done = env.cli("--states", states, *UNTIL_LIVE)
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("state: live")

    status = env.cli("--states", states, "status", "--json", "--offline")
    outputs += [status.stdout, status.stderr]
    facts = json.loads(status.stdout)
    assert (facts["state"], facts["profile"], facts["running_pid"]) == ("live", "default", None)
    assert facts["last_transition"] == "confirm" and facts["last_error"] is None
    assert facts["stream"]["stream_url"].endswith("sk_…wxyz")

    human = env.cli("--states", states, "status", "--offline")
    outputs += [human.stdout, human.stderr]
    assert human.stdout.splitlines()[1].startswith("state     live (since ")

    hist = env.cli("--states", states, "history", "-n", "2")
    outputs += [hist.stdout, hist.stderr]
    assert len(hist.stdout.splitlines()) == 2
    assert hist.stdout.splitlines()[-1].endswith("transition     confirm: encoding -> live")
    entries = json.loads(env.cli("--states", states, "history", "--json", "-n", "0").stdout)
    assert [e["dest"] for e in entries if e["event"] == "transition"] == [
        "unverified", "rtmp", "started", "encoding", "live"]

    flow = env.home / "flow.svg"
    drawn = env.cli("--states", states, "diagram", "--format", "svg", "-o", str(flow))
    outputs += [drawn.stdout, drawn.stderr]
    assert drawn.returncode == 0, drawn.stderr
    assert node_fill(flow.read_bytes(), "live") == "darksalmon"
    assert node_fill(flow.read_bytes(), "rtmp") == "white"

    files = [p.read_text() for p in state_dir(env).rglob("*") if p.is_file()]
    for text in outputs + files:
        for secret in (FAKE_TOKEN, FAKE_KEY, FAKE_TOKEN[4:-4], FAKE_KEY[3:-4]):
            assert secret not in text
    no_traceback(*outputs)


def test_second_run_exits_1_naming_the_holder_and_sigterm_stops_the_first(env: Env) -> None:
    """While a run holds the profile another exits 1 naming its PID; SIGTERM then stops it."""
    states = machine(env)
    first = env.popen("--states", states, *UNTIL_LIVE)
    try:
        wait_for(state_dir(env) / SLOW_MARKER, first)
        second = env.cli("--states", states, *UNTIL_LIVE)
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"retake-fsm: profile 'default' is already being run by PID {first.pid} "
            "(stop it with `retake-fsm stop` or use another --profile)")
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    assert out.strip().endswith("state: stopped")
    saved = json.loads((state_dir(env) / "state.json").read_text())
    assert saved["state"] == "stopped"
    events = [json.loads(line) for line in (state_dir(env) / "journal.jsonl").open()]
    names = [e["event"] for e in events]
    sig = names.index("signal")
    assert events[sig]["signal"] == "SIGTERM"
    cancelled = events[names.index("failure", sig)]
    assert (cancelled["action"], cancelled["kind"]) == ("t_slow_once", "cancelled")
    assert names.index("stop.requested") > sig
    assert events[-1]["event"] == "transition" and events[-1]["source"] == "rtmp"


def test_sigint_before_any_stream_exits_130_and_keeps_the_state(env: Env) -> None:
    """Ctrl-C while verifying: no stop to run, so exit 130 with one line; resumable state."""
    states = machine(env, a="[t_ok, t_secret]=>[t_slow_once]",
                     b="actions: [t_slow_once]\n    timeout: 10m=>actions: [t_ok]")
    proc = env.popen("--states", states, *UNTIL_LIVE)
    try:
        wait_for(state_dir(env) / SLOW_MARKER, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "retake-fsm: interrupted in state 'unverified' (`retake-fsm run` resumes from here)")
    assert json.loads((state_dir(env) / "state.json").read_text())["state"] == "unverified"


def test_verification_pending_exits_3_with_one_line(env: Env) -> None:
    """An action raising VerificationPending ends the run with exit 3 and the fix."""
    states = machine(env, a="[t_ok, t_secret]=>[t_pending]")
    done = env.cli("--states", states, *UNTIL_LIVE)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1].startswith(
        "retake-fsm: the human has not tweeted the verification message yet (post it")
    no_traceback(done.stderr)


def test_bad_input_in_an_action_exits_2_naming_the_fix(env: Env) -> None:
    """An InputError from an action: one line naming the setting to fix, exit 2, state kept."""
    states = machine(env, a="dest: unverified, actions: [t_ok]=>dest: unverified, "
                            "actions: [t_bad_input]")
    done = env.cli("--states", states, *UNTIL_LIVE)
    assert done.returncode == 2
    assert "--set agent.wallet=" in done.stderr.strip().splitlines()[-1]
    status = json.loads(env.cli("--states", states, "status", "--json", "--offline").stdout)
    assert status["state"] == "unregistered"
    assert status["last_error"]["kind"] == "input"
    assert status["last_error"]["transition"] == "register"


def test_unknown_until_state_is_a_usage_error(env: Env) -> None:
    """--until with a state the machine lacks: exit 2, one line listing the states."""
    done = env.cli("--states", str(DEFS / "ok_steps.yaml"), "run", "--until", "orbit")
    assert done.returncode == 2
    assert done.stderr.strip() == ("retake-fsm: --until 'orbit': not a state (one of: "
                                   "unregistered, unverified, rtmp, started, encoding, live, "
                                   "stopped)")


def test_profile_comes_from_set_or_env(env: Env) -> None:
    """--set profile=beta runs under beta's state dir; RETAKE_PROFILE=beta reads it back."""
    states = machine(env)
    skip_slow_step(env, "beta")
    done = env.cli("--states", states, "--set", "profile=beta", *UNTIL_LIVE)
    assert done.returncode == 0, done.stderr
    beta = json.loads(env.cli("--states", states, "status", "--json", "--offline",
                              extra_env={"RETAKE_PROFILE": "beta"}).stdout)
    default = json.loads(env.cli("--states", states, "status", "--json", "--offline").stdout)
    assert (beta["profile"], beta["state"]) == ("beta", "live")
    assert (default["profile"], default["state"]) == ("default", "unregistered")


def test_status_warns_when_the_platform_is_unreachable_but_prints_the_facts(env: Env) -> None:
    """With a token but no platform: a warning on stderr, persisted facts on stdout, exit 0."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    states = machine(env)
    done = env.cli("--states", states, "status", "--json", extra_env={
        "RETAKE_ACCESS_TOKEN": FAKE_TOKEN,
        "RETAKE_BASE_URL": f"http://127.0.0.1:{port}/api/v1"})
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["state"] == "unregistered" and facts["platform"] is None
    assert len(facts["warnings"]) == 1 and "could not ask the platform" in facts["warnings"][0]
    assert "retake-fsm: warning: could not ask the platform" in done.stderr
    assert FAKE_TOKEN not in done.stdout + done.stderr


def test_cli_and_engine_commands_import_nothing_heavy() -> None:
    """`--help` stays fast: the CLI and command modules import no engine/network libraries."""
    code = (
        "import sys, retake_fsm.cli\n"
        "for m in ('run', 'status', 'history', 'diagram', 'validate'):\n"
        "    __import__(f'retake_fsm.commands.{m}')\n"
        "heavy = ('transitions', 'httpx', 'tenacity', 'pydantic', 'yaml', 'graphviz', 'loguru')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
