"""The sandbox fixture itself: it starts, answers, and hands out verified agents."""

from __future__ import annotations

import httpx

from tests.fixtures.sandbox import Sandbox, SandboxAgent


def test_sandbox_fixture_gives_urls_and_a_verified_agent(sandbox: Sandbox,
                                                          sandbox_agent: SandboxAgent) -> None:
    """The session sandbox is reachable on loopback and sandbox_agent is registered + verified."""
    assert sandbox.base_url.startswith("http://127.0.0.1:")
    assert sandbox.rtmp_url.startswith("rtmp://127.0.0.1:")
    r = httpx.get(f"{sandbox.base_url}/agent/verification-status", headers=sandbox_agent.headers)
    assert r.status_code == 200 and r.json() == {"verified": True}
    assert sandbox_agent.credentials["access_token"] == sandbox_agent.token
    assert sandbox_agent.credentials_file is not None
    assert sandbox_agent.credentials_file.stat().st_mode & 0o777 == 0o600
