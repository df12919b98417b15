"""ffmpeg for real: the published argv, -progress parsing, publishing to the sandbox ingest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from retake_fsm.actions.start_display import start_display
from retake_fsm.actions.start_encoder import start_encoder
from retake_fsm.actions.stop_encoder import stop_encoder
from retake_fsm.context import Session
from retake_fsm.encoder import ProgressParser, build_argv
from retake_fsm.errors import ProcessExitedError
from retake_fsm.settings import EncoderSettings
from tests.fixtures.procs import ProcKit, gone
from tests.fixtures.sandbox import Sandbox, SandboxAgent, wait_until


def test_argv_is_the_published_encoder_command() -> None:
    """build_argv gives the platform's published ffmpeg command, -progress added, url last."""
    argv = build_argv(EncoderSettings(), ":99", "rtmp://h/live/sk_x", Path("/s/ffmpeg.progress"))
    text = " ".join(argv)
    assert argv[0] == "ffmpeg" and argv[-2:] == ["flv", "rtmp://h/live/sk_x"]
    assert ("-thread_queue_size 512 -f x11grab -video_size 1280x720 -framerate 30 -i :99 "
            "-f lavfi -i anullsrc=channel_layout=stereo:sample_rate=44100 "
            "-c:v libx264 -preset veryfast -tune zerolatency "
            "-b:v 1500k -maxrate 1500k -bufsize 3000k -pix_fmt yuv420p -g 60 "
            "-c:a aac -b:a 128k -f flv") in text
    assert "-progress /s/ffmpeg.progress -stats_period 1 " in text


def test_settings_and_extra_args_shape_the_argv() -> None:
    """Size, fps, bitrates, stats period and extra_args come from settings.encoder."""
    enc = EncoderSettings(size="640x360", fps=15, video_bitrate="800k", gop=30,
                          stats_period="500ms", extra_args=["-x264-params", "keyint=30"])
    text = " ".join(build_argv(enc, ":5", "rtmp://h/k", Path("p")))
    assert "-video_size 640x360 -framerate 15 -i :5" in text and "-b:v 800k" in text
    assert "-g 30" in text and "-stats_period 0.5" in text
    assert "-x264-params keyint=30 -f flv rtmp://h/k" in text


def test_progress_parser_yields_whole_blocks_across_chunks() -> None:
    """Blocks end at progress=...; partial lines and blocks wait for the next chunk."""
    parser = ProgressParser()
    assert list(parser.feed("frame=1\nfps=0.0\nbitrate=N/A\nspe")) == []
    blocks = list(parser.feed("ed=1x\nprogress=continue\nframe=31\nprogress=end\n"))
    assert blocks == [
        {"frame": "1", "fps": "0.0", "bitrate": "N/A", "speed": "1x", "progress": "continue"},
        {"frame": "31", "progress": "end"},
    ]
    mid = ProgressParser()
    mid.skip_partial = True  # an adopter starting mid-file drops the torn first block
    assert list(mid.feed("=12\nprogress=continue\nframe=13\nprogress=continue\n")) == [
        {"frame": "13", "progress": "continue"}]


async def test_encoder_publishes_on_a_good_key_and_stops(kit: ProcKit, sandbox: Sandbox,
                                                         sandbox_agent: SandboxAgent) -> None:
    """With the newest key after stream/start, ffmpeg publishes and the platform says live."""
    url, key = sandbox_agent.rtmp()
    sandbox_agent.start()
    session = Session(rtmp_url=url, rtmp_key=key)
    ctx = kit.ctx(session=session)
    await start_display(ctx)
    t0 = time.monotonic()
    assert await start_encoder(ctx) is None
    took = time.monotonic() - t0
    proc = kit.runner.get("ffmpeg")
    assert proc is not None and proc.alive and proc.progress is not None
    first = next(f["first_frame"] for e, f in kit.events if e == "encoder.publishing")
    print(f"\nffmpeg launch -> first frame published {first:.3f} s; start_encoder done "
          f"(start_window {kit.settings.encoder.start_window:g}s) in {took:.3f} s")
    assert proc.progress.frame > 0 and took < kit.settings.encoder.publish_timeout
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=5, message="is_live")
    assert kit.state.stream.key_hint == f"sk_…{key[-4:]}"
    assert key not in kit.paths.state_file.read_text()
    assert key not in (kit.paths.logs_dir / "ffmpeg.log").read_text()
    await stop_encoder(ctx)
    assert gone(proc.pid) and proc.returncode == 0 and "ffmpeg" not in kit.state.processes
    assert session.rtmp_key is None
    sandbox_agent.stop()


async def test_encoder_fails_within_a_second_on_a_refused_key(kit: ProcKit, sandbox: Sandbox,
                                                              sandbox_agent: SandboxAgent) -> None:
    """A key the ingest refuses (no longer the newest): ProcessExitedError in < 1 s, key masked."""
    url, key = sandbox_agent.rtmp()
    sandbox_agent.rtmp()  # a newer key: the first one is refused from now on
    sandbox_agent.start()
    ctx = kit.ctx(session=Session(rtmp_url=url, rtmp_key=key))
    await start_display(ctx)
    t0 = time.monotonic()
    with pytest.raises(ProcessExitedError) as err:
        await start_encoder(ctx)
    took = time.monotonic() - t0
    print(f"\nrefused key -> ProcessExitedError in {took:.3f} s: {err.value}")
    assert took < 1.0
    assert err.value.returncode not in (0, None)
    assert key not in str(err.value) and f"sk_…{key[-4:]}" in str(err.value)
    assert "ffmpeg" not in kit.state.processes
    assert key not in (kit.paths.logs_dir / "ffmpeg.log").read_text()
    refused = sandbox.calls(kind="ingest", event="publish_refused")
    assert refused and refused[-1].get("key", "").endswith(key[-4:])
    sandbox_agent.stop()
