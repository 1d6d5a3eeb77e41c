"""The DDSP flute, violin and trumpet on held-out notes (never in training) beat a fixed-spectrum additive baseline.

The recordings are FluidR3_GM's flute, violin and trumpet rendered by fluidsynth
(examples/train/evaluate_ddsp.py [--instrument violin|trumpet] --test-data tests/data); both renders are
driven by the recording's own f0 and loudness and compared by DDSP's multi-scale spectral distance.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_soundfont = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(SOUNDFONT).exists(),
    reason="needs fluidsynth and fluid-soundfont-gm",
)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "train" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ev = _load("evaluate_ddsp")
INSTRUMENTS = ev.td.INSTRUMENTS
#: (instrument, note, velocity, neural distance must be below this fraction of the baseline's)
#: measured on these 16-bit fixtures, MIDI f0 / measured f0 (neural vs baseline):
#: flute 70/v105 5.83 vs 8.13 / 5.76 vs 8.08, 84/v75 5.94 vs 8.99 / 5.81 vs 8.86;
#: violin 65/v105 5.64 vs 6.22 / 5.30 vs 5.99, 79/v75 5.42 vs 6.09 / 4.67 vs 5.43 (the violin's
#: margin is smaller: see docs/neural.md); trumpet 64/v105 5.82 vs 7.40 / 5.39 vs 7.11,
#: 78/v75 4.98 vs 12.22 / 4.87 vs 12.36
CASES = [
    ("flute", 70, 105, 0.85),
    ("flute", 84, 75, 0.85),
    ("violin", 65, 105, 0.93),
    ("violin", 79, 75, 0.91),
    ("trumpet", 64, 105, 0.85),
    ("trumpet", 78, 75, 0.6),
]


def test_cases_are_the_shipped_fixtures():
    assert {(i, n, v) for i, n, v, _ in CASES} == {
        (name, n, v) for name, inst in INSTRUMENTS.items() for n, v in inst.fixtures
    }
    assert ev.FIXTURES == INSTRUMENTS["flute"].fixtures  # the flute's constants are unchanged


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_the_fixture_notes_were_held_out_of_training(name):
    inst = INSTRUMENTS[name]
    for note, _vel in inst.fixtures:
        assert note in inst.held_out and note not in inst.train_notes
    assert all(n not in inst.held_out for _s, _e, n, _v in ev.td.note_list(inst.train_notes))
    assert set(inst.train_notes) | set(inst.held_out) == set(inst.notes)


def test_distance_is_zero_for_identical_signals_and_grows_with_difference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000) * 0.1
    assert ev.multiscale_spectral_distance(x, x) == 0.0
    near = ev.multiscale_spectral_distance(x, x * 1.1)
    assert 0.0 < near < ev.multiscale_spectral_distance(x, x * 2.0)


def test_note_mean_targets_give_each_frame_its_notes_steady_spectrum_at_the_frames_level():
    real, _sr = sf.read(str(ev.fixture_path(DATA, "violin", 65, 105)), dtype="float64")
    other, _sr = sf.read(str(ev.fixture_path(DATA, "violin", 79, 75)), dtype="float64")
    td = ev.td
    assert INSTRUMENTS["violin"].note_mean and not INSTRUMENTS["flute"].note_mean
    audio = np.concatenate([real, np.zeros(td.WIN), other])  # two held-out notes: two runs of frames
    data = td.analyse(audio, [(0.0, 1.2, 65, 105), (real.size / td.SR + 0.01, 9.0, 79, 75)], track_pitch=True)
    out = ev.td.note_mean_targets(data)
    assert np.array_equal(out["loudness"], data["loudness"]) and np.array_equal(out["f0"], data["f0"])
    loud = data["loudness"] > -40.0
    rel = lambda d: 20 * np.log10(d["harm"][loud, 5] / 10 ** (d["loudness"][loud] / 20))  # 6th harmonic, dB re RMS
    first, second = data["f0"][loud] == data["f0"][0], data["f0"][loud] != data["f0"][0]
    assert np.ptp(rel(data)[first]) > 10.0  # the vibrato swings the raw frame targets by many dB
    assert np.ptp(rel(out)[first]) < 0.01 and np.ptp(rel(out)[second]) < 0.01  # one steady spectrum per note
    assert abs(np.median(rel(out)[first]) - np.median(rel(out)[second])) > 1.0  # each note keeps its own


@pytest.mark.parametrize("f0_from", ["midi", "measured"])
@pytest.mark.parametrize("name, note, velocity, ratio", CASES)
def test_neural_model_is_closer_to_the_real_held_out_note_than_the_baseline(name, note, velocity, ratio, f0_from):
    """Both renders play the MIDI note's f0, or (DDSP's resynthesis protocol) the f0 that
    analysis.pitch measures on the recording, vibrato included."""
    real, sr = sf.read(str(ev.fixture_path(DATA, name, note, velocity)), dtype="float64")
    spectrum = json.loads(ev.spectrum_path(DATA, name).read_text())
    assert sr == spectrum["sample_rate"] == ev.td.SR
    # the recording really is at the note's pitch: its strongest low partial is the fundamental
    freqs = np.fft.rfftfreq(real.size, 1 / sr)
    mag = np.abs(np.fft.rfft(real * np.hanning(real.size)))
    f0 = ev.td.midi_hz(note)
    assert abs(freqs[np.argmax(np.where(freqs < 1.5 * f0, mag, 0.0))] / f0 - 1.0) < 0.03
    pitch = ev.measured_f0(real) if f0_from == "measured" else None
    neural = ev.render_neural(real, note, ROOT / INSTRUMENTS[name].model, pitch)
    baseline = ev.render_baseline(real, note, spectrum, pitch)
    # both follow the recording's loudness: overall levels within 3 dB of it
    level = lambda x: 20 * np.log10(np.sqrt(np.mean(x**2)))
    assert abs(level(baseline) - level(real)) < 3.0
    assert abs(level(neural) - level(real)) < 3.0
    d_neural = ev.multiscale_spectral_distance(neural, real)
    d_base = ev.multiscale_spectral_distance(baseline, real)
    assert d_neural < ratio * d_base


def test_energy_analysis_reads_the_amplitude_of_partials_that_move_where_the_peak_reads_them_low():
    """G5 with the violin's vibrato (±17 cents at 5.7 Hz) and known partial amplitudes: the peak
    bin reads the 16th partial 4.5 dB low (measured median), the energy of the ±3 bins within 0.3 dB."""
    td = ev.td
    t = np.arange(int(1.5 * td.SR)) / td.SR
    f0 = td.midi_hz(79)
    phase = 2 * np.pi * np.cumsum(f0 * 2 ** (17 / 1200 * np.sin(2 * np.pi * 5.7 * t))) / td.SR
    amps = {k: 0.1 / k for k in range(1, 20)}  # 19 x 784 Hz < 16 kHz
    x = sum(a * np.sin(k * phase) for k, a in amps.items())
    error_db = {}
    for energy in (False, True):
        harm = td.analyse(x, [(0.0, 1.5, 79, 100)], track_pitch=True, energy=energy)["harm"][10:-10]
        error_db[energy] = {k: np.median(20 * np.log10(harm[:, k - 1] / amps[k])) for k in (1, 8, 16)}
    assert all(abs(e) < 0.5 for e in error_db[True].values()), error_db
    assert error_db[False][16] < -3.0 and error_db[False][8] < -1.5, error_db


def test_measured_f0_follows_the_violins_own_vibrato_and_brings_the_render_closer():
    """analysis.pitch on held-out violin note 79 (G5, 784 Hz) follows the sample's vibrato (about
    ±17 cents at 5-6 Hz) around the note; the decoder playing that pitch is closer to the recording
    than the same decoder playing the steady MIDI pitch (measured 4.67 against 5.42)."""
    real, _sr = sf.read(str(ev.fixture_path(DATA, "violin", 79, 75)), dtype="float64")
    f0 = ev.measured_f0(real)
    assert f0.size == real.size
    sustain = 1200 * np.log2(f0[round(0.2 * ev.td.SR) : round(0.9 * ev.td.SR)] / ev.td.midi_hz(79))
    assert abs(np.median(sustain)) < 10.0
    assert np.percentile(sustain, 95) - np.percentile(sustain, 5) > 25.0  # the vibrato's swing
    centred = sustain - sustain.mean()
    crossings = np.flatnonzero((centred[:-1] < 0) & (centred[1:] >= 0)).size / 0.7  # upward, per second
    assert 4.0 < crossings < 8.0
    model = ROOT / INSTRUMENTS["violin"].model
    steady = ev.multiscale_spectral_distance(ev.render_neural(real, 79, model), real)
    following = ev.multiscale_spectral_distance(ev.render_neural(real, 79, model, f0), real)
    assert following < 0.93 * steady


def _partial_levels(x: np.ndarray, note: int) -> np.ndarray:
    """dB relative to the frame's loudness of harmonics 3-12, frame by frame over the sustain (0.2-0.9 s)."""
    td = ev.td
    data = td.analyse(x, [(0.0, x.size / td.SR, note, 0)], track_pitch=True, energy=True)
    sustain = slice(round(0.2 * td.SR / td.HOP), round(0.9 * td.SR / td.HOP))
    return 20 * np.log10(data["harm"][sustain, 2:12]) - data["loudness"][sustain, None]


def test_violin_partials_rise_and_fall_with_the_vibrato_as_the_recordings_do():
    """Held-out G5 (never trained on) played at the pitch analysis.pitch measures on it: the violin
    decoder hears the pitch's offset from the note (``vibrato_response``), so its harmonics 3-12
    swing with the vibrato in step with the recording's own (measured: mean correlation 0.50 of
    their per-frame levels, swing 4.4 dB; the recording swings 14.7 dB), where the previous decoder
    held them steady (0.01, 1.1 dB). Played at the steady MIDI pitch they do not swing."""
    assert INSTRUMENTS["violin"].vibrato_response and not INSTRUMENTS["flute"].vibrato_response
    real, _sr = sf.read(str(ev.fixture_path(DATA, "violin", 79, 75)), dtype="float64")
    model = ROOT / INSTRUMENTS["violin"].model
    following = ev.render_neural(real, 79, model, ev.measured_f0(real))
    recorded, played = _partial_levels(real, 79), _partial_levels(following, 79)
    corr = [np.corrcoef(recorded[:, k], played[:, k])[0, 1] for k in range(recorded.shape[1])]
    assert np.mean(corr) > 0.35, np.round(corr, 2)
    assert np.mean(np.ptp(played, axis=0)) > 3.0  # dB
    steady = _partial_levels(ev.render_neural(real, 79, model), 79)
    assert np.mean(np.ptp(steady, axis=0)) < 2.0


def test_vibrato_response_targets_follow_each_notes_partials_across_the_pitch_offset():
    """A note whose 5th partial is 12 dB louder 20 cents sharp than 20 cents flat (a comb the
    partial moves through): the targets keep that, bin by bin, and the model's f0 is the frame's
    own fundamental; the note's mean spectrum (note_mean_targets) would hold it steady."""
    td = ev.td
    f0, frames = td.midi_hz(79), 400
    cents = 20.0 * np.sin(2 * np.pi * np.arange(frames) / 25.0)
    harm = np.full((frames, td.HARMONICS), 0.01)
    harm[:, 4] = 0.01 * 10 ** (0.3 * cents / 20.0)  # +-12 dB at +-20 cents, as a power ratio
    data = {
        "f0": np.full(frames, f0, np.float32),
        "loudness": np.full(frames, -30.0, np.float32),
        "harm": harm.astype(np.float32),
        "noise": np.full((frames, td.BANDS), 1e-3, np.float32),
        "f_part": (f0 * 2 ** (cents / 1200)).astype(np.float32),
    }
    out = td.vibrato_response_targets(data)
    assert np.array_equal(out["f0"], data["f_part"])
    level = 20 * np.log10(out["harm"][:, 4])
    sharp, flat = cents > 17.5, cents < -17.5
    assert level[sharp].mean() - level[flat].mean() > 10.0
    assert np.ptp(20 * np.log10(out["harm"][:, 0])) < 0.01  # a partial that does not swing stays put
    assert np.ptp(20 * np.log10(td.note_mean_targets(data)["harm"][:, 4])) < 0.01


def test_channel_inspection_finds_a_delayed_copy_and_a_detuned_take():
    """inspect_channels.py on made-up stereo: a right channel that is the left one 37 samples later
    at 0.6 plus its own noise is found as that copy (lag, gain and the share it leaves); a right
    channel 10 cents sharp reads as 10 cents of detune, and the same vibrato as a correlation near 1."""
    ch = _load("inspect_channels")
    td = ev.td
    rng = np.random.default_rng(3)
    left = rng.standard_normal(20000)
    right = np.concatenate([np.zeros(37), 0.6 * left[:-37]]) + 0.3 * rng.standard_normal(left.size)
    lag, gain, left_over = ch.best_tap(left, right)
    assert lag == -37 and abs(gain - 0.6) < 0.02
    assert abs(left_over - 0.09 / 0.45) < 0.03  # the right channel's own noise: 0.3^2 of 0.6^2 + 0.3^2
    t = np.arange(int(0.6 * td.SR)) / td.SR
    vibrato = 2 ** (15 / 1200 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(td.midi_hz(69) * vibrato) / td.SR
    tone = lambda cents: sum(np.sin(k * phase * 2 ** (cents / 1200)) / k for k in range(1, 9))
    figures = ch.compare(np.stack([tone(0.0), tone(10.0)], axis=1), 69)
    assert abs(figures["detune"] - 10.0) < 1.5 and figures["vib corr"] > 0.9, figures


@contextmanager
def _velocity_75() -> Iterator[Path]:
    """A scratch folder for renders made at velocity 75 only (train_ddsp.VELOCITIES restored after)."""
    velocities = ev.td.VELOCITIES[:]
    ev.td.VELOCITIES[:] = [75]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    finally:
        ev.td.VELOCITIES[:] = velocities


@needs_soundfont
def test_the_violins_two_channels_are_one_performance_but_not_one_signal():
    """The soundfont violin's held-out notes at velocity 75, left against right (inspect_channels.py):
    the same pitch and vibrato (no detuned second take), but a delayed copy of one channel leaves a
    third or more of the other unexplained, and their mono mix partly cancels."""
    ch = _load("inspect_channels")
    td = ev.td
    inst = INSTRUMENTS["violin"]
    with _velocity_75() as tmp:
        audio, notes = td.render_channels(SOUNDFONT, inst.program, tmp, inst.held_out)
    for start, _end, note, _vel in notes:
        figures = ch.compare(audio[round((start + 0.3) * td.SR) : round((start + 0.9) * td.SR)], note)
        assert abs(figures["detune"]) < 5.0 and figures["vib corr"] > 0.5, (note, figures)
        assert figures["left over"] > 0.3 and figures["mono/ch"] < 0.97, (note, figures)


def test_partial_swing_reads_a_known_swing_and_a_combs_swing():
    """inspect_channels.partial_swing on made-up tones: steady partials read under 0.5 dB; partials
    3-12 whose level moves as a 6 dB sine (20 dB down, so that the loudness stays put) read its
    standard deviation (6 / sqrt 2 dB); and a tone with vibrato mixed with its own copy 3 ms later
    (a comb the partials move through) swings by more than the tone alone."""
    ch = _load("inspect_channels")
    td = ev.td
    t = np.arange(int(0.8 * td.SR)) / td.SR
    f0 = td.midi_hz(69)

    def tone(level_db, vibrato_cents: float = 0.0) -> np.ndarray:
        phase = 2 * np.pi * np.cumsum(f0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t))) / td.SR
        return sum(10 ** (level_db(k) / 20) * np.sin(k * phase) / k for k in range(1, 17))

    assert ch.partial_swing(tone(lambda k: 0.0 * t), 69) < 0.5
    moving = tone(lambda k: (6.0 * np.sin(2 * np.pi * 2.0 * t) - 20.0) if 3 <= k <= 12 else 0.0 * t)
    assert abs(ch.partial_swing(moving, 69) - 6 / np.sqrt(2)) < 0.6  # 4.05 against 4.24
    alone = tone(lambda k: 0.0 * t, 17.0)
    delay = round(0.003 * td.SR)
    comb = 0.5 * (alone + np.concatenate([np.zeros(delay), alone[:-delay]]))
    assert ch.partial_swing(comb[delay:], 69) > ch.partial_swing(alone[delay:], 69) + 1.0  # 2.16 against 0.01


@needs_soundfont
def test_one_violin_channel_swings_as_much_as_their_mono_mix():
    """train_ddsp.render's channel choice on the violin's held-out notes at velocity 75: "left" and
    "right" are fluidsynth's two channels and "mix" their mean; and the partials swing from frame to
    frame as much in one channel as in the mix (measured: 3.27 dB mix, 3.22 left, 3.12 right), so the
    mix's comb is not what makes the swing (docs/neural.md)."""
    ch = _load("inspect_channels")
    td = ev.td
    inst = INSTRUMENTS["violin"]
    with _velocity_75() as tmp:
        stereo, notes = td.render_channels(SOUNDFONT, inst.program, tmp, inst.held_out)
        forms = {c: td.render(SOUNDFONT, inst.program, tmp, inst.held_out, c)[0] for c in td.CHANNELS}
    np.testing.assert_array_equal(forms["left"], stereo[:, 0])
    np.testing.assert_array_equal(forms["right"], stereo[:, 1])
    np.testing.assert_allclose(forms["mix"], stereo.mean(axis=1))
    swing = {c: [] for c in td.CHANNELS}
    for start, _end, note, _vel in notes:
        a, b = round((start + 0.3) * td.SR), round((start + 0.9) * td.SR)
        for c, audio in forms.items():
            swing[c].append(ch.partial_swing(audio[a:b], note))
    mean = {c: float(np.mean(v)) for c, v in swing.items()}
    assert mean["mix"] > 2.0, mean  # the swing is there
    assert mean["left"] > 0.85 * mean["mix"] and mean["right"] > 0.85 * mean["mix"], mean


@needs_soundfont
def test_the_pitch_following_part_of_the_oracles_lead_is_small_and_transfers_within_a_sample():
    """violin_bounds.py (measured 4.52 oracle, 4.92 steady, 4.81 own and neighbour tables, smoothed
    over 5 / 21 frames 4.58 / 4.84): a table of how the partials follow the pitch takes a part of
    the way from the note's steady spectrum to the per-frame oracle, the same from a training
    neighbour of the same sample; the rest changes at the vibrato's rate. The decoder's gap to the
    oracle lies in its harmonics, not its noise."""
    bounds = _load("violin_bounds")
    inst = INSTRUMENTS["violin"]
    m = {k: float(np.mean(v)) for k, v in bounds.rows(inst, SOUNDFONT, ROOT / inst.model).items()}
    assert m["oracle"] < m["own table"] < m["steady"] - 0.05
    assert m["own table"] - m["oracle"] > 2 * (m["steady"] - m["own table"])  # the larger part is left
    assert abs(m["neighbour table"] - m["own table"]) < 0.03
    assert m["smoothed 5"] < m["smoothed 21"] - 0.15
    assert abs(m["decoder H + oracle N"] - m["decoder"]) < 0.05
    assert abs(m["oracle H + decoder N"] - m["oracle"]) < 0.05


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_picture_script_draws_real_neural_and_baseline(tmp_path, name):
    pytest.importorskip("matplotlib")
    pictures = _load_docs("make_neural_images")
    path = pictures.make(tmp_path, name)
    assert path.name == f"neural_{name}_heldout.png" and 10_000 < path.stat().st_size < 300_000
    assert (ROOT / "docs" / "images" / path.name).is_file()  # the committed picture the docs show


def _load_docs(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
