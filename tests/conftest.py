"""Shared fixtures. Each area keeps its fixtures in tests/fixtures/<area>.py (loaded here)."""

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if not p.stem.startswith("_")
)
