"""onnx.model's overhead over a bare onnxruntime IOBinding loop, per model, run by the engine.

    python benchmarks/onnx_overhead.py [--block 128] [--units 100] [--rounds 5] [--only half]

For each model (the shipped flute decoder at 1 and 8 lanes, the drive's GRU amp, and the seven
models of the signature zoo in tests/onnx_zoo.py, built into a temporary folder) two patches are
compiled as a user's would be: ``io.input -> the model -> io.output`` and the same patch without
the model (``io.input -> io.output``). Each is run by an ``Engine`` on both of its paths:

- real time: ``Engine.process()`` block by block, what a backend's callback calls;
- offline: ``Engine.stream`` fed a signal, what ``neuralgraph render --input`` runs (one long
  render, a unit's blocks at a time; a patch whose every step is fused, with no input, would go
  through the many-block driver instead, ``_compile/driver.py``).

The node's time is the patch's time minus the model-less patch's, so what the engine costs with
or without a model (commands, the output guard, the io nodes) is not counted against it. The
baseline runs the same prepared model the same number of times (one call per lane for per-lane
models) through the same C++ entry point the node uses, with nothing else: no copies, no casts, no
state feedback. ratio = node time / baseline time. ``floor`` adds to the bare calls the least
any node must do besides: write each of its output samples once (one ``fill`` of an array the
size of its ports over the unit); a model whose outputs are many samples per call cannot be
run below it. ``loop`` is the bare calls plus what a user's own loop must do with the results to
play them: every output written at audio rate from its frames, copied (cast), each frame held
over its share of the hop, or linearly interpolated (the node's own compiled kernel), once per
call; for a model whose outputs come at another rate than the audio (multirate) that is more
than the floor's one fill, and ``rt / loop`` is the fairer ratio. Where the node runs its model
from its fused lines through onnxruntime's C API (``plugins/onnx_capi.py``), ``bare C`` is that C
session's runs alone from a compiled loop, the same number of runs: the node's own call without
the Python binding's cost per call, which ``bare`` includes. The timed functions are timed one unit after the other
(a unit: the fewest blocks holding a whole number of calls, repeated to at least 32 blocks), in a
new random order each unit, and the medians taken; on a loaded machine a preempted unit is an
outlier the median ignores. That is repeated ``--rounds`` times: each ratio printed is the median
of the rounds' ratios (for ``rt / bare`` with their range). Both patches run with no output
ceiling (the guard limiting the model's output is the patch's cost), and every fused run from its
compiled module (``NEURALGRAPH_AOT=1``, see ``main``), as in a user's process. Read the ratios,
not the microseconds.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np

import neuralgraph as ng
from neuralgraph_plugins.onnx_buffers import TensorOut
from neuralgraph_plugins.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def patch(folder: Path, name: str, sr: int, block: int, lanes: int, node: str | None, port: str | None) -> Path:
    """io.input (``lanes`` channels) -> [nodes.net] (``node``: its keys) -> io.output (its output
    ``port``), or the input straight to the output when ``node`` or ``port`` is None (a model
    with control outputs hangs off the patch: an output ramping them to audio is not its cost)."""
    text = f"""schema = 1
[engine]
sample_rate = {sr}
block_size = {block}
[nodes.src]
type = "io.input"
channels = {lanes}
[nodes.out]
type = "io.output"
channels = {lanes}
in = {'"net.' + port + '"' if node is not None and port is not None else '"src"'}
"""
    if node is not None:
        text += f'[nodes.net]\ntype = "onnx.model"\n{node}'
    path = folder / f"{name}{'' if node is not None else '_empty'}_{block}.toml"
    path.write_text(text)
    return path


def cases(tmp: Path) -> list[tuple[str, str, int, int]]:
    """(label, the [nodes.net] body, lanes, sample rate) per model."""
    from onnx_zoo import SR, ZOO

    for shipped in ("ddsp_flute.onnx", "amp_gru.onnx"):  # a patch reads models beside it
        shutil.copy(ROOT / "graphs" / "models" / shipped, tmp / shipped)
    flute_keys = 'model = "ddsp_flute.onnx"\nf0 = 440.0\nloudness = -30.0\n'
    out = [
        ("flute (block, 1 lane)", flute_keys, 1, 48000),
        ("flute (block, 8 lanes)", flute_keys, 8, 48000),
        ("drive amp_gru (stream, 1 lane)", 'model = "amp_gru.onnx"\nrate = "stream"\nx = "src"\n', 1, 48000),
    ]
    for entry in ZOO:
        entry.build(tmp / f"{entry.name}.onnx")
        body = f'model = "{entry.name}.onnx"\n{entry.audio_in} = "src"\n{entry.node}'
        rate = tomllib.loads("[nodes.net]\n" + body)["nodes"]["net"].get("rate", "block")
        out.append((f"zoo {entry.name} ({rate}, {entry.lanes} lanes)", body, entry.lanes, SR))
    return out


def engines(tmp: Path, label: str, body: str, lanes: int, sr: int, block: int) -> tuple[ng.Engine, ng.Engine]:
    """The patch with the model and without, compiled, their inputs filled with a steady noise."""
    table = tomllib.loads("[nodes.net]\n" + body)["nodes"]["net"]
    params = {k: v for k, v in table.items() if k in OnnxModel.params()}
    model = OnnxModel(**{**params, "model": str(tmp / params["model"])})
    port = next(iter(model.outputs())) if model.rate != "block" else None
    name = label.split(" (")[0].replace(" ", "_")
    # no limiting: the guard clipping a model's output (multirate's first note port holds about
    # 1.0 on this input) is the patch's cost, not the node's
    with_model = ng.Engine(ng.load_patch(patch(tmp, name, sr, block, lanes, body, port)), ceiling=math.inf)
    without = ng.Engine(ng.load_patch(patch(tmp, name, sr, block, lanes, None, port)), ceiling=math.inf)
    rng = np.random.default_rng(0)
    for engine in (with_model, without):
        if engine.plan.input is not None:
            engine.plan.input[:] = 0.1 + 0.05 * rng.standard_normal(engine.plan.input.shape)
    return with_model, without


def medians(fns: list[Callable[[], None]], units: int) -> list[float]:
    """Each function's median time over ``units`` units, the functions run in a new random order
    in each unit (a fixed order would hand one of them the caches another left, every time)."""
    times = np.zeros((len(fns), units))
    order = np.arange(len(fns))
    rng = np.random.default_rng(2)
    for u in range(-10, units):  # 10 units of warm-up
        rng.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            if u >= 0:
                times[i, u] = time.perf_counter() - t0
    return [float(np.median(t)) for t in times]


def user_loop(node: OnnxModel) -> Callable[[], None]:
    """After a bare call, what a user's loop does to play the results (module doc): each output
    tensor written into an audio-rate (lanes, K, hop) array of its own, as it would reach a
    sound card's buffer."""
    steps: list[Callable[[], None]] = []
    for out in node.outs:
        view = node.slots[0].views[out.tm.name]
        if out.resample and out.spread is None:  # interpolated: a TensorOut of our own (its ext, its hop)
            mine = TensorOut(out.tm, out.frames, node.hop, out.start, node.lanes, direct=False)
            steps.append(lambda mine=mine, view=view: mine.unpack(view))
            continue
        frames = out.frames - out.start if out.start else out.frames  # a held frame: 1
        n = len(out.tm.ports())  # the ports the patch reads (a selection of the features, or all)
        features = [slice(None)] if n == out.tm.features else [slice(k, k + 1) for k in out.tm.select]
        for part in features:
            buf = np.zeros((node.lanes, n if n == out.tm.features else 1, frames, node.hop // frames), np.float32)
            src = view[:, part, out.start : out.start + frames, None]
            steps.append(lambda buf=buf, src=src: np.copyto(buf, src, casting="unsafe"))

    def play() -> None:
        for step in steps:
            step()

    return play


def measure(with_model: ng.Engine, without: ng.Engine, block: int, units: int, rounds: int) -> tuple[int, np.ndarray]:
    """Calls per unit, and per round (rows) seconds per call (columns): the bare calls, the node
    per path (real time, offline: the patch's time minus the model-less patch's), the floor, the
    user loop and, with a C session, the bare C runs."""
    node = with_model.plan.nodes["net"]
    blocks = node.hop // math.gcd(node.hop, block) if node.rate == "frame" else 1
    blocks *= -(-32 // blocks)
    calls = blocks * block // node.hop if node.rate == "frame" else blocks
    run, bindings = node._run, node.bindings

    def bare() -> None:
        for _ in range(calls):
            for binding in bindings:
                run(binding, None)

    def realtime(engine: ng.Engine) -> Callable[[], None]:
        process = engine.process

        def go() -> None:
            for _ in range(blocks):
                process()

        return go

    signal = 0.1 * np.random.default_rng(1).standard_normal(
        (with_model.plan.input.shape[0], blocks * block * (units + 10) * rounds + blocks * block)
    )

    def offline(engine: ng.Engine) -> Callable[[], None]:
        blocks_out = engine.stream(signal.shape[1] / engine.sample_rate, input=signal.astype(np.float32))

        def go() -> None:
            for _ in range(blocks):
                next(blocks_out)

        return go

    ports, lanes, width = node.owned.shape
    sink = np.zeros((ports, lanes, width * blocks), np.float32)

    def floor() -> None:
        bare()
        sink.fill(0.5)

    play = user_loop(node)

    def loop() -> None:
        for _ in range(calls):
            for binding in bindings:
                run(binding, None)
            play()

    fns = [realtime(with_model), realtime(without), offline(with_model), offline(without), bare, floor, loop]
    if node.capi is not None:
        fns.append(bare_c(node, calls))
    per_round = []
    for _ in range(rounds):
        rt_model, rt_empty, off_model, off_empty, base, least, own, *c_base = medians(fns, units)
        node_rt, node_off = rt_model - rt_empty, off_model - off_empty
        per_round.append([base, node_rt, node_off, least, own, *c_base])
    return calls, np.array(per_round) / calls


def bare_c(node: OnnxModel, calls: int) -> Callable[[], None]:
    """The C API session's runs alone (``plugins/onnx_capi.py``, what the fused lines call), from
    a compiled loop: the same number of runs as ``bare``, without Python around each."""
    import numba

    from neuralgraph_plugins.onnx_capi import run_binding

    run = getattr(run_binding, "realised", lambda: run_binding)()
    table, bindings = node.capi.table, len(node.bindings)

    @numba.njit(nogil=True)
    def loop(table: np.ndarray, calls: int, bindings: int) -> None:  # pragma: no cover - compiled
        for _ in range(calls):
            for k in range(bindings):
                run(table, k)

    loop(table, 0, bindings)
    return lambda: loop(table, calls, bindings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--units", type=int, default=100, help="timed units per round (see the module doc)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per model; the figures are their medians")
    ap.add_argument("--only", default="", help="only the models whose label contains this text")
    args = ap.parse_args()
    # Every plan's fused runs from their compiled modules (built once if missing), as in a user's
    # process, which imports no numba: this one does (the baselines' compiled loop, the user
    # loop's kernels), and with numba imported aot.compiled would give every later model's runs
    # numba's JIT dispatcher instead, whose type checks cost about 0.1 us per block.
    os.environ["NEURALGRAPH_AOT"] = "1"
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    print(
        f"{'model':<36} {'calls':>5} {'bare us':>8} {'rt us':>8} {'off us':>8} "
        f"{'rt / bare':>10} {'(range)':>11} {'off / bare':>10} {'floor / bare':>13} {'loop / bare':>12} "
        f"{'rt / loop':>10} {'bare C us':>9} {'rt / bare C':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, body, lanes, sr in cases(Path(tmp)):
            if args.only not in label:
                continue
            with_model, without = engines(Path(tmp), label, body, lanes, sr, args.block)
            calls, t = measure(with_model, without, args.block, args.units, args.rounds)
            bare, rt, off, least, own = (float(np.median(t[:, i])) for i in range(5))
            rt_bare = t[:, 1] / t[:, 0]  # each round's ratio: its figures were timed side by side
            ratio = {
                name: float(np.median(t[:, i] / t[:, d]))
                for name, i, d in (("off", 2, 0), ("floor", 3, 0), ("loop", 4, 0), ("rt/loop", 1, 4))
            }
            c_text = (
                f"{1e6 * np.median(t[:, 5]):>9.1f} {np.median(t[:, 1] / t[:, 5]):>11.2f}"
                if t.shape[1] > 5
                else f"{'-':>9} {'-':>11}"
            )
            print(
                f"{label:<36} {calls:>5} {1e6 * bare:>8.1f} {1e6 * rt:>8.1f} {1e6 * off:>8.1f} "
                f"{np.median(rt_bare):>10.2f} {f'{rt_bare.min():.2f}-{rt_bare.max():.2f}':>11} {ratio['off']:>10.2f} "
                f"{ratio['floor']:>13.2f} {ratio['loop']:>12.2f} {ratio['rt/loop']:>10.2f} " + c_text,
                flush=True,
            )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
