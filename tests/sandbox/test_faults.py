"""Fault injection as a client sees it: plain httpx for the API, ffmpeg for the ingest."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import psutil
import pytest

from tests.fixtures.sandbox import Publish, Sandbox, SandboxAgent, wait_until

Publisher = Callable[..., Publish]


def _statuses(agent: SandboxAgent, path: str, n: int) -> list[int]:
    return [agent.request("GET", path).status_code for _ in range(n)]


# API faults -------------------------------------------------------------------------------
def test_error_rate_is_seeded_and_repeatable(sandbox: Sandbox,
                                             sandbox_agent: SandboxAgent) -> None:
    """rate=0.3,status=503 on one path fails about 30 % of calls, the same ones for a seed."""
    spec = "path=stream/status,rate=0.3,status=503"
    sandbox.set_faults(spec, seed=7)
    first = _statuses(sandbox_agent, "agent/stream/status", 40)
    sandbox.set_faults(spec, seed=7)
    second = _statuses(sandbox_agent, "agent/stream/status", 40)
    assert first == second
    assert set(first) == {200, 503} and 4 <= first.count(503) <= 20
    assert _statuses(sandbox_agent, "agent/verification-status", 5) == [200] * 5
    sandbox.set_faults(spec, seed=8)
    assert _statuses(sandbox_agent, "agent/stream/status", 40) != first
    faulted = [c for c in sandbox.calls(path="agent/stream/status") if c["status"] == 503]
    assert faulted and faulted[-1]["fault"] == ["path=stream/status,rate=0.3,status=503"]


def test_latency_delays_only_the_matching_endpoint(sandbox: Sandbox,
                                                   sandbox_agent: SandboxAgent) -> None:
    """latency=400ms makes that endpoint answer at least 0.4 s late; others stay fast."""
    sandbox.set_faults("path=verification-status,latency=400ms")
    t0 = time.monotonic()
    assert sandbox_agent.request("GET", "agent/verification-status").status_code == 200
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    assert sandbox_agent.request("GET", "agent/stream/status").status_code == 200
    fast = time.monotonic() - t0
    assert 0.4 <= slow < 2.0 and fast < 0.3


def test_hang_never_answers(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """A hang fault leaves the client waiting until its own timeout; the log shows it."""
    sandbox.set_faults("path=stream/comments,hang")
    mark = sandbox.mark()
    with pytest.raises(httpx.ReadTimeout):
        sandbox_agent.request("GET", "agent/stream/comments",
                              params={"userDbId": sandbox_agent.user_db_id}, timeout=0.5)
    rec = wait_until(lambda: sandbox.calls(path="agent/stream/comments", since=mark),
                     timeout=3, message="the hung call in the log")
    assert rec[0]["error"] == "injected hang" and rec[0]["fault"]


def test_forced_conflict_with_count(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """status=409,count=1 makes exactly the next stream/start a 409, then the rule is spent."""
    sandbox.set_faults("path=stream/start,status=409,count=1")
    assert sandbox_agent.request("POST", "agent/stream/start").status_code == 409
    assert sandbox_agent.request("POST", "agent/stream/start").status_code == 200
    rules = sandbox.admin("GET", "faults")["rules"]
    assert rules[0]["fired"] == 1


def test_platform_down(sandbox: Sandbox, sandbox_agent: SandboxAgent) -> None:
    """`down` makes every API call and skill.json answer 503 until faults are cleared."""
    sandbox.set_faults("down")
    assert sandbox.http.get(sandbox.skill_url).status_code == 503
    assert sandbox_agent.request("POST", "agent/rtmp").status_code == 503
    assert sandbox.http.post(f"{sandbox.base_url}/agent/register", json={}).status_code == 503
    assert sandbox.admin("GET", "info")["api_port"] > 0  # the admin API still answers
    sandbox.clear_faults()
    assert sandbox.http.get(sandbox.skill_url).status_code == 200


def test_bad_fault_specs_are_refused_clearly(sandbox: Sandbox) -> None:
    """A malformed rule is a 400 whose message names the problem; the rules stay as they were."""
    for bad in ("rate=2,status=503", "path=x", "bogus=1,status=500", "ingest=explode"):
        r = sandbox.http.put(f"{sandbox.admin_url}/faults", json={"rules": [bad]})
        assert r.status_code == 400, bad
        assert "fault" in r.json()["error"]
    assert sandbox.admin("GET", "faults")["rules"] == []


# ingest faults ---------------------------------------------------------------------------------
def _go_live(agent: SandboxAgent, publisher: Publisher, seconds: float = 20) -> Publish:
    url = agent.publish_url()
    agent.start()
    pub = publisher(url, seconds=seconds)
    wait_until(lambda: agent.status()["is_live"], timeout=3, message="is_live")
    return pub


def _exits_nonzero(pub: Publish, within: float) -> None:
    t0 = time.monotonic()
    rc = pub.wait(timeout=within + 5)
    assert rc != 0 and time.monotonic() - t0 < within, pub.log()


@pytest.mark.e2e
def test_drop_publisher(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                        publisher: Publisher) -> None:
    """Dropping the publisher makes ffmpeg exit non-zero at once and the stream not live."""
    pub = _go_live(sandbox_agent, publisher)
    assert sandbox.drop(sandbox_agent)
    _exits_nonzero(pub, within=3)
    assert not sandbox_agent.status()["is_live"]


@pytest.mark.e2e
def test_rotate_key_revokes_and_drops(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                      publisher: Publisher) -> None:
    """Key rotation drops the publisher, refuses the old key, and a fresh key goes live."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    pub = publisher(url, seconds=20)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3, message="is_live")
    sandbox.rotate_key(sandbox_agent)
    _exits_nonzero(pub, within=3)
    _exits_nonzero(publisher(url, seconds=5), within=3)  # the old key is no longer valid
    publisher(sandbox_agent.publish_url(), seconds=5)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3, message="live again")


@pytest.mark.e2e
def test_freeze_stalls_ffmpeg_without_killing_it(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                                 publisher: Publisher) -> None:
    """Frozen ingest: the frame counter stops while ffmpeg stays up; a new publish still works."""
    pub = _go_live(sandbox_agent, publisher, seconds=30)
    wait_until(lambda: pub.frames() > 0, timeout=3, message="first progress block")
    sandbox.freeze(sandbox_agent)
    wait_until(lambda: not sandbox_agent.status()["is_live"], timeout=4.5, message="not live")

    def stalled_for(span: float) -> bool:
        before = pub.frames()
        time.sleep(span)
        return pub.frames() == before

    wait_until(lambda: stalled_for(1.0), timeout=15, interval=0, message="frames to stop")
    assert pub.proc.poll() is None, "ffmpeg exited instead of stalling"
    # a recovering client publishes again with a fresh key while the old one stays frozen
    publisher(sandbox_agent.publish_url(), seconds=5)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3, message="live again")
    assert pub.proc.poll() is None


@pytest.mark.e2e
def test_unfreeze_resumes_the_same_publisher(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                             publisher: Publisher) -> None:
    """A timed freeze (`seconds`) thaws by itself and the same ffmpeg is live again."""
    pub = _go_live(sandbox_agent, publisher, seconds=20)
    sandbox.freeze(sandbox_agent, seconds=4)
    wait_until(lambda: not sandbox_agent.status()["is_live"], timeout=4.5, message="not live")
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=5, message="thawed")
    assert pub.proc.poll() is None


@pytest.mark.e2e
def test_standing_ingest_rule_drops_each_publisher(sandbox: Sandbox,
                                                   sandbox_agent: SandboxAgent,
                                                   publisher: Publisher) -> None:
    """`ingest=drop,after=1s` drops every accepted publisher about a second after it starts."""
    sandbox.set_faults("ingest=drop,after=1s")
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    mark = sandbox.mark()
    started = time.monotonic()
    pub = publisher(url, seconds=20)
    rc = pub.wait(timeout=8)
    assert rc != 0 and 1.0 <= time.monotonic() - started < 4.0
    assert sandbox.calls(kind="ingest", since=mark, event="fault_drop")


@pytest.mark.e2e
def test_stopped_worker_holds_publishes_until_continued(sandbox: Sandbox,
                                                        sandbox_agent: SandboxAgent,
                                                        publisher: Publisher) -> None:
    """kill -STOP of the nginx worker: a publish stalls while it is stopped, then goes live."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    pids = sandbox.stop_worker(2.5)
    assert pids and all(psutil.Process(p).status() == psutil.STATUS_STOPPED for p in pids)
    t0 = time.monotonic()
    publisher(url, seconds=10)
    time.sleep(1.0)
    assert not sandbox_agent.status()["is_live"]
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=6, message="live after SIGCONT")
    assert time.monotonic() - t0 >= 2.0
    assert all(psutil.Process(p).status() != psutil.STATUS_STOPPED for p in pids)
