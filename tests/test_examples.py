"""Every example script runs as a user would run it (a subprocess, small sizes) and does what it says."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from analysis import level_at, peak_frequency, rms

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run


def test_every_example_script_is_covered_here():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    tested = {"patch_from_code.py", "drive_engine.py", "batch_render.py"}
    assert scripts == tested, f"add a test for {sorted(scripts - tested)}"


def test_patch_from_code_renders_the_pitch_asked_for(tmp_path):
    run = run_example("patch_from_code.py", "-o", "pad.wav", "--seconds", "1.0", "--freq", "220", cwd=tmp_path)
    assert "'Code pad at 220 Hz'" in run.stdout
    audio, rate = soundfile.read(tmp_path / "pad.wav", always_2d=True)
    assert rate == 48000 and audio.shape == (48000, 2)
    steady = audio[24000:, 0]  # after the 300 ms fade-in
    # the sub-octave sine at 110 Hz and the saws at 220 Hz are the two strongest partials
    assert peak_frequency(steady, rate, lo=150.0, hi=300.0) == pytest.approx(220.0, abs=2.0)
    assert peak_frequency(steady, rate, lo=60.0, hi=150.0) == pytest.approx(110.0, abs=2.0)
    assert 0.05 < rms(steady) < 0.5 and np.max(np.abs(audio)) < 1.0
    # the fade-in: the first 20 ms are much quieter than the steady part
    assert rms(audio[:960, 0]) < 0.2 * rms(steady)


def test_drive_engine_plays_the_notes_in_time_and_sweeps_the_filter(tmp_path):
    note = 0.3
    run_example("drive_engine.py", "-o", "driven.wav", "--note-seconds", str(note), cwd=tmp_path)
    audio, rate = soundfile.read(tmp_path / "driven.wav", always_2d=True)
    assert audio.shape == (int((4 * note + 0.2) * rate), 2)
    x = audio[:, 0]
    brightness = []
    for i, midi_note in enumerate((57, 60, 64, 69)):
        freq = 440.0 * 2 ** ((midi_note - 69) / 12)
        held = x[int((i * note + 0.03) * rate) : int((i * note + 0.23) * rate)]
        assert peak_frequency(held, rate) == pytest.approx(freq, abs=2.0)
        brightness.append(level_at(held, rate, 3 * freq) / level_at(held, rate, freq))
        # the gap after note-off (60 ms release) is far quieter than the held note
        gap = x[int((i * note + 0.8 * note + 0.045) * rate) : int((i + 1) * note * rate)]
        assert rms(gap) < 0.1 * rms(held)
    # the cutoff rises from 300 Hz to 4 kHz: the 3rd harmonic grows relative to the fundamental
    assert brightness == sorted(brightness) and brightness[-1] > 3 * brightness[0]
    assert rms(x[int((4 * note + 0.15) * rate) :]) < 1e-3  # silent once the last release is over


def test_batch_render_writes_every_combination_and_the_csv(tmp_path):
    out = tmp_path / "set"
    run_example(
        "batch_render.py",
        str(ROOT / "graphs" / "saw_chord.toml"),
        "-o",
        str(out),
        "--grid",
        "root.freq=110,165",
        "--grid",
        "chord.level=0.5,1.0",
        "--seconds",
        "0.5",
        cwd=tmp_path,
    )
    with open(out / "settings.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], float(r["root.freq"]), float(r["chord.level"])) for r in rows] == [
        ("0000.wav", 110.0, 0.5),
        ("0001.wav", 110.0, 1.0),
        ("0002.wav", 165.0, 0.5),
        ("0003.wav", 165.0, 1.0),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["0000.wav", "0001.wav", "0002.wav", "0003.wav", "settings.csv"]
    levels = {}
    for row in rows:
        audio, rate = soundfile.read(out / row["file"], always_2d=True)
        assert audio.shape == (24000, 2)
        freq = float(row["root.freq"])
        assert level_at(audio[:, 0], rate, freq) > 0.3 * level_at(audio[:, 0], rate, 277.18)
        levels[(freq, float(row["chord.level"]))] = rms(audio[:, 0])
    for freq in (110.0, 165.0):  # chord.level scales the whole chord: twice the level, twice the RMS
        assert levels[(freq, 1.0)] / levels[(freq, 0.5)] == pytest.approx(2.0, rel=0.02)


def test_batch_render_rejects_a_bad_grid(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("batch_render", EXAMPLES / "batch_render.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    chord = str(ROOT / "graphs" / "saw_chord.toml")
    with pytest.raises(SystemExit, match="expected NODE.PARAM=V1,V2"):
        batch.main([chord, "-o", str(tmp_path / "x"), "--grid", "root.freq"])
    assert batch.main([chord, "-o", str(tmp_path / "y"), "--grid", "root.frq=110", "--seconds", "0.1"]) == 2
    assert "did you mean `freq`" in capsys.readouterr().err
