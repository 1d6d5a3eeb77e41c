"""Per-block cost of the neural nodes: onnx.model with the shipped models, the DDSP synthesis nodes,
and the whole neural flute patch; onnx.model's overhead over a bare onnxruntime call; the real-time
factors of an 8-voice neural flute and an 8-voice neural violin.

    python benchmarks/onnx_node.py [--blocks 2000] [--sample-rate 48000] [--only cost|overhead|rtf]

``cost``: median and p99 microseconds per block and the share of the block period (one core).
``overhead``: the same model and inputs through ``onnx.model``'s ``process`` (port copies in and
out, IOBinding run, state copy) and through bare onnxruntime on a session with the same options:
``session.run`` with a feed dict (outputs allocated by onnxruntime) and ``run_with_iobinding`` on
preallocated, bound arrays; the ratios are the framework's overhead.
``rtf``: graphs/neural_flute.toml and graphs/neural_violin.toml (``--patches`` to choose) with
``keys.count = 8`` and 8 notes held (engine.note_on), the
whole engine block (voices, envelopes, decoder for 8 lanes in one call, harmonic and noise banks,
mix): real-time factor = compute time / audio time (below 1 keeps up on one core).
Timing on a shared VM is noisy (docs/performance.md): read orders of magnitude.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate
from neuralgraph_plugins.ddsp import FilteredNoise, HarmonicSynth
from neuralgraph_plugins.onnx_model import OnnxModel, open_session

ROOT = Path(__file__).resolve().parent.parent


def time_calls(fn, blocks: int) -> tuple[float, float]:
    for _ in range(50):
        fn()
    times = np.empty(blocks)
    for i in range(blocks):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6), float(np.percentile(times, 99) * 1e6)


def node_runner(node, lanes: int, block: int, sr: float, values: dict[str, float]):
    ctx = PrepareContext(sample_rate=sr, block_size=block, lanes=lanes, input_lanes={}, output_lanes={})
    node.prepare(ctx)

    def width(decl) -> int:
        return 1 if decl.rate is Rate.CONTROL else block

    rng = np.random.default_rng(0)
    ins = Ports(
        {
            p: np.full((lanes, width(d)), values.get(p, 0.1), np.float32)
            + (0.01 * rng.standard_normal((lanes, width(d)))).astype(np.float32)
            for p, d in node.inputs().items()
        }
    )
    own = node.output_buffers()  # as the engine's plan does: the node's own output buffers, then bind
    outs = Ports(
        own if own is not None else {p: np.zeros((lanes, width(d)), np.float32) for p, d in node.outputs().items()}
    )
    node.bind(ins, outs)
    return lambda: node.process(ins, outs, block)


def bare_runners(model: str, lanes: int, width: int, values: dict[str, float]):
    """``session.run`` and ``run_with_iobinding`` on ``model`` with the node's inputs, no framework."""
    session = open_session(model)  # the node's own session options: one thread, sequential
    rng = np.random.default_rng(0)
    feeds = {}
    for t in session.get_inputs():
        cols = t.shape[1] if isinstance(t.shape[1], int) else width
        feeds[t.name] = np.full((lanes, cols), values.get(t.name, 0.1), np.float32) + (
            0.01 * rng.standard_normal((lanes, cols))
        ).astype(np.float32)
        if t.name.startswith("state_in"):
            feeds[t.name][:] = 0.0
    binding = session.io_binding()
    outs = []
    for t in session.get_inputs():
        binding.bind_input(t.name, "cpu", 0, np.float32, list(feeds[t.name].shape), feeds[t.name].ctypes.data)
    for t in session.get_outputs():
        cols = t.shape[1] if isinstance(t.shape[1], int) else width
        out = np.zeros((lanes, cols), np.float32)
        outs.append(out)  # kept alive: onnxruntime writes into it
        binding.bind_output(t.name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    run = session.run
    bound = session.run_with_iobinding
    return (lambda: run(None, feeds)), (lambda: bound(binding)), outs


def overhead(blocks: int, sr: float) -> None:
    """onnx.model per call beside bare onnxruntime on the same model and inputs."""
    flute = str(ROOT / "graphs" / "models" / "ddsp_flute.onnx")
    amp = str(ROOT / "graphs" / "models" / "amp_gru.onnx")
    cases = [
        ("ddsp_flute, rate block, 1 lane", flute, "block", 1, 128, {"f0": 440.0, "loudness": -30.0}),
        ("ddsp_flute, rate block, 8 lanes", flute, "block", 8, 128, {"f0": 440.0, "loudness": -30.0}),
        ("amp_gru, rate stream, 1 lane, block 128", amp, "stream", 1, 128, {}),
    ]
    print(
        f"{'model':<40} {'onnx.model':>11} {'session.run':>12} {'iobinding':>10} "
        f"{'/ run':>6} {'/ iobind':>9}   (median us per call)"
    )
    for name, model, rate, lanes, block, values in cases:
        node_med, _ = time_calls(node_runner(OnnxModel(model=model, rate=rate), lanes, block, sr, values), blocks)
        run, bound, _keep = bare_runners(model, lanes, block, values)
        run_med, _ = time_calls(run, blocks)
        bound_med, _ = time_calls(bound, blocks)
        print(
            f"{name:<40} {node_med:>11.1f} {run_med:>12.1f} {bound_med:>10.1f} "
            f"{node_med / run_med:>6.2f} {node_med / bound_med:>9.2f}",
            flush=True,
        )


RTF_PATCHES = ("neural_flute", "neural_violin")


def rtf(blocks: int, sr: float, patches: tuple[str, ...] = RTF_PATCHES) -> None:
    """Real-time factor of each DDSP patch (graphs/<name>.toml) with 8 voices held, at blocks 128 and 256."""
    print(f"{'patch':<48} {'block':>5} {'median us':>10} {'p99 us':>8} {'RTF':>7} {'p99 RTF':>8} {'x real time':>12}")
    for name, block in ((name, block) for name in patches for block in (128, 256)):
        patch = ng.load_patch(ROOT / "graphs" / f"{name}.toml", overrides={"keys.count": 8})
        engine = ng.Engine(patch, sample_rate=sr, block_size=block)
        for note in (60, 62, 64, 65, 67, 69, 71, 72):
            engine.note_on(note, velocity=100)
        period = 1e6 * block / sr
        for _ in range(50):
            engine.process()
        times = np.empty(blocks)
        for i in range(blocks):
            t0 = time.perf_counter()
            engine.process()
            times[i] = time.perf_counter() - t0
        total = float(times.sum() * 1e6) / (blocks * period)  # compute time / audio time over the run
        med, p99 = float(np.median(times) * 1e6), float(np.percentile(times, 99) * 1e6)
        print(
            f"{f'graphs/{name}.toml, keys.count=8, 8 held':<48} {block:>5} {med:>10.1f} {p99:>8.1f} "
            f"{med / period:>7.3f} {p99 / period:>8.3f} {1 / total:>12.1f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--sample-rate", type=float, default=48000.0)
    ap.add_argument("--only", choices=("cost", "overhead", "rtf"), help="run one section (default: all)")
    ap.add_argument("--patches", nargs="+", default=list(RTF_PATCHES), help="graphs/ patches for rtf")
    args = ap.parse_args()
    sr = args.sample_rate
    if args.only in (None, "overhead"):
        overhead(args.blocks, sr)
    if args.only in (None, "rtf"):
        rtf(args.blocks, sr, tuple(args.patches))
    if args.only not in (None, "cost"):
        return
    flute = str(ROOT / "graphs" / "models" / "ddsp_flute.onnx")
    amp = ROOT / "graphs" / "models" / "amp_gru.onnx"
    rows = []
    for block in (64, 128, 256, 512):
        budget = 1e6 * block / sr
        cases = [
            ("ddsp_flute decoder, 1 lane", OnnxModel(model=flute), 1, {"f0": 440.0, "loudness": -30.0}),
            ("ddsp_flute decoder, 8 lanes (1 call)", OnnxModel(model=flute), 8, {"f0": 440.0, "loudness": -30.0}),
            ("synth.harmonic 32, 1 lane", HarmonicSynth(count=32), 1, {"freq": 440.0}),
            ("synth.harmonic 32, 8 lanes", HarmonicSynth(count=32), 8, {"freq": 440.0}),
            ("synth.filtered_noise 16, 1 lane", FilteredNoise(bands=16), 1, {}),
        ]
        if amp.exists():
            cases.append(("amp_gru (GRU-16 per sample), 1 lane", OnnxModel(model=str(amp), rate="stream"), 1, {}))
        for name, node, lanes, values in cases:
            med, p99 = time_calls(node_runner(node, lanes, block, sr, values), args.blocks)
            rows.append((block, name, med, p99, 100 * med / budget, 100 * p99 / budget))
        engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_flute.toml"), sample_rate=sr, block_size=block)
        for note in (60, 64, 67, 72):
            engine.note_on(note, velocity=100)
        med, p99 = time_calls(engine.process, args.blocks)
        rows.append(
            (block, "graphs/neural_flute.toml, 4 voices held", med, p99, 100 * med / budget, 100 * p99 / budget)
        )
    print(f"{'block':>5}  {'what':<42} {'median us':>10} {'p99 us':>9} {'% budget':>9} {'p99 %':>7}")
    for block, name, med, p99, pct, p99pct in rows:
        print(f"{block:>5}  {name:<42} {med:>10.1f} {p99:>9.1f} {pct:>9.1f} {p99pct:>7.1f}")


if __name__ == "__main__":
    main()
