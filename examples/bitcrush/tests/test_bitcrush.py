"""The example plugin's own tests: it is found through its entry point and crushes correctly."""

from pathlib import Path

import numpy as np

import neuralgraph as ng

PATCH = Path(__file__).resolve().parent.parent / "crushed_sine.toml"


def test_registered_through_the_entry_point():
    assert ng.default_registry().node_types["fx.bitcrush"].plugin == "bitcrush"


def test_three_bits_give_at_most_nine_levels():
    audio = ng.Engine(ng.load_patch(PATCH), sample_rate=48000, block_size=64).render(0.5)
    levels = np.unique(audio)
    assert len(levels) <= 9  # 2**(3-1) steps each side of zero, plus zero
    assert np.allclose(levels * 4, np.round(levels * 4))


def test_mix_zero_is_the_dry_signal():
    dry = ng.Engine(ng.load_patch(PATCH, overrides={"crush.mix": 0.0}), sample_rate=48000, block_size=64).render(0.1)
    assert len(np.unique(dry)) > 1000
