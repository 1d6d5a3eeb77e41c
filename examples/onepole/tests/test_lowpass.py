"""The example plugin's own tests: the filter's output, sample for sample, against a reference."""

import math
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

import neuralgraph as ng

SR = 48000
PATCH = Path(__file__).resolve().parent.parent / "lowpassed_saw.toml"


def engine(cutoff: float, smooth_ms: float, fuse: bool = True) -> ng.Engine:
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "src": {"type": "io.input", "channels": 1},
                "lpf": {"type": "tutorial.lowpass", "in": "src", "cutoff": cutoff, "smooth_ms": smooth_ms},
                "out": {"type": "io.output", "channels": 1, "in": "lpf"},
            },
        }
    )
    return ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf, fuse=fuse)


def coefficient(cutoff: float) -> float:
    return 1.0 - math.exp(-2.0 * math.pi * cutoff / SR)


def noise(frames: int) -> np.ndarray:
    return np.random.default_rng(7).uniform(-1.0, 1.0, (1, frames)).astype(np.float32)


def test_registered_through_the_entry_point():
    assert ng.default_registry().node_types["tutorial.lowpass"].plugin == "onepole"


def test_output_equals_the_difference_equation():
    x = noise(4800)
    a = coefficient(1000.0)
    expected = lfilter([a], [1.0, a - 1.0], x[0].astype(np.float64))  # y[n] = a x[n] + (1 - a) y[n-1]
    for fuse in (True, False):
        out = engine(1000.0, 10.0, fuse).render(len(x[0]) / SR, input=x)[0]
        np.testing.assert_allclose(out, expected, atol=2e-6)


def test_a_cutoff_change_glides_and_reset_starts_afresh():
    x = noise(9600)
    e = engine(200.0, 5.0)
    first = e.render(4800 / SR, input=x[:, :4800])[0]
    e.set("lpf.cutoff", 5000.0)  # applied at the next block boundary, frame 4800
    second = e.render(4800 / SR, input=x[:, 4800:])[0]
    # the reference: the coefficient approaches its target by 1 - exp(-1/(5 ms * SR)) per sample
    glide = 1.0 - math.exp(-1000.0 / (5.0 * SR))
    a = np.full(9600, coefficient(200.0))
    n = np.arange(1, 4801)
    a[4800:] = coefficient(5000.0) + (coefficient(200.0) - coefficient(5000.0)) * (1.0 - glide) ** n
    y, expected = 0.0, np.zeros(9600)
    for i in range(9600):
        y += a[i] * (float(x[0, i]) - y)
        expected[i] = y
    np.testing.assert_allclose(np.concatenate([first, second]), expected, atol=2e-6)
    e.reset()
    again = e.render(4800 / SR, input=x[:, :4800])[0]
    assert np.abs(again - first).max() > 1e-3  # after reset the cutoff is 5 kHz, no glide from 200 Hz
    np.testing.assert_allclose(
        again,
        lfilter([coefficient(5000.0)], [1.0, coefficient(5000.0) - 1.0], x[0, :4800].astype(np.float64)),
        atol=2e-6,
    )


def test_the_patch_renders_a_darker_saw():
    audio = ng.Engine(ng.load_patch(PATCH), sample_rate=SR, block_size=256).render(1.0)[0]
    spectrum = np.abs(np.fft.rfft(audio[SR // 10 :]))
    bins = np.fft.rfftfreq(len(audio) - SR // 10, 1 / SR)
    h1 = spectrum[np.argmin(abs(bins - 110))]
    h30 = spectrum[np.argmin(abs(bins - 3300))]
    # a saw's 30th harmonic is 1/30 of its fundamental; the filter takes a further ~12 dB off
    assert 20 * np.log10(h30 / h1) < 20 * np.log10(1 / 30) - 10
