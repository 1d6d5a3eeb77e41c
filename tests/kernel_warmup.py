"""Builds the compiled kernel modules of the shipped graphs in one batch (run by ``conftest.py``).

Many tests render a shipped graph with the command line, in a process without numba: each such
process that finds a module missing builds it in a compile subprocess, which imports numba and
sets pycc up again (seconds each, paid by the test). This script renders every shipped graph for a
moment as ``neuralgraph render`` does, in one process, inside ``aot.batched_builds``: the kernels
compile in process by numba's JIT (which also warms numba's disk cache for the test process) and
every missing module is built by ONE compile subprocess at the end. The suite starts it in the
background, on the second core, while its first tests run; a test never depends on it (a module
it has not built yet is built by whoever needs it, as on any cold machine).

    python tests/kernel_warmup.py [GRAPH.toml ...]   (default: every graph under graphs/)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from neuralgraph._nodes import aot
from neuralgraph._tools.cli import main

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


def warm_up(paths: list[Path]) -> int:
    """Render each of ``paths`` for 0.1 s with the command line; the modules they miss are built
    together at the end. The number of graphs that did not render (their modules are skipped)."""
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ng-warmup-") as tmp, aot.batched_builds():
        for k, path in enumerate(paths):
            failed += main(["render", str(path), "-o", str(Path(tmp, f"{k}.wav")), "--seconds", "0.1", "-q"]) != 0
    return failed


if __name__ == "__main__":
    chosen = [Path(p) for p in sys.argv[1:]] or sorted(GRAPHS.rglob("*.toml"))
    sys.exit(1 if warm_up(chosen) else 0)
