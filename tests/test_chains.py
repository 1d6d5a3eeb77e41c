"""Series chains of biquads inside a fused run: one cascade call, the separate calls' samples.

``neuralgraph._compile.chains`` hands consecutive ``_biquad_kernel`` calls that feed each other to
the biquad's chain form, which runs them together sample by sample. These tests render patches
with the chain, with the separate calls (the same fused run without the chain) and unfused, and
compare samples bit for bit; and they check which calls became a cascade.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import neuralgraph as ng
import neuralgraph._compile.fusion as fusion
from neuralgraph._nodes import aot
from neuralgraph_plugins.filters import _biquad_cascade_kernel, _biquad_kernel

SR = 48000

# three lanes of saws through a peak, a low shelf and a high shelf in series, the peak's gain
# from an LFO (a control input the cascade reads per block)
CHAIN = {
    "keys": {"type": "voices.fixed", "count": 3, "start": 110.0, "step": 170.0},
    "noise": {"type": "osc.saw", "freq": "keys"},
    "lfo": {"type": "osc.sine", "freq": 2.0},
    "eq": {
        "type": "filter.peak",
        "in": "noise",
        "cutoff": 700.0,
        "q": 3.0,
        "gain_db": {"from": "lfo", "range": [-12.0, 12.0]},
    },
    "low": {"type": "filter.lowshelf", "in": "eq", "cutoff": 200.0, "gain_db": 9.0},
    "high": {"type": "filter.highshelf", "in": "low", "cutoff": 5000.0, "gain_db": -9.0},
    "mix": {"type": "voices.sum", "in": "high"},
    "out": {"type": "io.output", "channels": 1, "in": "mix"},
}


def render(patch: ng.Patch, *, fuse: bool, block: int, blocks: int, chains: bool = True, edits=None):
    saved = fusion.chained
    if not chains:
        fusion.chained = list  # the same fused run, its members called one by one
    try:
        engine = ng.Engine(patch, sample_rate=SR, block_size=block, fuse=fuse)
    finally:
        fusion.chained = saved
    out = []
    for b in range(blocks):
        for name, value in (edits or {}).get(b, []):
            engine.set(name, value)
        out.append(engine.process().copy())
    return np.concatenate(out, axis=1), engine


def cascades(engine: ng.Engine) -> list[int]:
    """The number of filters each cascade call in the plan's compiled (plain) fused functions runs,
    read from the generated source and the table it is handed."""
    found = []
    for process, _, _ in engine.plan.steps:
        step = getattr(process, "__self__", None)
        if not isinstance(step, fusion.FusedStep):
            continue
        source = aot.source_path(step.digest).read_text()
        alias = re.search(r"import _biquad_cascade_kernel as (k\d+)", source)
        if alias:
            for table in re.findall(rf"    {alias.group(1)}\(a\d+, a(\d+),", source):
                found.append(step._plain[2][int(table)].shape[0])
    return found


@pytest.mark.parametrize("block", [64, 7])
def test_a_biquad_chain_renders_the_separate_calls_samples_bit_for_bit(load, block):
    edits = {10: [("eq.cutoff", 2500.0)], 30: [("low.q", 4.0)], 50: [("high.gain_db", 3.0)]}
    chain, engine = render(load(CHAIN), fuse=True, block=block, blocks=80, edits=edits)
    separate, _ = render(load(CHAIN), fuse=True, block=block, blocks=80, chains=False, edits=edits)
    unfused, _ = render(load(CHAIN), fuse=False, block=block, blocks=80, edits=edits)
    assert cascades(engine) == [3]
    assert np.sqrt(np.mean(chain**2)) > 0.05
    np.testing.assert_array_equal(chain, separate)
    np.testing.assert_array_equal(chain, unfused)
    # the edits were heard: a chain that ignored them would match a render without them
    quiet, _ = render(load(CHAIN), fuse=True, block=block, blocks=80)
    assert np.max(np.abs(quiet[:, 60 * block :] - chain[:, 60 * block :])) > 1e-3


def test_the_p3_bench_patch_is_one_cascade_of_twenty_filters_with_its_level():
    from pathlib import Path

    patch = ng.load_patch(Path(__file__).resolve().parent.parent / "graphs" / "bench" / "p3_peq.toml")
    chain, engine = render(patch, fuse=True, block=64, blocks=750)
    unfused, _ = render(patch, fuse=False, block=64, blocks=750)
    assert cascades(engine) == [20]
    np.testing.assert_array_equal(chain, unfused)
    assert abs(np.sqrt(np.mean(chain.astype(np.float64) ** 2)) - 0.2612) < 0.005  # the peer harness's P3


def test_filters_that_do_not_feed_each_other_stay_separate_calls(load):
    """Two filters reading the same source are not a series chain; a filter fed through a mix
    breaks a chain in two."""
    nodes = {
        "noise": {"type": "noise.white", "amp": 0.5},
        "a": {"type": "filter.peak", "in": "noise", "cutoff": 300.0, "gain_db": 6.0},
        "b": {"type": "filter.peak", "in": "noise", "cutoff": 3000.0, "gain_db": -6.0},
        "c": {"type": "filter.peak", "in": "b", "cutoff": 1000.0, "gain_db": 6.0},
        "d": {"type": "filter.lowshelf", "in": "c", "cutoff": 150.0, "gain_db": 6.0},
        "out": {"type": "io.output", "channels": 1, "in": ["a", "d"]},
    }
    chain, engine = render(load(nodes), fuse=True, block=64, blocks=40)
    unfused, _ = render(load(nodes), fuse=False, block=64, blocks=40)
    assert sorted(cascades(engine)) == [3]  # b -> c -> d; a reads the noise, not b
    np.testing.assert_array_equal(chain, unfused)


def test_a_nan_into_a_chain_is_treated_as_silence_by_each_filter_as_when_separate():
    """The chain form keeps each filter's non-finite input rule: the bad sample is 0 for the
    first filter and the chain recovers, as the separate calls do."""
    lanes, frames, n = 2, 64, 4
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 0.5, (lanes, frames)).astype(np.float32)
    x[1, 10] = np.nan
    x[0, 20] = np.inf

    def calls():
        out = []
        src = x
        for k in range(n):
            dst = np.zeros((lanes, frames), np.float32)
            cutoff, q, gain = (np.full((lanes, 1), v, np.float32) for v in (300.0 * (k + 1), 1.0, 6.0 - 3 * k))
            current = np.full((lanes, 3), np.nan)
            out.append(
                (src, cutoff, q, gain, k % 3, np.zeros((lanes, 2)), current, np.zeros((lanes, 5)), float(SR), dst)
            )
            src = dst
        return out

    separate = calls()
    for args in separate:
        _biquad_kernel(*args, frames)
    cascade_calls = calls()
    member = _biquad_kernel.chain(cascade_calls)
    assert member is not None and member[0] is _biquad_cascade_kernel
    member[0](*member[1], frames)
    for a, b in zip(separate, cascade_calls):
        np.testing.assert_array_equal(a[9], b[9])  # every filter's output
        np.testing.assert_array_equal(a[5], b[5])  # and its state
    assert np.all(np.isfinite(cascade_calls[-1][9]))
