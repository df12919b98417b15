"""`retake-fsm sandbox`: run the local retake.tv in the foreground until Ctrl-C.

`RETAKE_SANDBOX_NGINX` names another nginx binary (default: `nginx` on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from ..app import App
    from ..sandbox.faults import FaultRule
    from ..sandbox.platform import Platform


def _faults(specs: list[str]) -> tuple[list[FaultRule], int]:
    from ..sandbox.faults import parse_spec

    rules: list[FaultRule] = []
    seed = 0
    for spec in specs:
        found, spec_seed = parse_spec(spec)
        rules.extend(found)
        if spec_seed is not None:
            seed = spec_seed
    return rules, seed


def _announce(platform: Platform) -> None:
    e = platform.endpoints
    print(f"retake sandbox on {e.root_url} (viewer page: {e.root_url}/)", flush=True)
    print(f"RTMP ingest: {e.rtmp_url}", flush=True)
    print("point retake-fsm at it:", flush=True)
    print(f"export RETAKE_BASE_URL={e.base_url}", flush=True)
    print(f"export RETAKE_SKILL_URL={e.root_url}/skill.json", flush=True)
    print(f"admin API: {e.root_url}/_sandbox/info   (Ctrl-C stops everything)", flush=True)


def main(args: argparse.Namespace, app: App) -> int:
    try:
        from ..sandbox.server import SandboxConfig, serve
    except ImportError as exc:
        raise InputError(
            f"the sandbox needs its extra dependencies ({exc.name} is missing)",
            hint="pip install 'retake-fsm[sandbox]'",
        ) from None
    rules, seed = _faults(list(args.faults or []))
    for name in ("port", "rtmp_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise InputError(f"--{name.replace('_', '-')} {value}: use 0-65535 (0 = any free port)")
    with tempfile.TemporaryDirectory(prefix="retake-sandbox-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp)
        config = SandboxConfig(data_dir=data_dir, port=args.port, rtmp_port=args.rtmp_port,
                               faults=rules, seed=seed,
                               tweet_has_code=getattr(args, "auto_verify", None),
                               nginx_binary=os.environ.get("RETAKE_SANDBOX_NGINX") or None)
        try:
            asyncio.run(serve(config, on_ready=_announce))
        except KeyboardInterrupt:  # pragma: no cover - serve handles SIGINT itself
            pass
    print("retake sandbox stopped", file=sys.stderr, flush=True)
    return 0
