"""The example plugin's own tests: it is found through its entry point and crushes exactly as
documented, compared sample by sample with the dry sine it is fed."""

from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng

PATCH = Path(__file__).resolve().parent.parent / "crushed_sine.toml"


def render(seconds: float, **overrides: float) -> tuple[np.ndarray, np.ndarray]:
    """(crushed output, the dry sine feeding it): the same patch with its output read at `osc`."""

    def run(extra: dict) -> np.ndarray:
        patch = ng.load_patch(PATCH, overrides={**overrides, **extra})
        engine = ng.Engine(patch, sample_rate=48000, block_size=64, ceiling=float("inf"))
        audio = engine.render(seconds)[0]
        assert engine.plan.guard.non_finite == 0
        return audio

    return run({}), run({"out.in": "osc"})


def test_registered_through_the_entry_point():
    assert ng.default_registry().node_types["fx.bitcrush"].plugin == "bitcrush"


def test_three_bits_give_the_nine_levels_of_the_rounded_sine():
    crushed, dry = render(0.5)
    assert np.abs(dry).max() > 0.99  # a full-scale sine goes in
    # 2**(3-1) = 4 steps each side of zero: every sample is the dry one rounded to the nearest quarter
    np.testing.assert_array_equal(crushed, np.rint(dry * 4) / 4)
    assert np.unique(crushed).tolist() == [k / 4 for k in range(-4, 5)]  # all nine levels, no others


@pytest.mark.parametrize("mix", [0.0, 0.5])
def test_mix_blends_the_dry_signal_and_the_crushed_one(mix):
    crushed, dry = render(0.1, **{"crush.mix": mix})
    assert len(np.unique(dry)) > 1000
    expected = dry + mix * (np.rint(dry * 4) / 4 - dry)
    np.testing.assert_allclose(crushed, expected, rtol=0, atol=1e-7)
    if mix == 0.0:
        np.testing.assert_array_equal(crushed, dry)  # mix 0 is the dry signal itself


def test_bits_set_while_playing_take_effect_at_the_next_block():
    patch = ng.load_patch(PATCH)
    engine = ng.Engine(patch, sample_rate=48000, block_size=64, ceiling=float("inf"))
    engine.render(0.01)
    engine.set("crush.bits", 2)
    levels = np.unique(engine.render(0.1)[0])
    assert levels.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
