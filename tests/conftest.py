"""Shared fixtures: where the reference networks and datasets beside the checkout live."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"


@pytest.fixture
def reference_dir():
    """Return a function that gives a reference network's folder or skips with the reason."""

    def get(name: str) -> Path:
        folder = REFERENCE / name
        if not folder.is_dir():
            pytest.skip(
                f"reference network {folder} not found (it lives in ../shared beside the checkout)"
            )
        return folder

    return get
