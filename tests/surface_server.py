"""A real ``neuralgraph serve`` server for the tests: a patch file, the clock backend, uvicorn on
127.0.0.1 at a free port, in this process (so tests can also tap the engine directly)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from helpers import patch_toml

import neuralgraph as ng
from neuralgraph._errors import display_path

SINE = patch_toml(
    name="Test sine",
    spaced=True,
    nodes="""[nodes.osc]
type = "osc.sine"
freq = 220.0

[nodes.amp]
type = "math.mul"
in = "osc"
gain = 0.5

[nodes.out]
type = "io.output"
channels = 1
in = "amp"
""",
)


def start(path: Path, registry: Any = None, backend: str = "none", **options: Any) -> Any:
    """Serve the patch at ``path`` (default: the clock backend); the caller stops it."""
    pytest_import()
    from neuralgraph._tools.serve import Server, open_engine_backend
    from neuralgraph._tools.serve.surface import Surface

    registry = registry or ng.default_registry()

    def load(source: Any) -> ng.Patch:
        if isinstance(source, Path):
            return ng.load_patch(source, registry=registry)
        return ng.load_patch(source, text_name=display_path(path), base_dir=path.parent, registry=registry)

    engine = ng.Engine(load(path))
    playing = open_engine_backend(backend, engine, **options)
    server = Server(Surface(path, playing, load), "127.0.0.1", 0, "test-token-0123456789")
    playing.start()
    return server.start()


@contextmanager
def serving(folder: Path, text: str, name: str = "sine.toml", **kw: Any) -> Iterator[Any]:
    """Write ``text`` to ``folder/name`` and serve it (see :func:`start`) for the ``with`` block."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    server = start(path, **kw)
    try:
        yield server
    finally:
        server.stop()


def pytest_import() -> None:
    import pytest

    pytest.importorskip("starlette", reason="neuralgraph serve needs the 'serve' extra (starlette, uvicorn)")
    pytest.importorskip("uvicorn", reason="neuralgraph serve needs the 'serve' extra (starlette, uvicorn)")


def fresh(tap: Any, seconds: float) -> np.ndarray:
    """``seconds`` of audio the engine plays from now on, read through ``tap`` (lane 0)."""
    tap.read()  # drop what is older
    frames = int(seconds * tap.sample_rate)
    got: list[np.ndarray] = []
    have = 0
    deadline = time.monotonic() + 20.0 + 4 * seconds
    while have < frames:
        assert time.monotonic() < deadline, "the engine stopped playing"
        chunk = tap.read()
        if chunk is None:
            time.sleep(0.01)
            continue
        got.append(chunk.data[0])
        have += chunk.frames
    return np.concatenate(got)[:frames]
