"""Faults never stop the sound: a node raising at block k, seen from the output."""

from __future__ import annotations

import numpy as np
import pytest
from analysis import peak_frequency

import neuralgraph as ng
from neuralgraph.plugin import Input, Node, Output, Ports, PrepareContext, hookimpl

SR = 48000
BLOCK = 64


def _patch(load, after: int) -> ng.Patch:
    return load(
        {
            "osc": {"type": "osc.sine", "freq": 1000.0},
            "bad": {"type": "test.raiser", "after": after, "in": "osc"},
            "good": {"type": "osc.sine", "freq": 3000.0},
            "sum": {"type": "math.add", "a": "bad", "b": "good"},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )


@pytest.mark.parametrize("k", [0, 7])
def test_a_node_raising_at_block_k_leaves_earlier_output_intact_and_the_rest_sounding(load, k):
    healthy = ng.Engine(_patch(load, after=1000), sample_rate=SR, block_size=BLOCK).render(0.25)
    engine = ng.Engine(_patch(load, after=k), sample_rate=SR, block_size=BLOCK)
    faulty = engine.render(0.25)
    start = k * BLOCK  # test.raiser raises in its (k+1)-th block, i.e. block index k
    assert np.array_equal(faulty[:, :start], healthy[:, :start])  # before k: unchanged, sample for sample
    assert not np.array_equal(faulty[:, start : start + BLOCK], healthy[:, start : start + BLOCK])
    after = faulty[0, start + BLOCK :]
    assert peak_frequency(after, SR) == pytest.approx(3000.0, abs=2.0)  # the other branch still sounds
    assert np.sqrt(np.mean(after**2)) > 0.3  # at the healthy sine's level (0.707 RMS at full scale)
    spectrum = np.abs(np.fft.rfft(after))
    bin_1k = round(1000.0 * after.size / SR)
    assert spectrum[bin_1k] < 1e-3 * spectrum.max()  # the faulted branch is silent (bypass = silence)
    (fault,) = engine.faults()
    assert fault.node == "bad" and isinstance(fault.error, RuntimeError) and "planted fault" in str(fault.error)


class NanOnce(Node):
    """Passes half its input through, but emits NaN in block 3 (one bad block, then healthy)."""

    type_name = "reliability.nan_once"
    in_ = Input()
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.blocks = 0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        self.blocks += 1
        np.multiply(ins.in_, 0.5, out=outs.out)
        if self.blocks == 3:
            outs.out.fill(np.nan)


class _Plugin:
    @hookimpl
    def ng_register_nodes(self, register) -> None:
        register(NanOnce)


def test_one_nan_in_a_feedback_loop_does_not_silence_it_for_good():
    """The feedback copy turns NaN into 0 (VCV Rack's cable rule): the loop sounds again at once."""
    registry = ng.Registry.load(plugins={"reliability": _Plugin()})
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "src": {"type": "osc.sine", "freq": 440.0},
                "sum": {"type": "math.add", "a": "src", "b": {"from": "half", "feedback": True}},
                "half": {"type": "reliability.nan_once", "in": "sum"},
                "out": {"type": "io.output", "channels": 1, "in": "sum"},
            },
        },
        registry=registry,
    )
    engine = ng.Engine(patch, sample_rate=SR, block_size=BLOCK)
    audio = engine.render(0.25)[0]
    assert engine.plan.guard.non_finite == 0  # the NaN never came round the loop to the output
    tail = audio[SR // 10 :]
    assert peak_frequency(tail, SR) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(tail**2)) > 0.3  # the loop sounds (poisoned, it would be silent: 0)


def _burst_patch(load, downstream: dict) -> ng.Patch:
    return load(
        {
            "osc": {"type": "osc.sine", "freq": 440.0},
            "pre": {"type": "math.mul", "in": "osc", "gain": 0.5},
            "bad": {"type": "test.nan_burst", "in": "pre", "start": 5, "count": 6},
            **downstream,
            "out": {"type": "io.output", "channels": 1, "in": "last"},
        }
    )


@pytest.mark.parametrize(
    "downstream",
    [
        {"last": {"type": "math.mul", "in": "bad", "gain": 0.5}},
        {
            "post": {"type": "math.mul", "in": "bad", "gain": 0.5},
            "other": {"type": "osc.sine", "freq": 1000.0},
            "last": {"type": "math.add", "a": "post", "b": "other"},
        },
    ],
    ids=["gain", "gain-then-sum"],
)
def test_the_node_that_emits_nan_is_named_not_its_neighbours(load, tmp_path, downstream):
    from neuralgraph.plugin import read_audio, write_audio

    engine = ng.Engine(_burst_patch(load, downstream), sample_rate=SR, block_size=BLOCK)
    audio = engine.render(0.25)
    write_audio(tmp_path / "burst.wav", audio, SR)
    back, _ = read_audio(tmp_path / "burst.wav")
    assert np.isfinite(back).all() and np.abs(back).max() > 0.1  # finite, and sounding after the burst
    assert engine.plan.guard.non_finite >= 6 * BLOCK  # the output guard replaced the burst
    report = engine.bad_values()
    # block 5 reaches the output and turns diagnosis on; blocks 6-10 are charged to `bad` alone
    assert [b.node for b in report] == ["bad"], report
    assert report[0].non_finite == 5 * BLOCK and report[0].subnormal == 0
    assert not engine.plan.diagnostic  # back to normal once a block came out clean
    engine.reset()
    assert engine.bad_values() == [] and engine.plan.diagnostic_blocks == 0


def test_diagnosis_costs_nothing_while_the_output_is_clean(load):
    engine = ng.Engine(
        _burst_patch(load, {"last": {"type": "math.mul", "in": "bad"}}), sample_rate=SR, block_size=BLOCK
    )
    engine.plan.nodes["bad"].count = 0  # no burst
    engine.render(0.25)
    assert engine.plan.diagnostic_blocks == 0 and engine.bad_values() == []


def test_the_render_summary_names_the_node(tmp_path, capsys, monkeypatch):
    """`neuralgraph render` says which node produced the NaN the guard replaced."""
    import testnodes

    import neuralgraph._patch.patch
    from neuralgraph._tools import cli

    registry = ng.Registry.load(plugins={"testnodes": testnodes})
    load_patch = neuralgraph._patch.patch.load_patch
    monkeypatch.setattr(neuralgraph._patch.patch, "load_patch", lambda *a, **k: load_patch(*a, registry=registry, **k))
    patch = tmp_path / "burst.toml"
    patch.write_text(
        """schema = 1
[nodes.osc]
type = "osc.sine"
[nodes.bad]
type = "test.nan_burst"
in = "osc"
[nodes.out]
type = "io.output"
in = "bad"
""",
        encoding="utf-8",
    )
    assert cli.main(["render", str(patch), "-o", str(tmp_path / "burst.wav"), "--seconds", "0.2"]) == 0
    err = capsys.readouterr().err
    assert "NaN/Inf samples replaced by silence; produced by bad (" in err, err


@pytest.mark.parametrize("kind, error", [("system_exit", SystemExit), ("base", BaseException)])
def test_systemexit_and_any_baseexception_from_a_node_are_contained_in_render(load, kind, error):
    # SystemExit used to end `neuralgraph render` with exit 3 and no message
    patch = load(
        {
            "osc": {"type": "osc.sine", "freq": 1000.0},
            "bad": {"type": "test.raiser", "after": 3, "kind": kind, "in": "osc"},
            "good": {"type": "osc.sine", "freq": 3000.0},
            "sum": {"type": "math.add", "a": "bad", "b": "good"},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )
    for fuse in (True, False):
        engine = ng.Engine(patch, sample_rate=SR, block_size=BLOCK, fuse=fuse)
        audio = engine.render(0.1)
        (fault,) = engine.faults()
        assert fault.node == "bad" and isinstance(fault.error, error)
        assert peak_frequency(audio[0, 8 * BLOCK :], SR) == pytest.approx(3000.0, abs=5.0)


def test_keyboard_interrupt_in_a_node_still_stops_an_offline_render(load):
    # offline blocks run in the main thread, where Ctrl-C lands inside whatever node runs: the
    # node is recorded and bypassed, and the render stops (a backend's audio thread plays on)
    patch = load(
        {
            "osc": {"type": "osc.sine", "freq": 1000.0},
            "bad": {"type": "test.raiser", "after": 3, "kind": "keyboard_interrupt", "in": "osc"},
            "out": {"type": "io.output", "channels": 1, "in": "bad"},
        }
    )
    engine = ng.Engine(patch, sample_rate=SR, block_size=BLOCK)
    with pytest.raises(KeyboardInterrupt):
        engine.render(0.1)
    (fault,) = engine.faults()
    assert fault.node == "bad" and isinstance(fault.error, KeyboardInterrupt)


def test_a_node_too_slow_for_real_time_is_named(load):
    # a node sleeping 20 ms per 5.3 ms block: the status used to show only xruns, never which node
    patch = load(
        {
            "osc": {"type": "osc.sine", "freq": 1000.0},
            "slow": {"type": "test.sleeper", "ms": 20.0, "in": "osc"},
            "out": {"type": "io.output", "channels": 1, "in": "slow"},
        }
    )
    engine = ng.Engine(patch, sample_rate=SR, block_size=256)
    assert engine.slow_steps() == []
    for _ in range(64):  # one block in 32 is timed
        engine.process()
    (slow,) = engine.slow_steps()
    assert slow.name == "slow" and slow.worst_ms >= 20.0 and slow.budget_ms == pytest.approx(256 / 48)
    assert slow.times_over == slow.samples == 2
    engine.reset()
    assert engine.slow_steps() == []


def test_an_offline_render_times_one_block_in_256_and_playing_goes_back_to_32(load):
    # a timed block runs every step on its own: at one in 32 it cost offline renders 3-15 % of their CPU
    patch = load(
        {
            "osc": {"type": "osc.sine", "freq": 1000.0},
            "slow": {"type": "test.sleeper", "ms": 6.0, "in": "osc"},  # over a 5.33 ms block
            "out": {"type": "io.output", "channels": 1, "in": "slow"},
        }
    )
    for render in ("render", "stream"):
        engine = ng.Engine(patch, sample_rate=SR, block_size=256)
        audio = getattr(engine, render)(300 * 256 / SR)
        if render == "stream":
            audio = sum(float(np.abs(block).sum()) for block in audio)
        (slow,) = engine.slow_steps()
        assert slow.name == "slow" and slow.samples == 2 and np.any(audio)  # blocks 32 and 32 + 256
        for _ in range(64):  # played block by block again: one in 32
            engine.process()
        assert engine.slow_steps()[0].samples == 4


def test_step_sampling_does_not_allocate(load):
    from neuralgraph.testing import assert_no_allocations

    engine = ng.Engine(
        load(
            {
                "osc": {"type": "osc.saw", "freq": 300.0},
                "lpf": {"type": "math.mul", "in": "osc", "gain": 0.5},
                "out": {"type": "io.output", "channels": 1, "in": "lpf"},
            }
        ),
        sample_rate=SR,
        block_size=64,
    )
    engine.step_timer.every = 1  # every block timed
    assert_no_allocations(engine.process)
