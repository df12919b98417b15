"""`retake-fsm sandbox` as a user runs it: flags, clear errors, restarts, and clean shutdowns."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.env import Env
from tests.fixtures.sandbox import start_sandbox, wait_until

pytestmark = pytest.mark.e2e


def _one_line_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_bad_fault_spec_is_one_line_exit_2(env: Env) -> None:
    """A malformed --faults spec exits 2 with one line that names the spec and the key."""
    r = env.cli("sandbox", "--port", "0", "--rtmp-port", "0", "--faults", "rate=3,status=503")
    assert r.returncode == 2
    line = _one_line_error(r.stderr)
    assert "rate=3,status=503" in line and "rate" in line


def test_missing_nginx_names_the_debian_packages(env: Env, tmp_path: Path) -> None:
    """Without nginx the sandbox says which Debian packages to install, in one line, exit 2."""
    r = env.cli("sandbox", "--port", "0", "--rtmp-port", "0", "--data-dir", str(tmp_path / "d"),
                extra_env={"RETAKE_SANDBOX_NGINX": "/nonexistent/nginx"}, timeout=30)
    assert r.returncode == 2
    assert "apt-get install nginx libnginx-mod-rtmp" in _one_line_error(r.stderr)
    assert not (tmp_path / "d" / "sandbox.json").exists()


def test_port_in_use_is_a_clear_error(env: Env) -> None:
    """A taken --port is refused in one line that says to pick another port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = env.cli("sandbox", "--port", str(port), "--rtmp-port", "0", timeout=30)
    assert r.returncode == 2
    line = _one_line_error(r.stderr)
    assert str(port) in line and "--port" in line


def test_faults_flag_applies_at_start_and_exports_are_printed(tmp_path: Path) -> None:
    """--faults given at start is active at once; stdout prints the RETAKE_* lines to export."""
    sb = start_sandbox(tmp_path / "sb", "--faults", "path=skill.json,status=500",
                       "--faults", "seed=3")
    try:
        assert httpx.get(sb.skill_url).status_code == 500
        faults = sb.admin("GET", "faults")
        assert faults["seed"] == 3 and faults["rules"][0]["path"] == "skill.json"
        out = (tmp_path / "sb" / "sandbox.log").read_text()
        assert f"export RETAKE_BASE_URL={sb.base_url}" in out
        assert f"export RETAKE_SKILL_URL={sb.skill_url}" in out
    finally:
        sb.stop()


def test_state_survives_a_restart_and_sigterm_leaves_nothing(tmp_path: Path) -> None:
    """Agents, tokens, verification and switches survive a restart; SIGTERM stops nginx too."""
    data = tmp_path / "sb"
    sb = start_sandbox(data)
    agent = sb.register_agent()
    sb.set_skill_version("9.9.9")
    nginx_pid = sb.info["nginx_pid"]
    sb.stop()
    assert sb.proc.returncode == 0
    assert sb.leftovers() == [] and not psutil.pid_exists(nginx_pid)
    assert not (data / "sandbox.json").exists()
    token = agent.token
    assert token not in (data / "platform.json").read_text()  # only digests are kept

    sb2 = start_sandbox(data)
    try:
        r = httpx.get(f"{sb2.base_url}/agent/verification-status",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"verified": True}
        assert httpx.get(sb2.skill_url).json()["version"] == "9.9.9"
        dup = httpx.post(f"{sb2.base_url}/agent/register", json={
            "agent_name": agent.name, "agent_description": "x", "image_url": "https://a.b/c.png",
            "wallet_address": agent.wallet, "ticker": "X"})
        assert dup.status_code == 400
    finally:
        sb2.stop()


def test_killed_sandbox_takes_its_nginx_along(tmp_path: Path) -> None:
    """Even a SIGKILLed sandbox leaves no nginx behind (parent-death signal on our child)."""
    sb = start_sandbox(tmp_path / "sb")
    pids = [sb.info["nginx_pid"], *sb.info["nginx_workers"]]
    assert all(psutil.pid_exists(p) for p in pids)
    os.kill(sb.proc.pid, signal.SIGKILL)
    sb.proc.wait(5)
    wait_until(lambda: sb.leftovers() == [], timeout=5, message="nginx to exit")
    sb.http.close()
