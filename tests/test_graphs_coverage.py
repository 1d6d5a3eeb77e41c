"""Every shipped patch in graphs/ renders, and together they use every built-in node type.

Issue 3 asks that each node of the classic library plays inside a patch a test renders. MIDI-driven
patches play the whole of examples/midi/arpeggio.mid (its chords are where levels add up; plus a
second of release tail); the others render half a second, patches on
``io.input`` with a generated stereo signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import builtin_types

import neuralgraph as ng
from neuralgraph._io.midifile import midi_length
from neuralgraph.plugin import Rate

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
PATCHES = sorted([*GRAPHS.glob("*.toml"), *(GRAPHS / "bench").glob("*.toml")])
ARPEGGIO = ROOT / "examples" / "midi" / "arpeggio.mid"
SECONDS = 0.5

# The node types issue 3 names (part of the public contract).
ISSUE_TYPES = [
    "osc.sine",
    "osc.saw",
    "osc.square",
    "osc.triangle",
    "osc.wavetable",
    "noise.white",
    "noise.pink",
    "filter.lowpass",
    "filter.highpass",
    "filter.bandpass",
    "filter.notch",
    "filter.peak",
    "filter.lowshelf",
    "filter.highshelf",
    "filter.onepole",
    "filter.dc_block",
    "env.adsr",
    "env.ar",
    "lfo",
    "control.smooth",
    "control.slew",
    "map.range",
    "map.midi_to_hz",
    "map.db_to_gain",
    "map.quantize",
    "map.clamp",
    "fx.gain",
    "fx.pan",
    "fx.waveshape",
    "fx.delay",
    "fx.chorus",
    "fx.reverb",
    "fx.limiter",
    "mix",
    "voices.sum",
    "math.add",
    "math.mul",
    "math.sub",
    "math.abs",
    "math.min",
    "math.max",
    "io.output",
    "io.input",
]


def needs_midi(patch: ng.Patch) -> bool:
    """True when a node listens to the engine's MIDI (an events input with source = "midi")."""
    for node in patch.spec.nodes.values():
        decls = patch.registry.node_class(node.type)().inputs().values()
        if any(d.rate is Rate.EVENTS and d.source == "midi" for d in decls):
            return True
    return False


def test_the_issue_types_are_all_built_in():
    registry = ng.Registry.load()
    missing = [t for t in ISSUE_TYPES if t not in builtin_types(registry)]
    assert not missing, f"not registered by a built-in plugin: {missing}"


def test_graphs_use_every_built_in_node_type():
    registry = ng.Registry.load()
    used: set[str] = set()
    for path in PATCHES:
        used |= {node.type for node in ng.load_patch(path).spec.nodes.values()}
    unused = sorted(builtin_types(registry) - used)
    assert not unused, f"built-in node types no patch in graphs/ uses: {unused}"


def stereo_input(seconds: float, sample_rate: int) -> np.ndarray:
    """A guitar-ish test input: a decaying 196 Hz plucked tone with harmonics, re-struck every 0.25 s."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    since = t % 0.25
    tone = sum(np.sin(2 * np.pi * 196.0 * h * t) / h for h in (1, 2, 3, 4)) * np.exp(-since / 0.08)
    return np.stack([tone, 0.8 * tone]).astype(np.float32) * 0.4


@pytest.mark.parametrize("path", PATCHES, ids=[str(p.relative_to(GRAPHS)) for p in PATCHES])
def test_patch_renders_finite_and_audible(path):
    patch = ng.load_patch(path)
    engine = ng.Engine(patch)
    midi = ARPEGGIO if needs_midi(patch) else None
    feed = stereo_input(SECONDS, engine.sample_rate) if engine.input is not None else None
    seconds = midi_length(midi) + 1.0 if midi else SECONDS
    out = engine.render(seconds, midi=midi, input=feed)
    assert out.shape == (patch.channels, int(seconds * engine.sample_rate))
    guard = engine.plan.guard  # the output guard zeroes NaN/Inf and limits at 0 dBFS: ask what it caught
    assert guard.non_finite == 0, f"{path.name}: {guard.non_finite} NaN/Inf samples"
    assert engine.faults() == []
    rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    assert rms > 1e-3, f"{path.name}: silent (RMS {rms:.2g})"
    if path.parent == GRAPHS:  # the musical patches leave headroom; graphs/bench/ are load tests
        assert guard.clipped == 0, f"{path.name}: peak {guard.peak:.2f} clipped at full scale"
