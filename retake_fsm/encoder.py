"""ffmpeg, as the platform publishes it: the argv built from `settings.encoder`, and
the parser for its `-progress` output (key=value lines, each block ending with
`progress=continue` or `progress=end`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .settings import EncoderSettings

ENCODER_PROC = "ffmpeg"  # the encoder's name in the runner and in state.processes


def build_argv(enc: EncoderSettings, display: str, publish_url: str, progress: Path) -> list[str]:
    """The published encoder command (retake-api.md "Encoder"), plus `-progress`."""
    stats_period = f"{enc.stats_period:g}"
    return [
        enc.binary, "-hide_banner", "-nostats", "-loglevel", "warning",
        "-progress", str(progress), "-stats_period", stats_period,
        "-thread_queue_size", str(enc.thread_queue_size),
        "-f", "x11grab", "-video_size", enc.size, "-framerate", str(enc.fps), "-i", display,
        "-f", "lavfi", "-i", f"anullsrc=channel_layout=stereo:sample_rate={enc.audio_rate}",
        "-c:v", "libx264", "-preset", enc.preset, "-tune", enc.tune,
        "-b:v", enc.video_bitrate, "-maxrate", enc.maxrate, "-bufsize", enc.bufsize,
        "-pix_fmt", enc.pix_fmt, "-g", str(enc.gop),
        "-c:a", "aac", "-b:a", enc.audio_bitrate,
        *enc.extra_args,
        "-f", "flv", publish_url,
    ]


class ProgressParser:
    """Incremental `-progress` parser: feed it text as it arrives, get whole blocks back."""

    def __init__(self) -> None:
        self._buf = ""
        self._block: dict[str, str] = {}
        self.skip_partial = False  # started mid-file: drop everything up to the first block end

    def feed(self, text: str) -> Iterator[dict[str, str]]:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            key, sep, value = line.strip().partition("=")
            if not sep:
                continue
            self._block[key] = value
            if key == "progress":
                block, self._block = self._block, {}
                if self.skip_partial:
                    self.skip_partial = False
                    continue
                yield block
