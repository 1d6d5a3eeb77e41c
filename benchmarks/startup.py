"""Start-up and memory of a 1 s render beside baselines from the same run, and compile time against size.

    python benchmarks/startup.py [--runs 5] [--sizes 100 1000 10000] [--peers DIR] [--phases] [--no-compile]

1. **Start-up.** Each command is a fresh process started through GNU ``time`` (as the peer
   harness does: a process forked from this one would report this one's pages as its peak RSS),
   its CPU (user + sys) from ``os.wait4`` and its peak RSS from ``time``. The commands are
   interleaved, ``--runs`` rounds, and the median is printed with the ratio to ``python -c pass``
   and to pyo. The baselines are the interpreter alone, ``import numpy``, and ``import numba``
   loading one cached kernel (the floor of any render that runs numba code), as numba does it and
   with neuralgraph's light cache load (``_nodes/jit.py``); pyo renders the same
   1 s of P1 (8 saws, low-pass, mix) with the peer harness's script, if its venv exists
   (``$PEERS_WORK``, default ``~/.cache/neuralgraph-peers``) and its script is in ``--peers``
   (default ``../shared/peers`` beside the checkout; its README.md).
   neuralgraph renders with the kernel caches warm (one render before the rounds fills them).
2. **Compile time**, in this process: ``load_patch`` + ``Engine`` (compile, prepare, warm-up
   block) for the generated chains of ``benchmarks/compile_scaling.py`` at each size, CPU and
   wall seconds, microseconds per node and that cost per node relative to the smallest size
   (1.0 for linear growth). Each size is built once first (its fused kernels' cache filled).
3. ``--phases`` (or patches named as arguments): seconds from launch to the end of import,
   ``load_patch`` and the first block, cold and warm kernel caches (the earlier form of this
   benchmark).

The package's modules are byte-compiled first, as ``pip install`` does for a wheel: an editable
checkout under ``PYTHONDONTWRITEBYTECODE=1`` otherwise recompiles every module at every start
(about 0.1 s more). ``--no-compile`` measures the tree as it is.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The peer harness (pyo's script), beside the project's checkout as in issue 17: ``--peers`` to move.
PEERS = ROOT.parent / "shared" / "peers"
PEERS_PY = Path(os.environ.get("PEERS_WORK", Path.home() / ".cache" / "neuralgraph-peers")) / ".venv" / "bin" / "python"

KERNEL = """
import numba, numpy
@numba.njit(cache=True)
def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s
"""


def ng_render(patch: Path, block: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "neuralgraph", "render", str(patch), "-o", "{out}", "--seconds", "1"]
    return cmd + (["--block-size", str(block)] if block else [])


def commands(work: Path, peers: Path) -> dict[str, list[str]]:
    """The commands compared, by label; ``{out}`` is replaced by a WAV path in ``work``."""
    (work / "kernel_mod.py").write_text(KERNEL)
    numba_one = (
        f"import sys; sys.path.insert(0, {str(work)!r}); import numpy, kernel_mod; kernel_mod.total(numpy.ones(4))"
    )
    light = "from neuralgraph._nodes.jit import use_light_cache_loads; use_light_cache_loads(); "
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
        "numba, one cached kernel": [sys.executable, "-c", numba_one],
        "numba, one cached kernel, light": [sys.executable, "-c", light + numba_one],
        "neuralgraph render saw_chord": ng_render(ROOT / "graphs" / "saw_chord.toml"),
        "neuralgraph render P1 (block 64)": ng_render(ROOT / "graphs" / "bench" / "p1_saw_filter.toml", 64),
    }
    pyo_script = peers / "engines" / "pyo_patch.py"
    if PEERS_PY.exists() and pyo_script.exists():
        probe = subprocess.run([str(PEERS_PY), "-c", "import pyo"], capture_output=True, env=_env())
        if probe.returncode == 0:
            cmds["pyo P1 (block 64)"] = [
                str(PEERS_PY),
                str(pyo_script),
                "--patch",
                "P1",
                "--dur",
                "1",
                "--out",
                "{out}",
            ]
    return cmds


def _env() -> dict[str, str]:
    return dict(os.environ, PYO_GUI_WX="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def measure(cmd: list[str], work: Path) -> tuple[float, float]:
    """CPU seconds (user + sys) and peak RSS in MB of one run of ``cmd``."""
    out, stamp = work / "out.wav", work / "time.txt"
    argv = ["/usr/bin/time", "-o", str(stamp), "-f", "%M"] + [a.replace("{out}", str(out)) for a in cmd]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work, env=_env())
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime, int(stamp.read_text().split()[-1]) / 1024


def startup_table(runs: int, peers: Path) -> None:
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs GNU time (/usr/bin/time, Debian package `time`) for the peak RSS")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cmds = commands(work, peers)
        for cmd in cmds.values():  # warm: kernel caches filled, files in the page cache
            measure(cmd, work)
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in cmds}
        for _ in range(runs):
            for label, cmd in cmds.items():
                results[label].append(measure(cmd, work))
    cpu = {k: statistics.median(c for c, _ in v) for k, v in results.items()}
    rss = {k: statistics.median(m for _, m in v) for k, v in results.items()}
    pyo = cpu.get("pyo P1 (block 64)")
    print(f"Start-up of a 1 s render: CPU (user + sys) and peak RSS, median of {runs} interleaved runs")
    print(f"{'command':<34} {'CPU s':>7} {'÷ python':>9} {'÷ pyo':>7} {'peak RSS MB':>12}")
    for label in cmds:
        vs_pyo = f"{cpu[label] / pyo:7.1f}" if pyo else f"{'-':>7}"
        print(f"{label:<34} {cpu[label]:7.3f} {cpu[label] / cpu['python -c pass']:9.1f} {vs_pyo} {rss[label]:12.0f}")
    if pyo is None:
        print(f"(pyo not measured: needs {PEERS_PY} with pyo, made by the peer harness, and its script in {peers})")
    print(flush=True)


def compile_table(sizes: list[int]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compile_scaling import patch_data

    import neuralgraph as ng

    def build(n: int) -> tuple[float, float]:
        data = patch_data(n)
        c0, w0 = time.process_time(), time.perf_counter()
        ng.Engine(ng.load_patch(data, max_nodes=len(data["nodes"])), sample_rate=48000, block_size=64)
        return time.process_time() - c0, time.perf_counter() - w0

    print("Compile time: load_patch + Engine (compile, prepare, warm-up block), generated chains")
    print(f"{'nodes':>6} {'CPU s':>7} {'wall s':>7} {'µs/node (CPU)':>14} {'per node ÷ smallest':>20}")
    first = None
    for n in sizes:
        build(n)  # fills the fused-kernel cache for this shape
        cpu, wall = build(n)
        per_node = 1e6 * cpu / n
        first = first or per_node
        print(f"{n:>6} {cpu:7.3f} {wall:7.3f} {per_node:14.0f} {per_node / first:20.2f}", flush=True)
    print()


PHASE_CHILD = r"""
import json, sys, time
stamps = {}
import neuralgraph._tools.cli
stamps["import"] = time.perf_counter()
from neuralgraph import Engine, load_patch
patch = load_patch(sys.argv[1])
stamps["load_patch"] = time.perf_counter()
engine = Engine(patch)  # compiles, prepares and runs the first (warm-up) block
stamps["first block"] = time.perf_counter()
print(json.dumps(stamps))
"""
PHASES = ("import", "load_patch", "first block")


def phase_table(patches: list[Path], runs: int) -> None:
    def run_once(patch: Path, cache_dir: str) -> dict[str, float]:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NEURALGRAPH_CACHE_DIR=cache_dir)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", PHASE_CHILD, str(patch)], capture_output=True, text=True, env=env, check=True
        )
        stamps = json.loads(proc.stdout.strip().splitlines()[-1])
        return {k: v - t0 for k, v in stamps.items()}

    print("Seconds from launch to the end of each phase (median of runs); cold: empty kernel caches")
    print(f"{'patch':<22} {'cache':<5} " + " ".join(f"{p:>12}" for p in PHASES))
    for patch in patches:
        for label in ("cold", "warm"):
            results = []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as fresh:
                    if label == "warm":
                        run_once(patch, fresh)  # fill the caches
                    results.append(run_once(patch, fresh))
            medians = [statistics.median(r[p] for r in results) for p in PHASES]
            print(f"{patch.name:<22} {label:<5} " + " ".join(f"{m:>12.3f}" for m in medians), flush=True)


def byte_compile() -> None:
    import neuralgraph
    import neuralgraph_plugins

    for package in (neuralgraph, neuralgraph_plugins):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    print("(neuralgraph and neuralgraph_plugins byte-compiled first, as pip install does)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patches", nargs="*", type=Path, help="patches for the phase table (implies --phases)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument(
        "--phases",
        nargs="*",
        type=Path,
        metavar="PATCH",
        help="also the phase table (default patches: P1 and subtractive.toml)",
    )
    parser.add_argument("--no-compile", action="store_true", help="do not byte-compile the package first")
    parser.add_argument("--peers", type=Path, default=PEERS, help="the peer harness folder (default: %(default)s)")
    args = parser.parse_args()
    if not args.no_compile:
        byte_compile()
    startup_table(args.runs, args.peers)
    if args.sizes:
        compile_table(args.sizes)
    if args.phases is not None or args.patches:
        default = [ROOT / "graphs" / "bench" / "p1_saw_filter.toml", ROOT / "graphs" / "subtractive.toml"]
        phase_table(args.patches + (args.phases or []) or default, max(1, args.runs // 2))


if __name__ == "__main__":
    main()
