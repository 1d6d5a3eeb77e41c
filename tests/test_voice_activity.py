"""Free voices cost no work: midi.voices flags its lanes, the compiler hands the flags downstream,
and the DDSP synth nodes skip silent lanes (docs/midi.md, "Idle voices")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate
from neuralgraph_plugins.ddsp import FilteredNoise, HarmonicSynth

ROOT = Path(__file__).resolve().parent.parent


def _probe_patch(load, second_source: str):
    return load(
        {
            "keys": {"type": "midi.voices", "count": 4, "tail_ms": 0.0},
            "osc": {"type": "osc.saw", "freq": "keys.freq"},
            "probe": {"type": "test.activity_probe", "in": "osc"},
            "mixed": {"type": "math.add", "a": "probe", "b": second_source},
            "sum": {"type": "voices.sum", "in": "mixed"},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )


def test_flags_follow_the_voices_through_per_lane_nodes(load):
    engine = ng.Engine(_probe_patch(load, "keys.gate"))
    keys, probe, mixed = (engine.plan.nodes[n] for n in ("keys", "probe", "mixed"))
    assert probe.active_lanes is not None and probe.active_lanes.base is keys.lane_activity()
    assert not probe.active_lanes.flags.writeable
    engine.note_on(60)
    engine.note_on(64)
    engine.process()
    assert probe.active_lanes.tolist() == [1, 1, 0, 0]
    engine.note_off(60)
    engine.process()  # tail_ms = 0: a released voice is free at the end of the block
    assert probe.active_lanes.tolist() == [0, 1, 0, 0]
    assert mixed.__dict__.get("active_lanes") is None  # math.add does not use the flags


def test_a_lane_source_without_flags_turns_skipping_off(load):
    # test.lanes makes 4 lanes of its own: `mixed` cannot know which of them sound
    patch = load(
        {
            "keys": {"type": "midi.voices", "count": 4},
            "other": {"type": "test.lanes", "count": 4},
            "probe": {"type": "test.activity_probe", "in": "keys.freq"},
            "later": {"type": "test.activity_probe", "in": "other"},
            "sum": {"type": "voices.sum", "in": ["probe", "later"]},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )
    engine = ng.Engine(patch)
    assert engine.plan.nodes["probe"].active_lanes is not None
    assert engine.plan.nodes["later"].active_lanes is None


def _ports(**arrays: np.ndarray) -> Ports:
    return Ports(arrays)


def test_harmonic_and_noise_write_silence_on_free_lanes_and_keep_sounding_lanes_exact():
    sr, block, lanes = 48000.0, 128, 3
    flags = np.array([1, 0, 1], np.uint8)
    for cls, ports in ((HarmonicSynth, {"count": 4}), (FilteredNoise, {"bands": 4, "top_hz": 8000.0})):
        outputs = []
        for active in (None, flags):
            rng = np.random.default_rng(3)
            node = cls(**ports)
            ctx = PrepareContext(
                sample_rate=sr,
                block_size=block,
                lanes=lanes,
                input_lanes={p: lanes for p in node.inputs()},
                output_lanes={"out": lanes},
                active_lanes=active,
            )
            node.prepare(ctx)
            ins = {
                name: np.full((lanes, block if decl.rate is Rate.AUDIO else 1), 0.25, np.float32)
                for name, decl in node.inputs().items()
            }
            if "freq" in ins:
                ins["freq"][:] = rng.uniform(100.0, 400.0, (lanes, 1))
            out = np.zeros((lanes, block), np.float32)
            blocks = []
            for _ in range(4):
                node.process(_ports(**ins), _ports(out=out), block)
                blocks.append(out.copy())
            outputs.append(np.concatenate(blocks, axis=1))
        every, skipping = outputs
        assert np.all(skipping[1] == 0.0), cls.type_name
        assert np.sqrt(np.mean(every[1] ** 2)) > 0.01, cls.type_name  # the lane would have sounded
        np.testing.assert_array_equal(skipping[[0, 2]], every[[0, 2]])


def _flute_blocks(engine: ng.Engine, notes: tuple[int, ...], blocks: int) -> np.ndarray:
    engine.reset()
    for note in notes:
        engine.note_on(note, 100)
    return np.concatenate([engine.process().copy() for _ in range(blocks)], axis=1)


def _dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(max(np.sqrt(np.mean(np.square(x, dtype=np.float64))), 1e-12)))


def test_neural_flute_free_voices_are_skipped_and_truly_silent():
    """Eight voices, two notes: six voices never sound. Run with every lane, the free voices'
    decoder output at the loudness floor hums at about -68 dBFS; skipped, they are silent."""
    patch = ng.load_patch(ROOT / "graphs" / "neural_flute.toml", overrides={"keys.count": 8})
    engine = ng.Engine(patch)
    harmonic, noise = engine.plan.nodes["harmonic"], engine.plan.nodes["noise"]
    flags = engine.plan.nodes["keys"].lane_activity()
    assert harmonic.active.base is flags and noise.active.base is flags
    silent_skipped = _flute_blocks(engine, (), 40)
    skipped = _flute_blocks(engine, (69, 76), 150)
    harmonic.active = noise.active = np.ones(8, np.uint8)  # what the nodes do without flags
    silent_every = _flute_blocks(engine, (), 40)
    every = _flute_blocks(engine, (69, 76), 150)
    assert np.all(silent_skipped == 0.0)
    assert -90.0 < _dbfs(silent_every) < -50.0  # the idle hum skipping removes
    assert _dbfs(every) > -35.0
    assert _dbfs(every - skipped) < _dbfs(every) - 30.0  # the notes themselves are unchanged
