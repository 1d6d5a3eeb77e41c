"""Independent one-lane filters inside a fused run: one side-by-side call, the separate calls' samples.

``neuralgraph._compile.lanes`` orders the steps whose kernel offers a lanes form in groups (of up
to eight for the SVF, its kernel's ``lanes_most``) with no data path between them, keeps the
buffers a group reads from being reused inside it, and hands each group to the kernel's lanes
form (the SVF's ``_svf_across``: one vector recursion for the group). These tests
render patches with the pass, without it (the same fused plan in the plain order, calls one by
one) and unfused, compare samples bit for bit, and check which filters were grouped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng
import neuralgraph._compile.compiler as compiler
import neuralgraph._compile.fusion as fusion
from neuralgraph._nodes import aot
from neuralgraph._tools.profiling import profile

SR = 48000
ROOT = Path(__file__).resolve().parent.parent
P1 = ROOT / "graphs" / "bench" / "per_voice" / "p1_saw_filter.toml"


def engine(patch: ng.Patch, *, fuse: bool = True, lanes: bool = True, block: int = 64) -> ng.Engine:
    saved = fusion.laned, compiler.schedule
    if not lanes:  # the same fused plan, in the plain order, each filter its own call
        fusion.laned = list
        compiler.schedule = lambda steps: (list(steps), None)
    try:
        return ng.Engine(patch, sample_rate=SR, block_size=block, fuse=fuse)
    finally:
        fusion.laned, compiler.schedule = saved


def render(e: ng.Engine, blocks: int, edits=None) -> np.ndarray:
    out = []
    for b in range(blocks):
        for name, value in (edits or {}).get(b, []):
            e.set(name, value)
        out.append(e.process().copy())
    return np.concatenate(out, axis=1)


def side_by_side(e: ng.Engine, form: str = "_svf_across") -> list[list[str]]:
    """The nodes each side-by-side call (of ``form``) of the plan's compiled (plain) fused
    functions runs: the generated source names the call's member index, whose position starts the
    group."""
    found = []
    for record in e.plan.records:
        if record.kind != "fused":
            continue
        step = record.state
        source = aot.source_path(step.digest).read_text()
        alias = re.search(rf"import {form} as (k\d+)", source)
        if not alias:
            continue
        lines = [line.strip() for line in source.splitlines()]
        names = [m.name for m in record.members]
        for k, line in enumerate(lines):
            if line.startswith(f"{alias.group(1)}("):
                member = int(re.search(r"a0\[0\] = (\d+)", lines[k - 1]).group(1))
                count = 1  # then the group's other members: their index set, no call
                while lines[k + count].startswith("a0[0] =") and lines[k + count + 1].startswith("a0[0] ="):
                    count += 1
                found.append(names[member : member + count])
    return found


def test_one_lane_filters_run_side_by_side_with_the_separate_calls_samples():
    patch = ng.load_patch(P1)
    lanes = engine(patch)
    out = render(lanes, 400, edits={150: [("lp3.cutoff", 2500.0)], 250: [("lp6.q", 6.0)]})
    separate = render(engine(patch, lanes=False), 400, edits={150: [("lp3.cutoff", 2500.0)], 250: [("lp6.q", 6.0)]})
    unfused = render(engine(patch, fuse=False), 400, edits={150: [("lp3.cutoff", 2500.0)], 250: [("lp6.q", 6.0)]})
    assert side_by_side(lanes) == [[f"lp{k}" for k in range(1, 9)]]
    np.testing.assert_array_equal(out, separate)
    np.testing.assert_array_equal(out, unfused)
    assert abs(np.sqrt(np.mean(out[:, : 149 * 64].astype(np.float64) ** 2)) - 0.2249) < 0.005  # the harness's P1
    # the edits were heard: lp3 opened up, so the blocks after it differ from a render without it
    plain = render(engine(patch), 400)
    assert np.max(np.abs(plain[:, 160 * 64 :] - out[:, 160 * 64 :])) > 1e-3


def _parallel(count: int, **extra) -> dict:
    nodes: dict = {}
    for k in range(count):
        nodes[f"osc{k}"] = {"type": "osc.saw", "freq": 110.0 * (k + 1)}
        nodes[f"lp{k}"] = {"type": "filter.lowpass", "in": f"osc{k}", "cutoff": 600.0 + 300.0 * k, "q": 3.0}
    nodes.update(extra)
    nodes["out"] = {"type": "io.output", "channels": 1, "in": [f"lp{k}" for k in range(count)]}
    return nodes


@pytest.mark.parametrize("count,sizes", [(2, [2]), (3, [3]), (8, [8]), (11, [8, 3])])
def test_two_to_eight_filters_share_a_call_and_more_take_another(load, count, sizes):
    e = engine(load(_parallel(count)))
    out = render(e, 100)
    assert [len(g) for g in side_by_side(e)] == sizes
    assert sum(side_by_side(e), []) == [f"lp{k}" for k in range(count)]
    np.testing.assert_array_equal(out, render(engine(load(_parallel(count)), fuse=False), 100))
    assert np.sqrt(np.mean(out**2)) > 0.05


def test_a_data_path_between_filters_keeps_them_apart(load):
    """Four lowpasses in series are not independent; nor is one whose cutoff another one's output
    moves (through a mapping): neither shares a side-by-side call with what it reads."""
    nodes = {
        "osc": {"type": "osc.saw", "freq": 220.0},
        "a": {"type": "filter.lowpass", "in": "osc", "cutoff": 3000.0},
        "b": {"type": "filter.lowpass", "in": "a", "cutoff": 2500.0},
        "c": {"type": "filter.lowpass", "in": "b", "cutoff": 2000.0},
        "d": {"type": "filter.lowpass", "in": "c", "cutoff": 1500.0},
        "out": {"type": "io.output", "channels": 1, "in": "d"},
    }
    e = engine(load(nodes))
    out = render(e, 60)
    assert side_by_side(e) == []
    np.testing.assert_array_equal(out, render(engine(load(nodes), fuse=False), 60))
    lfo = {"lfo": {"type": "osc.sine", "freq": 3.0}}
    modulated = _parallel(4, **lfo)
    modulated["lp3"]["cutoff"] = {"from": "lp0", "range": [300.0, 3000.0]}
    e = engine(load(modulated))
    out = render(e, 100)
    assert all("lp0" not in g or "lp3" not in g for g in side_by_side(e))
    np.testing.assert_array_equal(out, render(engine(load(modulated), fuse=False), 100))


def test_a_buffer_read_inside_a_group_is_not_reused_inside_it(monkeypatch):
    """Without the group's deferred release, the second filter's output takes the slot the first
    one reads (its saw's, read for the last time): the calls would overlap, so the pass refuses."""
    patch = ng.load_patch(P1)
    assert len(side_by_side(engine(patch))) == 1
    colour = compiler.Compiler.colour
    monkeypatch.setattr(compiler.Compiler, "colour", lambda self, ends=None: colour(self))
    e = engine(patch)
    assert side_by_side(e) == []
    np.testing.assert_array_equal(render(e, 50), render(engine(patch, fuse=False), 50))


def test_bench_still_names_each_filter_of_a_side_by_side_call():
    e = engine(ng.load_patch(P1))
    assert side_by_side(e)
    costs = {c.name: c for c in profile(e, 300, warmup=10).steps}
    for k in range(1, 9):  # every filter and saw its own row, from inside the fused run, with a cost
        for name, kind in ((f"lp{k}", "filter.lowpass*"), (f"osc{k}", "osc.saw*")):
            assert costs[name].kind == kind and costs[name].ns_per_block > 0


def run_both_ways(kernel, form, calls, inputs, frames: int, compared: tuple[int, ...]) -> list[tuple]:
    """``kernel``'s calls one by one and through its lanes form (which must be ``form``), block by
    block, with ``inputs[b][lane]`` written into each call's first arguments; after every block,
    the arguments at ``compared`` (outputs, states) must be equal bit for bit. The together calls."""
    separate, together = calls(), calls()
    member = kernel.lanes(together)
    assert member is not None and member[0].py_func is form.py_func
    for block in inputs:
        for lane, values in enumerate(block):
            for args in (separate[lane], together[lane]):
                for k, v in enumerate(values):
                    args[k][0] = v
            kernel(*separate[lane], frames)
        member[0](*member[1], frames)
        for a, c in zip(separate, together):
            for k in compared:
                np.testing.assert_array_equal(a[k], c[k])
    return together


@pytest.mark.parametrize("frames", [64, 61])
def test_the_side_by_side_call_keeps_each_filters_samples_through_a_step_inside_a_block_and_a_nan(frames):
    """The form on its own, against the separate calls: held blocks run interleaved; a cutoff that
    steps inside a block (its first sample unchanged) and a NaN input keep each filter's rules. A
    block of 61 runs 56 samples eight at a time and its last 5 one at a time."""
    from neuralgraph_plugins.filters import _svf_across, _svf_kernel

    blocks, count = 12, 5  # three of the vector's eight lanes unused
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, (blocks, count, frames)).astype(np.float32)
    x[7, 1, 10] = np.nan
    cutoff = np.full((blocks, count, frames), 900.0, np.float32)
    cutoff[:, 3] = 2500.0
    cutoff[:, 4] = 150.0
    cutoff[5, 2, 40:] = 4000.0  # steps inside block 5, back at block 6: the held check must see it

    def calls(mode: int) -> list[tuple]:
        out = []
        for lane in range(count):
            coeffs = np.zeros((1, 6))
            coeffs[0, 0] = np.nan
            q = np.full((1, frames), 1.5 + lane, np.float32)
            ins = (np.zeros((1, frames), np.float32), np.zeros((1, frames), np.float32), q)
            out.append((*ins, mode, np.zeros((1, 2)), coeffs, float(SR), np.zeros((1, frames), np.float32)))
        return out

    inputs = [[(x[b, lane], cutoff[b, lane]) for lane in range(count)] for b in range(blocks)]
    for mode in range(4):
        # every filter's output (7) and its state (4)
        together = run_both_ways(_svf_kernel, _svf_across, lambda: calls(mode), inputs, frames, (7, 4))
        assert np.all(np.isfinite(together[1][7]))


def test_a_many_lane_filter_of_the_type_does_not_keep_one_lane_ones_apart(load):
    """A 4-lane lowpass (its own kernel, four lanes at a time already) probed first: the one-lane
    lowpasses after it are still grouped."""
    nodes = {
        "keys": {"type": "voices.fixed", "count": 4, "start": 110.0, "step": 55.0},
        "saws": {"type": "osc.saw", "freq": "keys"},
        "wide": {"type": "filter.lowpass", "in": "saws", "cutoff": 800.0},
        "sum": {"type": "voices.sum", "in": "wide"},
        **_parallel(4),
    }
    nodes["out"]["in"] = ["sum", *nodes["out"]["in"]]
    e = engine(load(nodes))
    out = render(e, 60)
    assert side_by_side(e) == [["lp0", "lp1", "lp2", "lp3"]]
    np.testing.assert_array_equal(out, render(engine(load(nodes), fuse=False), 60))


P2 = ROOT / "graphs" / "bench" / "per_voice" / "p2_fm.toml"


def test_one_lane_sines_run_side_by_side_with_the_separate_calls_samples():
    """The per-voice P2: its 32 modulators share one call, its 32 carriers (each after its own
    modulator) another; a modulator retuned mid-render and a carrier synced are heard, and every
    sample is the separate calls' and the unfused plan's."""
    patch = ng.load_patch(P2)
    edits = {40: [("mod3.freq", 333.0)], 90: [("car7.sync", 1.0)], 91: [("car7.sync", 0.0)]}
    lanes = engine(patch)
    out = render(lanes, 200, edits)
    assert side_by_side(lanes, "_sine_across") == [[f"mod{k}" for k in range(1, 33)], [f"car{k}" for k in range(1, 33)]]
    np.testing.assert_array_equal(out, render(engine(patch, lanes=False), 200, edits))
    np.testing.assert_array_equal(out, render(engine(patch, fuse=False), 200, edits))
    rms = np.sqrt(np.mean(out[:, : 40 * 64].astype(np.float64) ** 2))
    assert abs(rms - 0.122) < 0.01  # the harness's P2 (0.122 over 60 s)
    plain = render(engine(patch), 200)
    assert np.max(np.abs(plain[:, : 40 * 64] - out[:, : 40 * 64])) == 0.0
    assert np.max(np.abs(plain[:, 41 * 64 :] - out[:, 41 * 64 :])) > 1e-3


@pytest.mark.parametrize("frames", [64, 61])
def test_the_side_by_side_sines_keep_each_ones_phase_through_held_modulated_and_synced_blocks(frames):
    """The form on its own, against the separate calls: a held frequency (the one-pass path), a
    modulated one (the phases pass), a sync edge inside a block and one across a block boundary.
    A block of 61 runs 56 samples eight at a time and its last 5 one at a time."""
    from neuralgraph_plugins.oscillators import _sine_across, _sine_kernel

    blocks, count = 10, 5
    rng = np.random.default_rng(5)
    freq = np.empty((blocks, count, frames), np.float32)
    freq[:, 0] = 440.0  # held
    freq[:, 1] = 300.0 + 200.0 * rng.uniform(-1, 1, (blocks, frames))  # modulated
    freq[:, 2] = 1000.0
    freq[:, 3] = -250.0  # backwards
    freq[:, 4] = 55.0
    freq[4, 4, 20:] = 880.0  # steps inside block 4
    sync = np.zeros((blocks, count, frames), np.float32)
    sync[3, 2, 17:30] = 1.0  # an edge inside block 3
    sync[5, 3, frames - 1] = 1.0  # high at the end of block 5: block 6 starts high, no new edge
    sync[6, 3, :4] = 1.0

    def calls() -> list[tuple]:
        out = []
        for _ in range(count):
            ins = np.zeros((1, frames), np.float32), np.zeros((1, frames), np.float32)
            out.append((*ins, np.zeros(1), np.zeros(1), 1.0 / SR, np.zeros(frames), np.zeros((1, frames), np.float32)))
        return out

    inputs = [[(freq[b, lane], sync[b, lane]) for lane in range(count)] for b in range(blocks)]
    # every sine's output (6), its phase (2) and its last sync value (3)
    together = run_both_ways(_sine_kernel, _sine_across, calls, inputs, frames, (6, 2, 3))
    assert np.max(np.abs(together[0][6])) > 0.99


def test_sines_of_two_sample_rates_or_many_lanes_are_not_side_by_side():
    from neuralgraph_plugins.oscillators import _sine_kernel

    def call(lanes: int, rate: float) -> tuple:
        ins = np.zeros((lanes, 64), np.float32), np.zeros((lanes, 64), np.float32)
        return (*ins, np.zeros(lanes), np.zeros(lanes), 1.0 / rate, np.zeros(64), np.zeros((lanes, 64), np.float32))

    assert _sine_kernel.lanes([call(1, SR), call(1, 44100)]) is None
    assert _sine_kernel.lanes([call(1, SR), call(2, SR)]) is None
    assert _sine_kernel.lanes([call(1, SR), call(1, SR)]) is not None
