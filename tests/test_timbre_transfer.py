"""The timbre-transfer patches (graphs/transfer_*.toml): a known melody in, the instrument out at the
melody's pitches, silent where the input is silent; offline through `neuralgraph render --input`
and live on the real JACK server (tests/transfer_checks.py)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_server import require_jack, run_check
from melody import NOTES, autocorrelation_f0, level_db, melody
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
PATCHES = ["transfer_violin", "transfer_flute"]
_spec = importlib.util.spec_from_file_location("make_pitch_set", Path(__file__).parent / "data" / "make_pitch_set.py")
make_pitch_set = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(make_pitch_set)  # type: ignore[union-attr]


def render(patch: str, tmp_path: Path, *extra: str) -> tuple[np.ndarray, np.ndarray]:
    """The melody rendered through ``patch`` by the command line; (output mono, melody f0 per sample)."""
    audio, f0 = melody(RATE)
    src, out = tmp_path / "melody.wav", tmp_path / f"{patch}.wav"
    sf.write(str(src), audio, RATE)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralgraph",
            "render",
            str(ROOT / "graphs" / f"{patch}.toml"),
            "--input",
            str(src),
            "-o",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr, run.stderr  # no node faulted, nothing clipped
    y, rate = sf.read(str(out), dtype="float64", always_2d=True)
    assert rate == RATE and y.shape[0] >= audio.size
    return y.mean(axis=1)[: audio.size], f0


def frames(total: int, size: int = 2048, hop: int = 480):
    for start in range(0, total - size, hop):
        yield start, start + size


@pytest.mark.parametrize("patch", PATCHES)
def test_a_melody_comes_out_at_its_pitches_and_silent_in_its_gaps(patch, tmp_path):
    y, f0 = render(patch, tmp_path)
    errors, voiced_levels, gap_levels = [], [], []
    for a, b in frames(y.size):
        truth = f0[a:b]
        if truth.min() > 0:  # the whole frame inside a note
            measured = autocorrelation_f0(y[a:b], RATE)
            errors.append(abs(1200 * np.log2(max(measured, 1e-3) / truth[(a + b) // 2 - a])))
            voiced_levels.append(level_db(y[a:b]))
    edges = np.cumsum([0] + [int(s * RATE) for _, s in NOTES])
    for (f, _), start, end in zip(NOTES, edges[:-1], edges[1:]):
        if f == 0.0:  # a silent gap, from 0.4 s after the input stopped (the reverb's tail) to 50 ms before
            gap_levels.append(level_db(y[start + int(0.4 * RATE) : end - int(0.05 * RATE)]))
    errors = np.array(errors)
    assert len(errors) > 150
    assert np.median(errors) <= 20.0, np.percentile(errors, [50, 90, 99])
    assert np.mean(errors > 50.0) < 0.05, np.percentile(errors, [50, 90, 99])
    assert min(voiced_levels) > -45.0  # the instrument plays every note
    assert max(gap_levels) < -60.0, gap_levels


@pytest.mark.parametrize("patch", PATCHES)
def test_dry_output_falls_silent_within_100_ms_of_the_input(patch, tmp_path):
    """Without the reverb the confidence gate and the decoder leave nothing 100 ms into each gap,
    and the fade is a ramp, not a step (no sample-to-sample jump larger than the notes make)."""
    y, f0 = render(patch, tmp_path, "--set", "reverb.mix=0")
    edges = np.cumsum([0] + [int(s * RATE) for _, s in NOTES])
    jumps_in_notes = max(np.abs(np.diff(y[s:e])).max() for (f, _), s, e in zip(NOTES, edges[:-1], edges[1:]) if f)
    for (f, _), start, end in zip(NOTES, edges[:-1], edges[1:]):
        if f == 0.0:
            assert level_db(y[start + int(0.1 * RATE) : end]) < -60.0
            assert np.abs(np.diff(y[start - 4800 : start + 9600])).max() <= jumps_in_notes


def test_octave_and_loudness_offset_are_settable(tmp_path):
    y, f0 = render("transfer_violin", tmp_path, "--set", "pitch.octave=1")
    (tmp_path / "quiet").mkdir()
    quiet, _ = render(
        "transfer_violin", tmp_path / "quiet", "--set", "pitch.octave=1", "--set", "loudness.offset_db=-12"
    )
    a, b = int(0.2 * RATE), int(0.2 * RATE) + 4096  # inside the first note (220 Hz)
    assert autocorrelation_f0(y[a:b], RATE) == pytest.approx(440.0, rel=0.03)
    assert level_db(quiet[a:b]) < level_db(y[a:b]) - 6.0  # the decoder plays quieter (measured: 9 dB)


def test_the_violin_transfer_runs_in_real_time_on_jack():
    """Played live on the shared JACK server (period 256): a 220 Hz sung-like tone in, the violin
    out at 220 Hz; the engine's client has no more xruns than a do-nothing client in the same run."""
    require_jack()
    r = run_check("transfer", script=Path(__file__).parent / "transfer_checks.py", seconds=3.0, timeout=120.0)
    assert r["faults"] == 0
    assert r["freq"] == pytest.approx(220.0, rel=0.012), r  # 20 cents
    assert r["level_db"] > -40.0, r
    assert r["xruns"] <= r["idle_xruns"] + 1, r  # +1: the two counters are read a moment apart


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_a_monotone_voice_comes_out_of_the_flute_an_octave_up(tmp_path):
    """espeak-ng speaking on one pitch (measured by the generator's own harmonic-sum method, not by
    analysis.pitch) through transfer_flute.toml with pitch.octave = 1: where the voice is voiced,
    the flute plays twice its pitch."""
    audio, sr = make_pitch_set.espeak(make_pitch_set.WORDS, "mono", tmp_path, 140)
    pitch, segments = make_pitch_set.monotone_truth(audio, sr, 140)
    g = np.gcd(RATE, sr)
    src = tmp_path / "voice.wav"
    sf.write(str(src), resample_poly(audio, RATE // g, sr // g).astype(np.float32), RATE)
    out = tmp_path / "flute.wav"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralgraph",
            "render",
            str(ROOT / "graphs" / "transfer_flute.toml"),
            "--input",
            str(src),
            "-o",
            str(out),
            "--set",
            "pitch.octave=1",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    y = sf.read(str(out), dtype="float64", always_2d=True)[0].mean(axis=1)
    voiced = np.zeros(y.size, bool)
    for start, end, _ in segments:
        voiced[int(start * RATE) : int(end * RATE)] = True
    errors = [
        abs(1200 * np.log2(max(autocorrelation_f0(y[a:b], RATE, lo=150.0), 1e-3) / (2 * pitch)))
        for a, b in frames(y.size)
        if voiced[a:b].all()
    ]
    print(f"{len(errors)} voiced frames, error percentiles 50/90/99: {np.percentile(errors, [50, 90, 99]).round(1)}")
    assert len(errors) > 50
    assert np.median(errors) <= 20.0, np.percentile(errors, [50, 90])
    assert np.mean(np.array(errors) > 50.0) < 0.05, np.percentile(errors, [50, 90, 99])
