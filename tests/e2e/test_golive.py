"""Zero to live with everything real (sandbox API, nginx-rtmp, Xvfb, ffmpeg, scrot), then
chat, keep-alive and thumbnails on that same live stream.

The module's stream is made once, the way an operator makes it: an empty HOME,
`register`, `verify` (the message, exit 3), `verify --tweet-url`, then `run`.
"""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from itertools import pairwise
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image

from retake_fsm.settings import ChatSettings
from tests.fixtures.e2e import FAST, CliRun, Runs, make_env
from tests.fixtures.env import Env
from tests.fixtures.sandbox import Sandbox, new_wallet, wait_until

pytestmark = pytest.mark.e2e

TWEET = "https://x.com/retake_operator/status/1862451908723413504"
KEEPALIVE = 3.0
THUMBNAIL = 2.0
SECRET = re.compile(r"\b(rtk|sk)_[A-Za-z0-9]{6,}")


@dataclass
class GoLive:
    env: Env
    run: CliRun
    name: str
    mark: int
    steps: dict[str, subprocess.CompletedProcess[str]]

    @property
    def credentials(self) -> dict[str, Any]:
        path = self.env.home / ".config" / "retake" / "credentials.json"
        return dict(json.loads(path.read_text("utf-8")))


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def golive(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoLive]:
    env = make_env(tmp_path_factory.mktemp("golive"), sandbox.env())
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    steps = {
        "register": env.cli("register", "--name", name, "--description", "an e2e agent",
                            "--image-url", "https://example.invalid/agent.png",
                            "--wallet", new_wallet(), "--ticker", "ETOE"),
        "verify": env.cli("verify"),
        "verify_url": env.cli("verify", "--tweet-url", TWEET),
    }
    for step, res in steps.items():
        assert res.returncode in (0, 3), f"{step}: {res.returncode}\n{res.stderr}"
    mark = sandbox.mark()
    runs = Runs()
    try:
        run = runs.start(env, "--display", "auto", *_sets([
            *FAST, f"thumbnail.interval={THUMBNAIL:g}s", f"chat.keepalive={KEEPALIVE:g}s"]))
        seconds = run.wait_live(40)
        print(f"\nzero to live: run reached live in {seconds:.2f}s")
        yield GoLive(env=env, run=run, name=name, mark=mark, steps=steps)
    finally:
        left = runs.close()
    assert not left, f"left running: {left}"


def _seq(calls: list[dict[str, Any]], what: str, pred: Any, after: int = 0) -> int:
    for c in calls:
        if c["seq"] > after and pred(c):
            return int(c["seq"])
    raise AssertionError(f"the sandbox never saw {what} after seq {after}")


def _api(path: str, method: str = "POST") -> Any:
    return lambda c: (c["kind"] == "api" and c["method"] == method
                      and c["path"].endswith(path) and c["status"] == 200)


def test_zero_to_live_in_the_platform_order(golive: GoLive, sandbox: Sandbox) -> None:
    """Empty HOME to live: rtmp, start, publish, live, thumbnail, chat in order; no secrets."""
    reg, ver, url = golive.steps["register"], golive.steps["verify"], golive.steps["verify_url"]
    assert reg.returncode == 0, reg.stderr
    creds_file = golive.env.home / ".config" / "retake" / "credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert ver.returncode == 3
    assert "Claiming my Livestreaming Agent on @retakedottv. Code: " in ver.stdout
    assert url.returncode == 0, url.stderr

    calls = [c for c in sandbox.calls(since=golive.mark, kind=None)
             if c.get("agent") == golive.name]
    publish = _seq(calls, "an accepted publish",
                   lambda c: c["kind"] == "ingest" and c.get("event") == "publish"
                   and c.get("reason") == "accepted")
    rtmp = max(c["seq"] for c in calls if _api("agent/rtmp")(c) and c["seq"] < publish)
    start = _seq(calls, "stream/start", _api("stream/start"), after=rtmp)
    assert rtmp < start < publish
    live = _seq(calls, "stream/status", _api("stream/status", "GET"), after=publish)
    thumb = _seq(calls, "update-thumbnail", _api("update-thumbnail"), after=live)
    chat = _seq(calls, "chat/send", _api("stream/chat/send"), after=thumb)
    assert publish < live < thumb < chat
    # the publish used the newest key: nothing issued after it, and the platform's own view
    assert not [c for c in calls if _api("agent/rtmp")(c) and rtmp < c["seq"] < publish]
    published = next(c for c in calls if c["seq"] == publish)
    assert published["key"] == sandbox.agent_state(golive.name)["key"]
    hello = next(c for c in calls if c["seq"] == chat)
    assert hello["body"]["message"] == ChatSettings().opening_message
    assert hello["body"]["destination_user_id"] == golive.credentials["userDbId"]
    assert [e for e in golive.run.journal() if e["event"] == "live.confirmed"]

    first = golive.run.events("thumbnail.uploaded")[0]["url"]
    image = Image.open(io.BytesIO(httpx.get(first, timeout=10).content))
    image.load()
    assert image.size == (1280, 720)

    token = golive.credentials["access_token"]
    texts = [reg.stdout + reg.stderr, ver.stdout + ver.stderr, url.stdout + url.stderr,
             golive.run.output(), (golive.run.state_dir / "journal.jsonl").read_text(),
             (golive.run.state_dir / "state.json").read_text()]
    for text in texts:
        assert token not in text
        assert not SECRET.search(text), SECRET.search(text)


def test_ingest_carries_h264_yuv420p_720p30_and_aac(golive: GoLive) -> None:
    """ffprobe of the ingest's play URL: h264 yuv420p 1280x720 at ~30 fps, and aac audio."""
    pid = golive.run.status()["pids"]["ffmpeg"]
    url = psutil.Process(pid).cmdline()[-1]  # the key lives only in ffmpeg's argv
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "5000000", "-show_entries",
         "stream=codec_type,codec_name,pix_fmt,width,height,avg_frame_rate,r_frame_rate",
         "-of", "json", url],
        capture_output=True, text=True, timeout=30, check=False)
    assert probe.returncode == 0, probe.stderr
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (1280, 720)
    assert 29 <= float(Fraction(video["r_frame_rate"])) <= 31
    assert audio["codec_name"] == "aac"


def test_status_json_while_live(golive: GoLive) -> None:
    """`status --json` while live: state, since, profile, last_error, PIDs, is_live, viewers."""
    st = golive.run.status()
    assert st["state"] == "live" and st["profile"] == "default"
    assert datetime.fromisoformat(st["since"]) <= datetime.now(datetime.fromisoformat(
        st["since"]).tzinfo)
    assert st["last_error"] is None
    assert {"xvfb", "ffmpeg"} <= set(st["pids"])
    assert all(psutil.pid_exists(pid) for pid in st["pids"].values())
    assert st["is_live"] is True and isinstance(st["viewers"], int)
    assert golive.credentials["access_token"] not in json.dumps(st)


def test_viewer_comment_gets_one_reply_though_served_again(golive: GoLive,
                                                           sandbox: Sandbox) -> None:
    """A viewer comment gets one reply; served again by later polls, it is not answered twice."""
    viewer = f"viewer{uuid.uuid4().hex[:6]}"
    mark = sandbox.mark()
    comment = sandbox.post_comment(golive.name, "hello from the e2e test", viewer=viewer)

    def replies() -> list[dict[str, Any]]:
        return [c for c in sandbox.calls("stream/chat/send", since=mark)
                if viewer in c["body"]["message"]]

    first = wait_until(replies, timeout=10, message="a reply to the viewer")[0]
    wait_until(lambda: len([c for c in sandbox.calls("stream/comments", since=first["seq"])
                            if c.get("agent") == golive.name]) >= 3,
               timeout=10, message="three more chat polls")
    assert len(replies()) == 1
    answered = golive.run.events("chat.sent", in_reply_to=comment["_id"])
    assert len(answered) == 1


def test_silence_triggers_the_keepalive(golive: GoLive, sandbox: Sandbox) -> None:
    """Silence: a keep-alive line every chat.keepalive (3 s here), never sooner, lines rotating."""
    lines = set(ChatSettings().keepalive_lines)

    def keepalives() -> list[dict[str, Any]]:
        return [c for c in sandbox.calls("stream/chat/send", since=golive.mark)
                if c.get("agent") == golive.name and c["body"]["message"] in lines]

    sent = wait_until(lambda: len(keepalives()) >= 3 and keepalives(), timeout=KEEPALIVE * 3 + 4,
                      message="three keep-alive lines")
    gaps = [b["t"] - a["t"] for a, b in pairwise(sent)]  # a viewer comment only lengthens one
    print(f"\nkeep-alive gaps: {[round(g, 2) for g in gaps]}")
    assert all(g >= KEEPALIVE - 0.1 for g in gaps), gaps
    assert min(gaps) <= KEEPALIVE + 1.5, gaps
    assert sent[0]["body"]["message"] != sent[1]["body"]["message"]


def test_thumbnails_refresh_at_the_configured_cadence(golive: GoLive, sandbox: Sandbox) -> None:
    """`--set thumbnail.interval=2s`: after the first one, update-thumbnail every ~2 s."""

    def uploads() -> list[dict[str, Any]]:
        return [c for c in sandbox.calls("update-thumbnail", since=golive.mark)
                if c.get("agent") == golive.name and c["status"] == 200]

    ups = wait_until(lambda: len(uploads()) >= 4 and uploads(), timeout=THUMBNAIL * 4 + 4,
                     message="four thumbnail uploads")
    gaps = [b["t"] - a["t"] for a, b in pairwise(ups[1:])]  # ups[0]: the mandatory first one
    print(f"\nthumbnail gaps: {[round(g, 2) for g in gaps]}")
    assert all(THUMBNAIL - 0.1 <= g <= THUMBNAIL + 1.0 for g in gaps), gaps
    assert ups[0]["body"]["form"]["image"]["content_type"] in ("image/png", "image/jpeg")
