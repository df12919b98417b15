"""`retake-fsm chat send` and `chat tail` as an operator runs them (real CLI, real sandbox)."""

from __future__ import annotations

import json
import re
import selectors
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<who>\S+): (?P<text>.*)$")


def test_chat_send_goes_to_our_own_stream(env: Any, sandbox: Any, sandbox_agent: Any) -> None:
    """`chat send TEXT` posts to our own userDbId's chat; no secret is printed."""
    sandbox_agent.start()
    mark = sandbox.mark()
    r = env.cli("chat", "send", "hello from the operator", extra_env=sandbox_agent.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "sent: hello from the operator\n"
    (call,) = sandbox.calls("stream/chat/send", since=mark)
    assert call["body"] == {"message": "hello from the operator",
                            "destination_user_id": sandbox_agent.user_db_id}
    assert sandbox_agent.token not in r.stdout + r.stderr


def test_chat_tail_prints_the_last_n(env: Any, sandbox: Any, sandbox_agent: Any) -> None:
    """`chat tail -n 2 --no-follow` prints the two newest comments as `HH:MM:SS name: text`."""
    sandbox_agent.start()
    for n, who in enumerate(["ann", "bob", "cy"]):
        sandbox.post_comment(sandbox_agent, f"message {n}\nwith a newline", viewer=who)
    r = env.cli("chat", "tail", "-n", "2", "--no-follow", extra_env=sandbox_agent.env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [LINE.match(x).groupdict() for x in lines] == [  # type: ignore[union-attr]
        {"who": "bob", "text": "message 1 with a newline"},
        {"who": "cy", "text": "message 2 with a newline"},
    ]


def _read_line(proc: Any, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                return str(proc.stdout.readline())
        raise AssertionError(f"no output within {timeout}s")
    finally:
        sel.close()


def test_chat_tail_follows_new_comments(env: Any, sandbox: Any, sandbox_agent: Any) -> None:
    """`chat tail` keeps polling (chat.poll) and prints each new comment once, as it arrives."""
    sandbox_agent.start()
    sandbox.post_comment(sandbox_agent, "before", viewer="early")
    proc = env.popen("--set", "chat.poll=100ms", "chat", "tail", "-n", "1",
                     extra_env=sandbox_agent.env(), bufsize=1)
    try:
        assert LINE.match(_read_line(proc, 20).rstrip("\n")).group("text") == "before"  # type: ignore[union-attr]
        for text in ("live one", "live two"):
            sandbox.post_comment(sandbox_agent, text, viewer="late")
            got = LINE.match(_read_line(proc, 10).rstrip("\n"))
            assert got is not None and got.group("who") == "late" and got.group("text") == text
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)  # our own child, by its PID
        try:
            out, err = proc.communicate(timeout=10)
        except Exception:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "before" not in out and "live one" not in out  # nothing printed twice


def test_chat_without_credentials_is_one_clear_line(env: Any, tmp_path: Path) -> None:
    """No credentials: exit 2 and one line saying to register; no traceback."""
    r = env.cli("chat", "tail", "--no-follow",
                extra_env={"RETAKE_CREDENTIALS": str(tmp_path / "missing.json")})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "retake-fsm register" in r.stderr
    assert "Traceback" not in r.stderr


def test_chat_with_a_bad_token_names_the_fix_and_hides_it(env: Any, sandbox: Any,
                                                          tmp_path: Path) -> None:
    """A revoked token: one line telling the operator what to do; the token never shown."""
    token = "rtk_" + "9" * 40
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"access_token": token, "agent_name": "ghost",
                                 "userDbId": "u-ghost"}))
    creds.chmod(0o600)
    r = env.cli("chat", "send", "hi", extra_env={**sandbox.env(),
                                                 "RETAKE_CREDENTIALS": str(creds)})
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "token rejected" in r.stderr
    assert token not in r.stderr and "Traceback" not in r.stderr
    assert "re-register or set RETAKE_ACCESS_TOKEN" in r.stderr
