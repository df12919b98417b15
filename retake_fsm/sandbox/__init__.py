"""A local retake.tv: the agent API, a real RTMP ingest, faults, a viewer page.

`retake-fsm sandbox` runs it in the foreground; tests start it through the
`sandbox` fixture (tests/fixtures/sandbox.py). docs/sandbox.md describes the
admin API and the fault specs.
"""

from .faults import FaultRule, Faults, parse_spec
from .server import READY_FILE, SandboxConfig, serve

__all__ = ["READY_FILE", "FaultRule", "Faults", "SandboxConfig", "parse_spec", "serve"]
