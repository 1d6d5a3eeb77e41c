"""Issue 7's benchmark: P1, P2, P3, a wide patch and the neural instrument, beside plain numpy.

    python benchmarks/bench_patches.py [--seconds 60] [--repeats 3] [--blocks 64 256] [--no-fuse]

Each patch is rendered offline (``Engine.render``) for ``--seconds`` at 48 kHz and every block
size, best of ``--repeats`` by process time. Beside it, a plain-numpy implementation of the same
patch (voices stacked in one array, one numpy/scipy call per operation) renders the same length
in the same run, and the ratio neuralgraph / numpy is printed: on a shared, noisy machine the
ratio is the figure that counts. Printed per patch and block size: the real-time factor (audio
seconds per CPU second), the CPU time per block, and the peak memory traced by tracemalloc
while the engine is built and renders one second (an untimed pass).

Patches: ``graphs/bench/p1_saw_filter.toml`` (8 notes held), ``p2_fm.toml`` (32 notes held),
``p3_peq.toml``, a generated wide patch (67 chains sine -> lowpass -> gain, mixed: 202 nodes),
and every ``graphs/neural_*.toml`` played through ``midi.voices``, set to 8 voices with 8 notes
held (no numpy counterpart; block 128 and 256).
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
WIDE_CHAINS = 67
NOTES_P1 = 8
NOTES_P2 = 32


def note_freqs(count: int) -> np.ndarray:
    """The frequencies of the notes ``neuralgraph._tools.profiling.hold_notes`` holds."""
    notes = np.array([48 + (k * 7) % 48 for k in range(count)], np.float64)
    return 440.0 * 2.0 ** ((notes - 69.0) / 12.0)


def rbj_lowpass(fc: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    w0 = 2 * math.pi * fc / RATE
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return b / a[0], a / a[0]


def rbj_peak(fc: float, q: float, gain_db: float) -> tuple[np.ndarray, np.ndarray]:
    w0 = 2 * math.pi * fc / RATE
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    amp = 10 ** (gain_db / 40)
    b = np.array([1 + alpha * amp, -2 * cw, 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * cw, 1 - alpha / amp])
    return b / a[0], a / a[0]


# ---- plain numpy: voices stacked, one call per operation ---------------------------------------


class Phasor:
    """Phase accumulation for stacked lanes: cumsum of freq / rate, wrapped to [0, 1)."""

    def __init__(self, lanes: int, block: int) -> None:
        self.phase = np.zeros((lanes, 1), np.float64)
        self.buf = np.zeros((lanes, block), np.float64)

    def __call__(self, freq: np.ndarray) -> np.ndarray:
        ph = self.buf
        np.multiply(freq, 1.0 / RATE, out=ph)
        np.add.accumulate(ph, axis=1, out=ph)
        np.add(ph, self.phase, out=ph)
        np.remainder(ph, 1.0, out=ph)
        self.phase[:, 0] = ph[:, -1]
        return ph


def numpy_p1(block: int) -> Callable[[np.ndarray], None]:
    lanes = NOTES_P1
    freq = np.repeat(note_freqs(lanes)[:, None], block, axis=1)
    phasor = Phasor(lanes, block)
    saw = np.zeros((lanes, block))
    b, a = rbj_lowpass(1200.0, 2.0)
    zi = [np.zeros((lanes, 2))]

    def run(out: np.ndarray) -> None:
        ph = phasor(freq)
        np.multiply(ph, 2.0, out=saw)
        np.subtract(saw, 1.0, out=saw)
        y, zi[0] = lfilter(b, a, saw, axis=1, zi=zi[0])
        np.multiply(y, 0.1, out=y)
        np.sum(y, axis=0, out=out)

    return run


def numpy_p2(block: int) -> Callable[[np.ndarray], None]:
    lanes = NOTES_P2
    fc = np.repeat(note_freqs(lanes)[:, None], block, axis=1)
    fm = 1.5 * fc
    depth = 2.0 * fm
    mod_ph, car_ph = Phasor(lanes, block), Phasor(lanes, block)
    mod = np.zeros((lanes, block))
    cf = np.zeros((lanes, block))
    two_pi = 2 * math.pi

    def run(out: np.ndarray) -> None:
        ph = mod_ph(fm)
        np.multiply(ph, two_pi, out=mod)
        np.sin(mod, out=mod)
        np.multiply(mod, depth, out=mod)
        np.add(fc, mod, out=cf)
        ph = car_ph(cf)
        np.multiply(ph, two_pi, out=cf)
        np.sin(cf, out=cf)
        np.sum(cf, axis=0, out=out)
        np.multiply(out, 0.03, out=out)

    return run


def numpy_p3(block: int) -> Callable[[np.ndarray], None]:
    rng = np.random.default_rng(1)
    x = np.zeros(block)
    coeffs = [rbj_peak(100.0 * 100.0 ** (i / 19), 1.0, 6.0 if i % 2 == 0 else -6.0) for i in range(20)]
    zis = [np.zeros(2) for _ in coeffs]

    def run(out: np.ndarray) -> None:
        rng.random(out=x)
        np.multiply(x, 2.0, out=x)
        np.subtract(x, 1.0, out=x)
        y = x
        for k, (b, a) in enumerate(coeffs):
            y, zis[k] = lfilter(b, a, y, zi=zis[k])
        np.multiply(y, 0.25, out=out)

    return run


def wide_freqs() -> np.ndarray:
    return 55.0 * 2.0 ** (np.arange(WIDE_CHAINS) / 12.0)


def numpy_wide(block: int) -> Callable[[np.ndarray], None]:
    """One Python call per node, as the patch has them (a chain per lane, not stacked)."""
    freqs = wide_freqs()
    chains = []
    for k, f in enumerate(freqs):
        b, a = rbj_lowpass(min(4.0 * f, 20000.0), 0.7071)
        chains.append((Phasor(1, block), np.full((1, block), f), np.zeros((1, block)), b, a, [np.zeros((1, 2))]))
    gain = 1.0 / WIDE_CHAINS

    def run(out: np.ndarray) -> None:
        out.fill(0.0)
        for phasor, freq, s, b, a, zi in chains:
            ph = phasor(freq)
            np.multiply(ph, 2 * math.pi, out=s)
            np.sin(s, out=s)
            y, zi[0] = lfilter(b, a, s, axis=1, zi=zi[0])
            np.multiply(y, gain, out=y)
            np.add(out, y[0], out=out)

    return run


# ---- neuralgraph patches -----------------------------------------------------------------------


def wide_patch() -> ng.Patch:
    nodes: dict = {}
    terms = []
    for k, f in enumerate(wide_freqs()):
        nodes[f"osc{k}"] = {"type": "osc.sine", "freq": float(f)}
        nodes[f"lp{k}"] = {"type": "filter.lowpass", "in": f"osc{k}", "cutoff": float(min(4.0 * f, 20000.0))}
        nodes[f"g{k}"] = {"type": "math.mul", "in": f"lp{k}", "gain": 1.0 / WIDE_CHAINS}
        terms.append(f"g{k}")
    nodes["out"] = {"type": "io.output", "channels": 1, "in": terms}
    return ng.load_patch({"schema": 1, "name": "wide", "nodes": nodes})


FUSE = True


def make_engine(patch: ng.Patch, block: int, notes: int) -> ng.Engine:
    from neuralgraph._tools.profiling import hold_notes

    engine = ng.Engine(patch, sample_rate=RATE, block_size=block, fuse=FUSE)
    if notes:
        hold_notes(engine, notes)
    return engine


def best_cpu(run: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best


def peak_memory(build: Callable[[], ng.Engine]) -> int:
    tracemalloc.start()
    try:
        engine = build()
        engine.render(1.0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio rendered per repeat (60)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many repeats (3)")
    parser.add_argument("--blocks", type=int, nargs="+", default=[64, 256], help="block sizes (64 256)")
    parser.add_argument("--only", nargs="+", help="patch names to run (P1 P2 P3 wide neural_flute ...)")
    parser.add_argument("--no-fuse", action="store_true", help="one step per node (Engine(fuse=False))")
    args = parser.parse_args()
    global FUSE
    FUSE = not args.no_fuse

    bench = ROOT / "graphs" / "bench"
    cases = [
        ("P1", lambda: ng.load_patch(bench / "p1_saw_filter.toml"), NOTES_P1, numpy_p1, args.blocks),
        ("P2", lambda: ng.load_patch(bench / "p2_fm.toml"), NOTES_P2, numpy_p2, args.blocks),
        ("P3", lambda: ng.load_patch(bench / "p3_peq.toml"), 0, numpy_p3, args.blocks),
        ("wide", wide_patch, 0, numpy_wide, args.blocks),
    ]
    for path in sorted((ROOT / "graphs").glob("neural_*.toml")):
        # a neural instrument: a patch played through midi.voices, set to 8 voices
        nodes = tomllib.loads(path.read_text()).get("nodes", {})
        keys = next((name for name, n in nodes.items() if n.get("type") == "midi.voices"), None)
        if keys is not None:

            def load(path: Path = path, keys: str = keys) -> ng.Patch:
                return ng.load_patch(path, overrides={f"{keys}.count": 8})

            cases.append((path.stem, load, 8, None, [128, 256]))
    if args.only:
        cases = [c for c in cases if c[0] in args.only]

    print(f"{args.seconds:g} s at {RATE} Hz per render, best of {args.repeats} by process time")
    header = (
        f"{'patch':<12} {'block':>5} {'nodes':>5} {'NG RT':>8} {'NG µs/blk':>10} {'numpy RT':>9} "
        f"{'np µs/blk':>10} {'ratio':>6} {'peak MB':>8}"
    )
    print(header)
    for name, load, notes, numpy_impl, blocks in cases:
        for block in blocks:
            patch = load()
            engine = make_engine(patch, block, notes)
            count = len(engine.plan.nodes)

            def render_ng() -> None:
                engine.render(args.seconds)

            ng_cpu = best_cpu(render_ng, args.repeats)
            n_blocks = math.ceil(args.seconds * RATE / block)
            ng_rt = args.seconds / ng_cpu
            mem = peak_memory(lambda: make_engine(load(), block, notes)) / 1e6
            if numpy_impl is not None:
                step = numpy_impl(block)
                total = np.zeros(n_blocks * block)

                def render_np() -> None:
                    for b in range(n_blocks):
                        step(total[b * block : (b + 1) * block])

                np_cpu = best_cpu(render_np, args.repeats)
                np_rt = args.seconds / np_cpu
                np_cols = f"{np_rt:>9.1f} {1e6 * np_cpu / n_blocks:>10.1f} {np_cpu / ng_cpu:>5.2f}x"
            else:
                np_cols = f"{'-':>9} {'-':>10} {'-':>6}"
            print(
                f"{name:<12} {block:>5} {count:>5} {ng_rt:>8.1f} {1e6 * ng_cpu / n_blocks:>10.1f} {np_cols} "
                f"{mem:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
