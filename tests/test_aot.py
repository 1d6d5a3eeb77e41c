"""Kernels compiled ahead of time (``_nodes/aot.py``) and the in-process JIT they fall back to.

The modules are real: built by numba.pycc in a subprocess with the machine's C compiler, loaded
with a dlopen. The fallback is numba's JIT, reached as a user reaches it (``NEURALGRAPH_AOT=0``,
or no C compiler on PATH).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng
from neuralgraph._compile.fusion import FusedStep
from neuralgraph._nodes import aot
from neuralgraph._tools.profiling import hold_notes

ROOT = Path(__file__).resolve().parent.parent
#: a chord of saws (lone kernels and runs, a numpy mix), 20 peaking EQs in series (every step
#: fused: the offline driver runs), a MIDI-played poly synth (voices, envelopes, filters)
GRAPHS = ("saw_chord.toml", "bench/p3_peq.toml", "poly_saw.toml")


def _render(path: Path) -> tuple[np.ndarray, list[str]]:
    patch = ng.load_patch(path)
    engine = ng.Engine(patch)
    hold_notes(engine, 4)  # the poly synth sounds only while notes are held
    kinds = [type(s.kernel).__name__ for s in (r.state for r in engine.plan.records) if isinstance(s, FusedStep)]
    return np.asarray(engine.render(0.5)), kinds


@pytest.mark.parametrize("graph", GRAPHS)
def test_the_jit_fallback_renders_the_same_samples_as_the_compiled_modules(graph, monkeypatch):
    path = ROOT / "graphs" / graph
    monkeypatch.setenv(aot.ENV, "1")  # build modules although this process has numba imported
    # an earlier test's JIT function for the same source (any block size) would be reused
    monkeypatch.setattr(aot, "_functions", {})
    ahead, ahead_kinds = _render(path)
    monkeypatch.setenv(aot.ENV, "0")
    jit, jit_kinds = _render(path)
    assert set(ahead_kinds) == {"builtin_function_or_method"}  # extension modules' functions
    assert set(jit_kinds) == {"CPUDispatcher"} and len(jit_kinds) == len(ahead_kinds)
    assert np.abs(ahead).max() > 0.01  # it sounds
    np.testing.assert_array_equal(ahead, jit)


def test_without_a_c_compiler_kernels_compile_in_process_and_the_reason_is_said_once(tmp_path, monkeypatch):
    path = ROOT / "graphs" / "saw_chord.toml"
    monkeypatch.setenv(aot.ENV, "1")  # try to build although this process has numba imported
    expected, _ = _render(path)
    monkeypatch.setenv("NEURALGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, no cc
    monkeypatch.setattr(aot, "_functions", {})
    monkeypatch.setattr(aot, "_reported", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, kinds = _render(path)
        second, _ = _render(path)
    said = [str(w.message) for w in caught if "kernels compile in process" in str(w.message)]
    assert len(said) == 1 and "no C compiler ('gcc' is not on PATH)" in said[0], said
    assert set(kinds) == {"CPUDispatcher"} and not list((tmp_path / "cache").glob("aot/ng_*"))
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)


def test_batched_builds_jit_inside_and_build_every_missing_module_on_leaving(tmp_path, monkeypatch):
    """The test suite's warm-up (tests/kernel_warmup.py): many plans prepared in one process, their
    modules built together at the end, then loaded as any process loads them."""
    monkeypatch.setenv("NEURALGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(aot, "_functions", {})
    paths = [ROOT / "graphs" / g for g in ("saw_chord.toml", "bench/p3_peq.toml")]
    with aot.batched_builds():
        inside = [_render(path) for path in paths]
        assert not list((tmp_path / "cache").glob("aot/*/ng_*"))  # nothing built yet
    assert all(set(kinds) == {"CPUDispatcher"} for _, kinds in inside)
    monkeypatch.setattr(aot, "_functions", {})
    for path, (samples, kinds) in zip(paths, inside):
        loaded, loaded_kinds = _render(path)
        assert set(loaded_kinds) == {"builtin_function_or_method"} and len(loaded_kinds) == len(kinds)
        np.testing.assert_array_equal(loaded, samples)


CHILD = """
import json, sys
import neuralgraph_plugins.filters, neuralgraph_plugins.oscillators, neuralgraph_plugins.midi
import neuralgraph_plugins.onnx_buffers
from neuralgraph_plugins.filters import _biquad_kernel
before = "numba" in sys.modules
_biquad_kernel.compile  # still lazy: a bound method of the wrapper, no numba
still = "numba" in sys.modules
from neuralgraph._nodes.lazyjit import realise_all
realise_all()
print(json.dumps({"before": before, "still": still, "after": "numba" in sys.modules,
                  "realised": type(neuralgraph_plugins.filters._biquad_kernel).__name__}))
"""


def test_plugin_kernel_modules_import_no_numba_until_a_kernel_compiles_in_process():
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, cwd=ROOT)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"before": False, "still": False, "after": True, "realised": "CPUDispatcher"}


def test_a_kernel_module_is_rebuilt_when_a_neighbour_it_may_inline_changes(tmp_path, monkeypatch):
    """A kernel inlines its neighbours' functions (plugins/ddsp.py the oscillators' sine): an edit
    or an upgrade that changes only the neighbour must give every kernel of the package a new stamp,
    hence a new compiled module (numba's own cache checks only the kernel's file)."""
    import importlib
    import sys

    from neuralgraph._nodes import aot

    package = tmp_path / "stamped_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "caller.py").write_text("from stamped_pkg.helper import twice\n\ndef k(x):\n    return twice(x)\n")
    (package / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("stamped_pkg.caller")
    before = aot.module_stamp("stamped_pkg.caller")
    (package / "helper.py").write_text("def twice(x):\n    return 3 * x\n")
    aot._stamps.clear()
    after = aot.module_stamp("stamped_pkg.caller")
    for name in [m for m in sys.modules if m.startswith("stamped_pkg")]:
        del sys.modules[name]
    assert before != after
