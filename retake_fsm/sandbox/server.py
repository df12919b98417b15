"""Run the sandbox: API (uvicorn) + RTMP relay + nginx-rtmp, in one asyncio loop.

`serve()` binds the API socket itself (so `--port 0` works and the real port
is known before anything else starts), starts nginx with callbacks to that
port, puts the relay in front of nginx, writes `<data_dir>/sandbox.json`
(ports and PIDs, for tests and scripts), runs until SIGINT/SIGTERM, and then
stops the relay and nginx by the PID it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from .app import build_app
from .faults import FaultRule, Faults
from .nginx import Nginx
from .platform import Platform
from .relay import RtmpRelay

READY_FILE = "sandbox.json"


@dataclass
class SandboxConfig:
    data_dir: Path
    port: int = 8787
    rtmp_port: int = 1935
    host: str = "127.0.0.1"
    faults: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    tweet_has_code: bool | None = None
    ingest: bool = True  # False: API only (no nginx, no relay)
    nginx_binary: str | None = None  # default: `nginx` on PATH, else /usr/sbin/nginx


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: the sandbox owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(config: SandboxConfig,
                on_ready: Callable[[Platform], None] | None = None) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    platform = Platform(config.data_dir, faults=Faults(config.faults, config.seed),
                        tweet_has_code=config.tweet_has_code)
    try:
        api_sock = _bind(config.host, config.port)
    except OSError as exc:
        from ..errors import InputError

        raise InputError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}",
                         hint="pick another --port (0 = any free port)") from None
    platform.endpoints.host = config.host
    platform.endpoints.api_port = api_sock.getsockname()[1]
    uv = _Server(uvicorn.Config(build_app(platform), log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, lifespan="off"))
    ready_file = config.data_dir / READY_FILE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nginx: Nginx | None = None
    relay: RtmpRelay | None = None
    server_task = asyncio.create_task(uv.serve(sockets=[api_sock]))
    try:
        while not uv.started:
            if server_task.done():
                server_task.result()
                return
            await asyncio.sleep(0.02)
        if config.ingest:
            nginx = Nginx(config.data_dir / "nginx", platform.endpoints.api_port,
                          binary=config.nginx_binary)
            platform.nginx = nginx
            await nginx.start()
            relay = RtmpRelay(nginx.port)
            platform.relay = relay
            try:
                platform.endpoints.rtmp_port = await relay.start(config.rtmp_port, config.host)
            except OSError as exc:
                from ..errors import InputError

                raise InputError(f"cannot listen on {config.host}:{config.rtmp_port}: "
                                 f"{exc.strerror}",
                                 hint="pick another --rtmp-port (0 = any free port)") from None
            platform.endpoints.nginx_port = nginx.port
        _write_ready(ready_file, platform)
        if on_ready is not None:
            on_ready(platform)
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await platform.close()
        if relay is not None:
            await relay.stop()
        if nginx is not None:
            await nginx.stop()
        uv.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server_task, 5.0)
        with contextlib.suppress(FileNotFoundError):
            ready_file.unlink()


def _write_ready(path: Path, platform: Platform) -> None:
    e = platform.endpoints
    info = {
        "pid": os.getpid(), "root_url": e.root_url, "base_url": e.base_url,
        "rtmp_url": e.rtmp_url, "skill_url": f"{e.root_url}/skill.json",
        "admin_url": f"{e.root_url}/_sandbox", "api_port": e.api_port,
        "rtmp_port": e.rtmp_port, "nginx_port": e.nginx_port,
        "nginx_pid": platform.nginx.pid if platform.nginx else None,
        "nginx_create_time": platform.nginx.create_time if platform.nginx else None,
        "nginx_workers": platform.nginx.worker_pids() if platform.nginx else [],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2), "utf-8")
    tmp.replace(path)
