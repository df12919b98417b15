"""The RTMP ingest with real ffmpeg and nginx-rtmp: who may publish, when a stream is live."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.fixtures.sandbox import Publish, Sandbox, SandboxAgent, wait_until

pytestmark = pytest.mark.e2e

Publisher = Callable[..., Publish]


def _refused_quickly(pub: Publish, started: float, limit: float = 3.0) -> float:
    rc = pub.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert rc != 0, f"ffmpeg exited 0 for a refused key:\n{pub.log()}"
    assert elapsed < limit, f"refusal took {elapsed:.2f}s"
    return elapsed


def test_newest_key_after_start_goes_live_within_a_second(
        sandbox: Sandbox, sandbox_agent: SandboxAgent, publisher: Publisher) -> None:
    """A publish with the newest key after stream/start makes is_live true within 1 s."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    mark = sandbox.mark()
    started = time.monotonic()
    pub = publisher(url, seconds=2)
    status = wait_until(lambda: (s := sandbox_agent.status())["is_live"] and s,
                        timeout=3.0, interval=0.05, message="is_live")
    assert time.monotonic() - started < 1.0 + 0.35  # ffmpeg's own start is ~0.3 s
    assert status["viewers"] > 0
    events = [c["event"] for c in sandbox.calls(kind="ingest", since=mark)]
    assert events == ["publish"]
    assert pub.wait(timeout=10) == 0
    # media stops: live ends within the 3 s window, and publish_done is recorded
    wait_until(lambda: not sandbox_agent.status()["is_live"], timeout=5, message="not live")
    wait_until(lambda: sandbox.calls(kind="ingest", since=mark, event="publish_done"),
               timeout=3, message="publish_done")


def test_stale_key_is_refused(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                              publisher: Publisher) -> None:
    """After a second rtmp call the first key is refused: ffmpeg exits non-zero quickly."""
    stale = sandbox_agent.publish_url()
    sandbox_agent.rtmp()
    sandbox_agent.start()
    mark = sandbox.mark()
    started = time.monotonic()
    _refused_quickly(publisher(stale, seconds=5), started)
    refused = sandbox.calls(kind="ingest", since=mark, event="publish_refused")
    assert refused and refused[0]["status"] == 403 and "stale" in refused[0]["reason"]
    assert not sandbox_agent.status()["is_live"]


def test_key_before_stream_start_is_refused(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                            publisher: Publisher) -> None:
    """The newest key is refused while no session is open (stream/start not called)."""
    url = sandbox_agent.publish_url()
    mark = sandbox.mark()
    _refused_quickly(publisher(url, seconds=5), time.monotonic())
    refused = sandbox.calls(kind="ingest", since=mark, event="publish_refused")
    assert "stream/start" in refused[0]["reason"]


def test_random_key_is_refused(sandbox: Sandbox, publisher: Publisher) -> None:
    """A key the platform never issued is refused, and the log shows it masked."""
    mark = sandbox.mark()
    key = "sk_" + "ab12" * 8
    elapsed = _refused_quickly(publisher(f"{sandbox.rtmp_url}/{key}", seconds=5),
                               time.monotonic())
    refused = sandbox.calls(kind="ingest", since=mark, event="publish_refused")
    assert refused[0]["key"] == "sk_…ab12" and key not in json.dumps(refused)
    assert elapsed < 3.0


def test_ffprobe_sees_h264_yuv420p_720p_and_aac(sandbox: Sandbox, sandbox_agent: SandboxAgent,
                                                publisher: Publisher) -> None:
    """ffprobe on the play URL reports h264 yuv420p 1280x720 video and aac audio."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    publisher(url, seconds=8)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3, message="is_live")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "5000000", "-show_entries",
         "stream=codec_type,codec_name,pix_fmt,width,height", "-of", "json", url],
        capture_output=True, text=True, timeout=20, check=False)
    assert probe.returncode == 0, probe.stderr
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (1280, 720)
    assert audio["codec_name"] == "aac"


def test_stream_status_reports_uptime_while_live(sandbox_agent: SandboxAgent,
                                                 publisher: Publisher) -> None:
    """uptime_seconds counts from the accepted publish while media flows."""
    url = sandbox_agent.publish_url()
    sandbox_agent.start()
    publisher(url, seconds=5)
    wait_until(lambda: sandbox_agent.status()["uptime_seconds"] >= 1, timeout=4,
               message="uptime >= 1 s")
    assert sandbox_agent.status()["is_live"] is True
