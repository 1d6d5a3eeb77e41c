"""Control mappers and the math.sub/abs/min/max nodes: exact values through real patches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis import raw_engine, raw_render

import neuralgraph as ng

SR = 48000


def run(node: dict, values, *, extra: dict | None = None, block: int = 64) -> np.ndarray:
    """Feed ``values`` (one lane) through io.input ``src`` into ``node`` (named ``y``); return its output."""
    source = np.asarray(values, np.float32).reshape(1, -1)
    nodes = {
        "src": {"type": "io.input", "channels": 1},
        "y": node,
        **(extra or {}),
        "out": {"type": "io.output", "channels": 1, "in": "y"},
    }
    engine = raw_engine(ng.load_patch({"schema": 1, "nodes": nodes}), SR, block)  # control values, not audio
    return raw_render(engine, source.shape[1] / SR, input=source)[0]


def test_map_range_linear_maps_end_points_and_extrapolates():
    y = run(
        {"type": "map.range", "in": "src", "in_lo": 0.0, "in_hi": 1.0, "out_lo": 100.0, "out_hi": 300.0},
        [0.0, 0.25, 0.5, 1.0, 1.5, -0.5],
    )
    assert y.tolist() == [100.0, 150.0, 200.0, 300.0, 400.0, 0.0]


def test_map_range_exponential_is_log_linear_and_held_in_range():
    y = run(
        {
            "type": "map.range",
            "in": "src",
            "in_lo": -1.0,
            "in_hi": 1.0,
            "out_lo": 20.0,
            "out_hi": 20000.0,
            "curve": "exp",
        },
        [-1.0, 0.0, 1.0, 0.5, 2.0, -3.0],
    )
    assert y[0] == pytest.approx(20.0, rel=1e-6)
    assert y[1] == pytest.approx(math.sqrt(20.0 * 20000.0), rel=1e-6)  # the geometric middle
    assert y[2] == pytest.approx(20000.0, rel=1e-6)
    assert y[3] == pytest.approx(20.0 * 1000.0**0.75, rel=1e-6)
    assert y[4] == pytest.approx(20000.0, rel=1e-6) and y[5] == pytest.approx(20.0, rel=1e-6)


@pytest.mark.parametrize("curve,rng", [("lin", [-3.0, 5.0]), ("exp", [50.0, 5000.0]), ("exp", [8000.0, 80.0])])
def test_map_range_matches_the_inline_mapping_within_float32_rounding(curve, rng):
    values = np.linspace(-1.2, 1.2, 640)
    node = run(
        {
            "type": "map.range",
            "in": "src",
            "in_lo": -1.0,
            "in_hi": 1.0,
            "out_lo": rng[0],
            "out_hi": rng[1],
            "curve": curve,
        },
        values,
    )
    # io.input declares the span -1..1, so the inline mapping maps the same interval
    inline = run({"type": "math.add", "a": {"from": "src", "range": rng, "curve": curve}, "b": 0.0}, values)
    if curve == "lin":
        assert np.array_equal(node, inline)
    else:  # the inline mapping runs compiled (LLVM's exp, even alone: a run of one), the node numpy's
        np.testing.assert_allclose(node, inline, rtol=2**-22, atol=0)  # two float32 steps at most


def test_map_range_rejects_impossible_ranges_with_its_own_error():
    with pytest.raises(ng.NeuralgraphError, match="exp curve needs out_lo and out_hi > 0"):
        run({"type": "map.range", "in": "src", "out_lo": 0.0, "out_hi": 10.0, "curve": "exp"}, [0.0])
    with pytest.raises(ng.NeuralgraphError, match="in_lo and in_hi must differ"):
        run({"type": "map.range", "in": "src", "in_lo": 1.0, "in_hi": 1.0}, [0.0])


def test_map_range_span_feeds_inline_mappings_downstream():
    # map.range declares [out_lo, out_hi] as its span, so a mapping from it maps that interval
    y = run(
        {"type": "math.add", "a": {"from": "m", "range": [0.0, 1.0]}, "b": 0.0},
        [0.0, 0.5, 1.0],
        extra={"m": {"type": "map.range", "in": "src", "out_lo": 200.0, "out_hi": 400.0}},
    )
    assert np.allclose(y, [0.0, 0.5, 1.0], atol=1e-6)


def test_midi_to_hz():
    y = run({"type": "map.midi_to_hz", "in": "src"}, [69.0, 81.0, 57.0, 60.0, 69.5, 0.0])
    assert np.allclose(y, [440.0, 880.0, 220.0, 261.6255653, 440.0 * 2 ** (0.5 / 12), 8.1757989], rtol=1e-6)
    tuned = run({"type": "map.midi_to_hz", "in": "src", "tuning": 432.0}, [69.0, 81.0])
    assert np.allclose(tuned, [432.0, 864.0], rtol=1e-6)


def test_db_to_gain():
    y = run({"type": "map.db_to_gain", "in": "src"}, [0.0, -20.0, 20.0, -6.0205999, -119.0, -120.0, -200.0])
    assert np.allclose(y[:5], [1.0, 0.1, 10.0, 0.5, 10 ** (-119 / 20)], rtol=1e-5)
    assert y[5] == 0.0 and y[6] == 0.0  # at or below the floor: silence, exactly


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("round", [0.0, 0.5, 0.5, 1.0, -0.5, 60.0]),
        ("floor", [0.0, 0.0, 0.5, 0.5, -0.5, 59.5]),
        ("ceil", [0.0, 0.5, 1.0, 1.0, 0.0, 60.0]),
    ],
)
def test_quantize(mode, expected):
    y = run({"type": "map.quantize", "in": "src", "step": 0.5, "mode": mode}, [0.0, 0.3, 0.6, 0.9, -0.4, 59.9])
    assert y.tolist() == expected


def test_quantize_with_offset_snaps_to_the_shifted_grid():
    y = run({"type": "map.quantize", "in": "src", "step": 2.0, "offset": 1.0}, [0.2, 1.9, 2.1, 4.2])
    assert y.tolist() == [1.0, 1.0, 3.0, 5.0]


def test_clamp():
    y = run({"type": "map.clamp", "in": "src", "lo": -0.25, "hi": 0.5}, [-1.0, -0.25, 0.0, 0.5, 3.0])
    assert y.tolist() == [-0.25, -0.25, 0.0, 0.5, 0.5]


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("math.sub", lambda a, b: a - b),
        ("math.min", np.minimum),
        ("math.max", np.maximum),
    ],
)
def test_binary_math(kind, expected):
    values = np.array([-2.0, -0.5, 0.0, 0.25, 3.0], np.float32)
    y = run({"type": kind, "a": "src", "b": 0.1}, values)
    assert np.array_equal(y, expected(values, np.float32(0.1)).astype(np.float32))


def test_abs():
    assert run({"type": "math.abs", "in": "src"}, [-2.0, -0.5, 0.0, 0.25]).tolist() == [2.0, 0.5, 0.0, 0.25]
