"""Oscillators checked against analytic waveforms and spectra, rendered through real patches."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile
from analysis import peak_frequency, raw_engine, raw_render
from scipy.special import jv

import neuralgraph as ng

SR = 48000


def render(
    load,
    node: dict,
    seconds: float,
    *,
    sample_rate: int = SR,
    block: int = 256,
    extra: dict | None = None,
    input: np.ndarray | None = None,
) -> np.ndarray:
    """Render node ``o`` (plus ``extra`` nodes) to a 1-channel output; returns the samples."""
    nodes = {"o": node, **(extra or {}), "out": {"type": "io.output", "channels": 1, "in": "o"}}
    engine = raw_engine(load(nodes), sample_rate, block)
    return raw_render(engine, seconds, input=input)[0].astype(np.float64)


def periodic_spectrum(x: np.ndarray) -> np.ndarray:
    """Amplitudes per 1 Hz bin of exactly one second of a signal periodic in that second."""
    n = len(x)
    return np.abs(np.fft.rfft(x)) * 2.0 / n


def alias_ratio_db(x: np.ndarray, f0: int, sample_rate: int = SR) -> float:
    """Energy off the harmonics of ``f0`` relative to the fundamental, in dB (1 s, 1 Hz bins)."""
    spec = periodic_spectrum(x)
    harmonic = np.zeros(len(spec), bool)
    harmonic[np.arange(f0, sample_rate // 2 + 1, f0)] = True
    harmonic[0] = True  # DC is not aliasing
    return float(20 * np.log10(np.sqrt(np.sum(spec[~harmonic] ** 2)) / spec[f0]))


def steady_second(load, node: dict, warm: int = 4800) -> np.ndarray:
    """One second after ``warm`` samples, so start-up transients are not in the spectrum."""
    return render(load, node, 1.0 + warm / SR)[warm : warm + SR]


@pytest.mark.parametrize("kind", ["osc.sine", "osc.saw", "osc.square", "osc.triangle", "osc.wavetable"])
@pytest.mark.parametrize("rate", [22050, 44100, 96000])
def test_fundamental_frequency_at_several_sample_rates(load, kind, rate):
    out = render(load, {"type": kind, "freq": 441.0}, 0.5, sample_rate=rate)
    assert abs(peak_frequency(out, rate) - 441.0) < 0.3


def blep_residual(phase: np.ndarray, dt: float) -> np.ndarray:
    """2-point PolyBLEP residual of a unit step at phase 0 (Valimaki), for comparison only."""
    out = np.zeros_like(phase)
    after, before = phase < dt, phase > 1 - dt
    t = phase[after] / dt
    out[after] = (2 * t - t * t - 1) / 2
    t = (phase[before] - 1) / dt
    out[before] = (t * t + 2 * t + 1) / 2
    return out


@pytest.mark.parametrize("f0", [2003, 5003, 10007])
@pytest.mark.parametrize("kind", ["osc.saw", "osc.square"])
def test_aliasing_far_below_fundamental_and_naive(load, kind, f0):
    out = steady_second(load, {"type": kind, "freq": float(f0)})
    phase = np.mod(f0 * np.arange(4800, 4800 + SR) / SR, 1.0)
    if kind == "osc.saw":
        naive = 2 * phase - 1
        polyblep = naive - 2 * blep_residual(phase, f0 / SR)
    else:
        naive = np.where(phase < 0.5, 1.0, -1.0)
        polyblep = naive + 2 * blep_residual(phase, f0 / SR) - 2 * blep_residual(np.mod(phase + 0.5, 1.0), f0 / SR)
    ours, theirs = alias_ratio_db(out, f0), alias_ratio_db(naive, f0)
    print(
        f"{kind} {f0} Hz: aliasing {ours:.1f} dB (naive {theirs:.1f} dB, "
        f"2-point PolyBLEP {alias_ratio_db(polyblep, f0):.1f} dB)"
    )
    assert ours < -40.0
    assert ours < theirs - 30.0
    assert abs(out.mean()) < 1e-3  # no DC offset growing with frequency
    print(f"{kind} {f0} Hz: peak {np.abs(out).max():.3f}")
    # linear-phase steps overshoot by the Gibbs amount: measured peaks 1.077, 0.936, 0.710 (saw)
    # and 1.177, 1.200, 1.273 (square) at these frequencies, where minimum-phase steps gave up to
    # 1.43; a band-limited square above SR/6 is its fundamental alone, of amplitude 4/pi
    assert np.abs(out).max() < (1.09 if kind == "osc.saw" else 4 / np.pi + 0.01)


@pytest.mark.parametrize("kind", ["osc.saw", "osc.square", "osc.triangle"])
def test_band_limited_oscillators_sound_the_same_at_any_block_size(load, kind):
    # the edges in the 16 samples after a block are predicted, so that block's end gets the half of
    # their band-limited step before the edge: a block boundary must leave no trace in the sound
    node = {"type": kind, "freq": 1234.5}
    reference = render(load, node, 0.1, block=1000)
    for block in (37, 64, 256):
        assert np.abs(render(load, node, 0.1, block=block) - reference).max() < 1e-5, block


@pytest.mark.parametrize("freq", [110.0, 3000.0, 15000.0, -440.0, -12000.0])
@pytest.mark.parametrize("block", [37, 64])
def test_saw_block_passes_match_the_sample_by_sample_loop(load, freq, block):
    # A block at a constant frequency without a sync edge is written in vectorised passes (the
    # ramp between computable wraps, then their steps); a sync input held high (one edge, at the
    # first frame, where the phase is 0 already) keeps every block on the sample-by-sample loop.
    # The two must sound the same: they differ only in float64 rounding (p + i dt against a
    # running sum), at most two float32 steps (1.2e-7 each below 2) at the saw's peaks of 1.17.
    passes = render(load, {"type": "osc.saw", "freq": freq}, 0.2, block=block)
    loop = render(load, {"type": "osc.saw", "freq": freq, "sync": 1.0}, 0.2, block=block)
    assert np.abs(loop).max() > 0.5  # sounding (a 15 kHz band-limited saw peaks near 0.97)
    np.testing.assert_allclose(passes, loop, rtol=0, atol=2.5e-7)


def test_saw_harmonics_fall_as_one_over_n(load):
    spec = periodic_spectrum(steady_second(load, {"type": "osc.saw", "freq": 200.0}))
    for n in range(1, 16):
        expected = 2 / (np.pi * n)
        assert 20 * np.log10(spec[200 * n] / expected) == pytest.approx(0.0, abs=0.1), n


@pytest.mark.parametrize("width", [0.5, 0.25, 0.1])
def test_square_pulse_width_duty_and_harmonics(load, width):
    x = steady_second(load, {"type": "osc.square", "freq": 100.0, "width": width})
    assert np.mean(x > 0) == pytest.approx(width, abs=0.003)
    assert np.mean(x) == pytest.approx(2 * width - 1, abs=0.003)
    spec = periodic_spectrum(x)
    for n in range(1, 12):  # pulse: |4/(pi n) sin(pi n w)|
        expected = abs(4 / (np.pi * n) * np.sin(np.pi * n * width))
        assert spec[100 * n] == pytest.approx(expected, abs=0.003), n


def test_triangle_odd_harmonics_one_over_n_squared(load):
    spec = periodic_spectrum(steady_second(load, {"type": "osc.triangle", "freq": 200.0}))
    for n in range(1, 14):
        if n % 2:
            expected = 8 / (np.pi**2 * n**2)
            assert 20 * np.log10(spec[200 * n] / expected) == pytest.approx(0.0, abs=0.1), n
        else:
            assert spec[200 * n] < 1e-4


@pytest.mark.parametrize("f0", [2003, 10007])
def test_triangle_aliasing_below_naive(load, f0):
    out = steady_second(load, {"type": "osc.triangle", "freq": float(f0)})
    phase = np.mod(f0 * np.arange(4800, 4800 + SR) / SR + 0.25, 1.0)
    naive = 1 - 4 * np.abs(phase - 0.5)
    ours, theirs = alias_ratio_db(out, f0), alias_ratio_db(naive, f0)
    print(f"osc.triangle {f0} Hz: aliasing {ours:.1f} dB (naive {theirs:.1f} dB)")
    # 2-point PolyBLAMP: about 10 dB better than naive here (harmonics already fall as 1/n^2);
    # linear-phase corners measured -115.4 and -97.0 dB (minimum-phase ones -105.9 and -85.1)
    assert ours < theirs - 8.0
    assert ours < -90.0


def test_sine_fm_sidebands_follow_bessel_functions(load):
    # freq = 1000 + 300 sin(2 pi 100 t): index 3; the lines at 1000 + k 100 Hz have |J_k(3)|
    mod = {"type": "osc.sine", "freq": 100.0}
    x = render(load, {"type": "osc.sine", "freq": {"from": "mod", "range": [700.0, 1300.0]}}, 1.0, extra={"mod": mod})
    spec = periodic_spectrum(x)
    for k in range(-4, 5):
        assert spec[1000 + 100 * k] == pytest.approx(abs(jv(k, 3.0)), abs=0.002), k


@pytest.mark.parametrize("block", [64, 100, 7])
def test_modulated_sine_follows_the_integral_of_its_frequency(load, block):
    # a frequency that moves every sample: the phases are a prefix sum of freq / rate, taken four
    # samples a step (and the rest of a block not a multiple of four one by one)
    n = np.arange(SR)
    freq = (440.0 + 300.0 * np.sin(2 * np.pi * 3.0 * n / SR)).astype(np.float32)
    inp = {"inp": {"type": "io.input", "channels": 1}}
    x = render(load, {"type": "osc.sine", "freq": "inp"}, 1.0, block=block, extra=inp, input=freq[None, :])
    phase = np.concatenate([[0.0], np.cumsum(freq.astype(np.float64))[:-1]]) / SR
    np.testing.assert_allclose(x, np.sin(2 * np.pi * phase), atol=1e-5)


def sync_signal(frames: int, at: int) -> np.ndarray:
    sync = np.zeros((1, frames), np.float32)
    sync[0, at:] = 1.0
    return sync


@pytest.mark.parametrize("block", [64, 100])
def test_sync_resets_phase_at_its_exact_frame(load, block):
    at, f = 1000, 100.0
    inp = {"inp": {"type": "io.input", "channels": 1}}
    n = np.arange(2000)
    t = (n - at) / SR
    after = slice(at + 40, at + 230)  # past the minBLEP correction, before the next edge
    sine = render(
        load,
        {"type": "osc.sine", "freq": f, "sync": "inp"},
        2000 / SR,
        block=block,
        extra=inp,
        input=sync_signal(2000, at),
    )
    np.testing.assert_allclose(sine[:at], np.sin(2 * np.pi * f * n[:at] / SR), atol=1e-5)
    np.testing.assert_allclose(sine[at:], np.sin(2 * np.pi * f * t[at:]), atol=1e-5)
    saw = render(
        load,
        {"type": "osc.saw", "freq": f, "sync": "inp"},
        2000 / SR,
        block=block,
        extra=inp,
        input=sync_signal(2000, at),
    )
    np.testing.assert_allclose(saw[after], 2 * f * t[after] - 1, atol=1e-3)  # linear-phase steps: no lag
    tri = render(
        load,
        {"type": "osc.triangle", "freq": f, "sync": "inp"},
        2000 / SR,
        block=block,
        extra=inp,
        input=sync_signal(2000, at),
    )
    ramp = slice(at + 40, at + 100)
    np.testing.assert_allclose(tri[ramp], 4 * f * t[ramp], atol=1e-4)  # linear-phase corners: no lag either
    sq = render(
        load,
        {"type": "osc.square", "freq": f, "sync": "inp"},
        2000 / SR,
        block=block,
        extra=inp,
        input=sync_signal(2000, at),
    )
    np.testing.assert_allclose(sq[after], 1.0, atol=0.01)


def test_wavetable_npy_from_patch_dir_linear_and_cubic(write_patch, tmp_path):
    cycle = np.sin(2 * np.pi * np.arange(1024) / 1024) + 0.5 * np.sin(2 * np.pi * 3 * np.arange(1024) / 1024)
    np.save(tmp_path / "table.npy", cycle)
    for interpolation in ("linear", "cubic"):
        path = write_patch(f"""
schema = 1
[nodes.o]
type = "osc.wavetable"
table = "table.npy"
interpolation = "{interpolation}"
freq = 200.0
[nodes.out]
type = "io.output"
channels = 1
in = "o"
""")
        engine = raw_engine(ng.load_patch(path), SR, 128)
        spec = periodic_spectrum(raw_render(engine, 1.0)[0].astype(np.float64))
        assert spec[200] == pytest.approx(1.0, abs=0.002)
        assert spec[600] == pytest.approx(0.5, abs=0.002)
        others = np.delete(spec, [200, 600])
        assert others.max() < (1e-3 if interpolation == "linear" else 1e-4)


def test_wavetable_removes_harmonics_above_nyquist(load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a patch built in code reads files relative to the working directory
    # harmonic 64 of a 1 kHz cycle is 64 kHz: the octave copy in use must not contain it
    x = np.arange(2048) / 2048
    np.save(tmp_path / "bright.npy", np.sin(2 * np.pi * x) + np.sin(2 * np.pi * 64 * x))
    spec = periodic_spectrum(render(load, {"type": "osc.wavetable", "table": "bright.npy", "freq": 1000.0}, 1.0))
    assert spec[1000] == pytest.approx(1.0, abs=0.002)
    assert np.delete(spec, 1000).max() < 1e-3


def test_wavetable_frames_from_wav_morph_with_position(load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a patch built in code reads files relative to the working directory
    x = np.arange(512) / 512
    frames = np.concatenate([np.sin(2 * np.pi * x), 0.5 * np.sin(2 * np.pi * 2 * x)])
    soundfile.write(tmp_path / "frames.wav", frames.astype(np.float32), SR, subtype="FLOAT")
    node = {"type": "osc.wavetable", "table": "frames.wav", "frame_size": 512, "freq": 100.0}
    first = periodic_spectrum(render(load, {**node, "position": 0.0}, 1.0))
    middle = periodic_spectrum(render(load, {**node, "position": 0.5}, 1.0))
    last = periodic_spectrum(render(load, {**node, "position": 1.0}, 1.0))
    assert (first[100], first[200]) == (pytest.approx(1.0, abs=1e-3), pytest.approx(0.0, abs=1e-3))
    assert (middle[100], middle[200]) == (pytest.approx(0.5, abs=1e-3), pytest.approx(0.25, abs=1e-3))
    assert (last[100], last[200]) == (pytest.approx(0.0, abs=1e-3), pytest.approx(0.5, abs=1e-3))


def test_wavetable_bad_file_is_a_patch_error(load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a patch built in code reads files relative to the working directory
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ng.PatchError, match="1-D or 2-D"):
        ng.Engine(
            load({"o": {"type": "osc.wavetable", "table": "cube.npy"}, "out": {"type": "io.output", "in": "o"}}),
            sample_rate=SR,
            block_size=64,
        )


def test_render_cli_writes_a_square_wav(write_patch, tmp_path):
    patch = write_patch("""
schema = 1
[engine]
sample_rate = 48000
block_size = 128
[nodes.o]
type = "osc.square"
freq = 250.0
width = 0.25
[nodes.half]
type = "math.mul"
in = "o"
gain = 0.5
[nodes.out]
type = "io.output"
channels = 1
in = "half"
""")
    wav = tmp_path / "square.wav"
    done = subprocess.run(
        [sys.executable, "-m", "neuralgraph", "render", str(patch), "-o", str(wav), "--seconds", "1.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data, rate = soundfile.read(wav, dtype="float64")
    assert rate == 48000
    second = data[4800 : 4800 + SR]
    assert abs(peak_frequency(second, rate) - 250.0) < 0.3
    assert np.mean(second > 0) == pytest.approx(0.25, abs=0.003)


@pytest.mark.parametrize("kind", ["osc.saw", "osc.square", "osc.triangle", "osc.sine", "osc.wavetable"])
def test_through_zero_fm_stays_bounded(load, kind):
    # freq swings -30 kHz .. +30 kHz at 700 Hz: backwards phase, clamped steps, corrections every sample
    x = render(
        load,
        {"type": kind, "freq": {"from": "mod", "range": [-30000.0, 30000.0]}},
        0.5,
        extra={"mod": {"type": "osc.sine", "freq": 700.0}},
    )
    assert np.abs(x).max() < 2.5  # band-limited steps and corners crowding near Nyquist overshoot, boundedly


def test_audio_rate_pwm_keeps_the_mean_and_stays_bounded(load):
    # width swept 0.1..0.9 by a 30 Hz sine: the pulse's mean follows 2w - 1 (average 0) and
    # over one modulation cycle the duty cycle averages 0.5
    x = render(
        load,
        {"type": "osc.square", "freq": 1000.0, "width": {"from": "mod", "range": [0.1, 0.9]}},
        1.0,
        extra={"mod": {"type": "osc.sine", "freq": 30.0}},
    )
    assert np.all(np.isfinite(x)) and np.abs(x).max() < 1.5
    assert abs(x.mean()) < 0.01
    # within 1 ms around the modulator's crest (width 0.9) the pulse is mostly high
    crest = int(SR / 30 / 4)
    assert x[crest - 24 : crest + 24].mean() == pytest.approx(0.8, abs=0.1)


def test_wavetable_fades_harmonics_out_over_an_octave(load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a patch built in code reads files relative to the working directory
    # 64 equal harmonics in a 2048-sample cycle. Harmonic 17 lives in octave copies 0..5
    # (copy k keeps up to 1024 >> k); from 375 to 750 Hz copy 5 fades into copy 6, so its level
    # falls linearly in log-frequency from 1 to 0 instead of vanishing at one frequency.
    x = np.arange(2048) / 2048
    np.save(tmp_path / "buzz.npy", sum(np.sin(2 * np.pi * h * x) for h in range(1, 65)))
    for k in range(9):
        f = round(375 * 2 ** (k / 8))
        spec = periodic_spectrum(render(load, {"type": "osc.wavetable", "table": "buzz.npy", "freq": float(f)}, 1.0))
        fade = min(1.0, max(0.0, np.log2(2 * f / SR * 1024) - 4))
        assert spec[17 * f] == pytest.approx(1 - fade, abs=0.01), f
        assert spec[3 * f] == pytest.approx(1.0, abs=0.01)  # low harmonics are in every copy used


#: Peak bounds over 9 frequencies x 7 restart phases, measured (python of this test, max over all):
#: saw 1.152 (at 441 Hz; it was 1.393 with minimum-phase steps), square 1.347 (a restart that
#: leaves a one-sample pulse at 3-17 kHz; free-running it peaks at 1.17 below SR/6 and 4/pi = 1.27
#: above, where only its fundamental is left; it was 1.956), triangle 1.038 (the step of a restart;
#: it was 2.616 with minimum-phase corners and steps). The Gibbs overshoot of a band-limited step is
#: 8.7 % of its height (2): 1.17 is the most a saw can reach through it.
PEAK_BOUND = {"osc.saw": 1.16, "osc.square": 1.36, "osc.triangle": 1.05}


@pytest.mark.parametrize("kind", ["osc.saw", "osc.square", "osc.triangle"])
@pytest.mark.parametrize("f", [20.0, 100.0, 441.0, 1000.0, 3000.0, 5003.0, 9000.0, 13000.0, 17000.0])
def test_band_limited_peaks_stay_within_the_gibbs_overshoot_at_any_phase(load, kind, f):
    # Linear-phase band-limited steps overshoot by the Gibbs amount (8.7 % of the jump); the
    # minimum-phase ones they replaced rang to 21 % (saw peaks 1.23-1.39), and before that the saw
    # started below -1 (peaks up to 2.10). The saw starts at exactly -1, rising.
    bound = PEAK_BOUND[kind]
    start = render(load, {"type": kind, "freq": f}, 0.02)
    if kind == "osc.saw" and f <= 3000.0:  # its first wrap is 16 samples away or more: no correction yet
        assert start[0] == -1.0
    assert np.abs(start).max() < bound
    inp = {"inp": {"type": "io.input", "channels": 1}}
    for k in range(7):  # restart the cycle at seven different phases (and sub-sample positions)
        at = 900 + int(k * SR / f / 7) + k
        x = render(load, {"type": kind, "freq": f, "sync": "inp"}, 2400 / SR, extra=inp, input=sync_signal(2400, at))
        assert np.abs(x).max() < bound, (k, np.abs(x).max())


@pytest.mark.parametrize(
    "table, message",
    [
        (np.zeros((0, 4096)), r"cube\.npy has shape \(0, 4096\): no cycles"),
        (np.zeros((3, 0)), "cycles have 0 samples; at least 4"),
        (np.zeros(0), "cycles have 0 samples; at least 4"),
        (np.zeros((2, 1)), "cycles have 1 samples; at least 4"),
        (np.ones(64, np.complex128), "real numbers.*complex128"),
        (np.ones(64, bool), "real numbers.*bool"),
        (np.full(64, np.nan), "NaN or infinite"),
        (np.array([0.0, 1.0, np.inf, 0.0]), "NaN or infinite"),
    ],
)
def test_wavetable_shape_and_values_are_checked_at_load(load, tmp_path, monkeypatch, table, message):
    # a (0, 4096) table used to render leftover memory (NaN, subnormals, 5.7e32) into the file
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "cube.npy", table)
    with pytest.raises(ng.PatchError, match=message) as err:
        ng.Engine(
            load({"o": {"type": "osc.wavetable", "table": "cube.npy"}, "out": {"type": "io.output", "in": "o"}}),
            sample_rate=SR,
            block_size=64,
        )
    assert "`o`" in str(err.value) or "o:" in str(err.value) or "nodes.o" in str(err.value), str(err.value)


def test_the_sine_polynomial_is_within_3_4e_9_of_sin_and_the_output_within_float32_rounding(load):
    """``_sin_cycle`` (odd degree-9 minimax on a quarter cycle) against numpy's sin on a dense grid
    of phases, and a rendered constant-frequency sine against the ideal one: the polynomial's
    error is 18x below float32's resolution, so the output is the ideal rounded to float32
    (within one float32 step at full scale, 2**-24 each side)."""
    from neuralgraph_plugins.oscillators import _sin_cycle

    phases = np.linspace(0.0, 1.0, 200_003, endpoint=False)
    error = max(abs(_sin_cycle(float(p)) - np.sin(2 * np.pi * p)) for p in phases)
    assert 1e-9 < error < 3.4e-9  # the figure docs/nodes-classic.md quotes (a change of fit must update it)
    f = 1234.5
    x = render(load, {"type": "osc.sine", "freq": f}, 0.5, block=64)
    ideal = np.sin(2 * np.pi * ((f / SR * np.arange(x.size)) % 1.0))
    assert np.max(np.abs(x.astype(np.float64) - ideal)) < 2.0**-24 + 1e-9


def test_the_sine_of_an_unfolded_phase_is_within_3_4e_9_of_sin():
    """``_sin_phase`` (what ``osc.sine`` evaluates: the same polynomial on a fold by floor and
    abs) takes phases outside [0, 1), negative and thousands of cycles on, and stays within the
    polynomial's 3.4e-9 of sin on each side of every fold point (quarter and half cycles)."""
    from neuralgraph_plugins.oscillators import _sin_phase

    grid = np.linspace(-4.0, 4.0, 100_003)
    phases = np.concatenate([grid, grid + 4096.0, np.arange(-8, 9) / 4.0, np.arange(-8, 9) / 4.0 + 1e-12])
    error = max(abs(_sin_phase(float(q)) - np.sin(2 * np.pi * (q % 1.0))) for q in phases)
    assert 1e-9 < error < 3.4e-9


def test_the_vector_sine_pass_gives_the_scalar_polynomials_samples_bit_for_bit():
    """An FM carrier's sines, eight at a time as LLVM vector operations (``_sines_of_phases``),
    are the float32 of ``_sin_phase`` of each phase exactly: random phases, phases on each side of
    every fold point (quarter and half cycles), negative ones and thousands of cycles on."""
    from numba import njit

    import neuralgraph_plugins.oscillators as osc

    osc._sin_phase(0.0)  # compiled in this process: the module now holds numba's dispatchers
    sines, step = osc._sines_of_phases, osc.SINES

    @njit
    def vector_pass(phases, out):  # row 1 of out, as a lane of a multi-lane node
        for i in range(0, phases.size, step):
            sines(phases, out, 1, i)

    grid = np.arange(-8, 9) / 4.0
    phases = np.concatenate(
        [np.random.default_rng(3).uniform(-3.0, 3.0, 4000), grid, grid + 1e-12, grid - 1e-12, grid + 4096.0]
    )
    phases = phases[: phases.size // step * step]
    out = np.zeros((3, phases.size), np.float32)
    vector_pass(phases, out)
    want = np.array([np.float32(osc._sin_phase(float(q))) for q in phases], np.float32)
    np.testing.assert_array_equal(out[1], want)
    assert not out[0].any() and not out[2].any()  # the other lanes untouched
