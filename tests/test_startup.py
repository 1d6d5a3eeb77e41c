"""Start-up and compile scaling: what a render without a model imports, and compile work per node.

docs/performance.md, "Start-up and memory", gives the measured figures (benchmarks/startup.py);
these tests hold the mechanisms that produced them, without timing anything.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent

#: Loaded only when a patch or command needs them (a model, a cycle to report, a plot, numba's
#: BLAS probe): a render of a patch without any of those must not import them.
LAZY = ("onnxruntime", "matplotlib", "networkx", "scipy.linalg")

CHILD = """
import json, sys
import neuralgraph
imported = {"import": sorted(m for m in sys.modules if m in LAZY + ("numba",))}
from neuralgraph._tools.cli import main
status = main(["render", sys.argv[1], "-o", sys.argv[2], "--seconds", "0.5"])
imported["render"] = sorted(m for m in sys.modules if m in LAZY)
imported["numba"] = "numba" in sys.modules
imported["status"] = status
print(json.dumps(imported))
"""


def _render_in_child(patch: Path, out: Path) -> dict:
    code = f"LAZY = {LAZY!r}\n" + CHILD
    proc = subprocess.run(
        [sys.executable, "-c", code, str(patch), str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_render_without_a_model_imports_no_numba_model_runtime_plot_or_graph_library(tmp_path):
    patch = ROOT / "graphs" / "saw_chord.toml"
    _render_in_child(patch, tmp_path / "first.wav")  # fills the kernel caches if they are cold
    seen = _render_in_child(patch, tmp_path / "chord.wav")
    assert seen["status"] == 0
    assert seen["import"] == [], "import neuralgraph alone loads none of them, nor numba"
    assert seen["render"] == []
    # the kernels came from compiled modules in the cache (_nodes/aot.py): numba was never imported
    assert seen["numba"] is False
    audio, rate = sf.read(tmp_path / "chord.wav")
    assert rate == 48000 and audio.shape == (24000, 2)
    # the A major chord is there: its root, 220 Hz, is the strongest partial below 300 Hz
    spectrum = np.abs(np.fft.rfft(audio[:, 0] * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    low = freqs < 300
    assert abs(freqs[low][np.argmax(spectrum[low])] - 220.0) < 2.0


def test_a_patch_with_a_cycle_is_still_reported_with_its_path(write_patch):
    # networkx is imported only for this case now: the message is unchanged
    path = write_patch(
        'schema = 1\n[nodes.a]\ntype = "math.mul"\nin = "b"\n[nodes.b]\ntype = "math.mul"\nin = "a"\n'
        '[nodes.out]\ntype = "io.output"\nin = "b"\n'
    )
    try:
        ng.load_patch(path)
    except ng.PatchError as exc:
        text = str(exc)
    else:
        raise AssertionError("a cycle was accepted")
    assert "NG124" in text and "cycle a -> b -> a" in text and "patch.toml:" in text
    assert gc.isenabled(), "a load that fails resumes the collector it paused"


def _chain(n: int) -> dict:
    """benchmarks/compile_scaling.py's patch: sine -> mul links, every tenth gain from the previous
    link, every mul also summing the previous link (fan-out, mix steps, buffer reuse)."""
    nodes: dict = {}
    prev = None
    for i in range(n // 2):
        nodes[f"s{i}"] = {"type": "osc.sine", "freq": 100.0 + i % 500}
        gain = f"m{i - 1}" if prev is not None and i % 10 == 0 else 0.5
        nodes[f"m{i}"] = {"type": "math.mul", "in": [f"s{i}"] + ([prev] if prev else []), "gain": gain}
        prev = f"m{i}"
    nodes["out"] = {"type": "io.output", "channels": 1, "in": prev}
    return {"schema": 1, "nodes": nodes}


def _compile(data: dict) -> ng.Engine:
    # fuse=False, warmup=False: no kernel compiles or loads, whose cost does not depend on the
    # node count's growth but on the disk cache (cold on a clean CI machine: minutes)
    patch = ng.load_patch(data, max_nodes=len(data["nodes"]))
    return ng.Engine(patch, sample_rate=48000, block_size=64, fuse=False, warmup=False)


def _calls(n: int) -> int:
    """Function calls (Python and builtin) made by loading and compiling the n-node chain."""
    data = _chain(n)
    profile = cProfile.Profile()
    profile.enable()
    engine = _compile(data)
    profile.disable()
    assert len(engine.plan.order) == len(data["nodes"])
    return sum(stat[1] for stat in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]


def _cpu(n: int, runs: int) -> float:
    """The least CPU time (this process's, not wall time) of ``runs`` loads and compiles of the chain."""
    data = _chain(n)
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        _compile(data)
        best = min(best, time.process_time() - start)
    return best


def test_compile_work_per_node_does_not_grow_with_the_patch():
    _compile(_chain(10))  # imports and plugin loading out of the way
    small, large = _calls(1000), _calls(10000)
    # Counted, not timed: a linear compile makes the same calls per node at both sizes (a few
    # per-patch calls make the small one slightly dearer per node). A step that calls something
    # for every node per node multiplies the calls per node by about 10 between these sizes;
    # 1.25 leaves room for nothing of the kind.
    assert (large / 10000) / (small / 1000) < 1.25, (small, large)
    # A loop that makes no call (a comprehension over every edge, a list.index) is not counted:
    # for it, the ratio of CPU times of the two sizes, in the same test. Linear is 10 (measured
    # 10.6-11.3 on a loaded machine: CPU time, the least of a few runs, is not the wall clock
    # load stretches); one comprehension over every edge per node in the lane count made it 29.5.
    # 20 sits between them, with room for noise on both sides.
    ratio = _cpu(10000, 2) / _cpu(1000, 3)
    assert ratio < 20, ratio


def test_the_garbage_collector_does_not_run_while_a_large_patch_compiles():
    # Its full collections scan the whole heap and came more often as the patch grew: 702 young,
    # 64 middle and 5 full collections for this 10 000-node patch, 1.3 of 1.8 s of CPU and the
    # super-linear part of it (_nodes/gcpause.py). Paused inside load_patch and Engine, it may run
    # once when load_patch returns (the objects made while it was paused count towards its next
    # young collection, one linear pass); never a full one.
    data = _chain(10000)
    collections = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    enabled = gc.isenabled()
    try:
        _compile(data)
    finally:
        gc.callbacks.remove(count)
    assert 2 not in collections and len(collections) <= 2, collections
    assert gc.isenabled() == enabled, "the collector is left as it was"


def test_the_collector_pause_nests_and_restores_a_disabled_collector():
    from neuralgraph._nodes.gcpause import gc_paused

    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the inner block leaving does not resume it"
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "a collector the host disabled stays disabled"
    finally:
        gc.enable()


def test_the_environment_does_not_hide_a_lazy_import():
    # the check above would pass vacuously if the test process itself had none of them installed
    for name in ("onnxruntime", "networkx", "scipy.linalg"):
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, env=dict(os.environ))
        assert proc.returncode == 0, f"{name} is a dependency and must be importable"


THREADS = """
import os, sys
import neuralgraph as ng
ng.Engine(ng.load_patch(sys.argv[1]), sample_rate=48000, block_size=64).render(0.5)
print(len(os.listdir("/proc/self/task")), os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def _threads_after_render(blas: str | None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if blas is not None:
        env["OPENBLAS_NUM_THREADS"] = blas
    patch = str(ROOT / "graphs" / "saw_chord.toml")
    proc = subprocess.run([sys.executable, "-c", THREADS, patch], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    count, setting = proc.stdout.split()
    return int(count), setting


def test_a_render_runs_on_one_thread_no_blas_workers_spinning_beside_it():
    # numpy's OpenBLAS starts a worker per core as it loads, each busy-waiting first (0.13 s of CPU
    # a worker here): neuralgraph asks for none before numpy loads
    assert _threads_after_render(None) == (1, "1")


def test_a_blas_thread_count_the_user_set_is_kept():
    count, setting = _threads_after_render("2")
    assert setting == "2"
    assert count == 2, "OpenBLAS started the worker the user asked for"
