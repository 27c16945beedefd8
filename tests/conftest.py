"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.cdp import Browser, find_chromium

DATA = Path(os.environ.get("VIDCLUSTER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when it is not there."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data not available: {path}")
    return path


@pytest.fixture
def shared_data():
    return data_path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium for the browser tests of one module (skips without a Chromium binary)."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary found (install it with `apt-get install chromium`)")
    b = Browser(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()
