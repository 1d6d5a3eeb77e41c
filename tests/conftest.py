from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import testnodes  # noqa: E402

import neuralgraph as ng  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry() -> ng.Registry:
    """Every installed plugin plus the test node types."""
    return ng.Registry.load(plugins={"testnodes": testnodes})


@pytest.fixture
def load(registry):
    """Load a patch from a dict of nodes (schema and output added when missing)."""

    def _load(nodes: dict[str, Any], **extra: Any) -> ng.Patch:
        data = {"schema": 1, "nodes": nodes}
        data.update(extra)
        return ng.load_patch(data, registry=registry)

    return _load


@pytest.fixture
def write_patch(tmp_path):
    """Write TOML text to a file in a temporary folder and return its path."""

    def _write(text: str, name: str = "patch.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
