"""Make the pitch tracker's held-out test recordings, with their known pitch and voicing.

Real sound with a pitch known independently of any tracker:

- **Soundfont notes**: General MIDI instruments of FluidR3_GM rendered by the fluidsynth command
  line (as examples/train/train_ddsp.py does), one note at a time with gaps for the release tail.
  The truth is the MIDI note's pitch. Instruments and notes training never used: cello, clarinet,
  trumpet and nylon guitar, plus the flute's and violin's held-out notes (every 7th note).
- **A voice**: espeak-ng speaking voiced words with a monotone voice variant (``pitch B B``,
  no flutter, no intonation), so the whole utterance sits on one pitch. espeak-ng's pitch is not
  exactly B Hz, so the truth is measured from the file by an offline method unrelated to the
  tracker (``harmonic_sum_f0``: the candidate whose first 8 harmonics collect the most
  log-magnitude in a 64 ms zero-padded spectrum, median over loud frames); only the loud
  frames that agree with it within 30 cents are scored, and the generator fails unless 85 % do
  (the voice really is monotone).
- **Unvoiced material**: the same words whispered (espeak-ng's ``whisper`` variant) and white
  noise, where a tracker must say "unvoiced".

Each item is (name, audio, sample rate, segments); a segment is (start s, end s, f0 Hz) with
f0 > 0 for voiced reference frames and 0 for unvoiced ones; time outside the segments (attacks,
release tails, the edges of words) is not scored.

    python tests/data/make_pitch_set.py OUT_DIR     # writes OUT_DIR/<name>.flac and truth.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SR = 32000
NOTE_S, GAP_S = 0.8, 0.9
#: (name, General MIDI program 1-based, MIDI notes): none of them in the decoders' training.
INSTRUMENTS = [
    ("cello", 43, (36, 43, 48, 55, 62, 69)),
    ("clarinet", 72, (52, 57, 64, 71, 76, 83)),
    ("trumpet", 57, (55, 60, 67, 74, 79, 84)),
    ("guitar", 25, (40, 47, 52, 59, 64, 71)),
    ("flute_held_out", 74, (63, 70, 77, 84, 91)),
    ("violin_held_out", 41, (58, 65, 72, 79, 86)),
]
VOICES = [("voice_low", 90), ("voice_mid", 140), ("voice_high", 220)]
WORDS = "mama, lalala, nine lemons, ooh, aah, eeh, moaning, rolling along"


def midi_hz(note: float) -> float:
    """Equal-tempered frequency of a MIDI note (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def soundfont_notes(program: int, notes: tuple[int, ...], workdir: Path) -> tuple[np.ndarray, list]:
    """Render the notes one after the other at velocity 100; mono audio at SR and the segments."""
    mid = mido.MidiFile(ticks_per_beat=960)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 1920 ticks per second
    track.append(mido.Message("program_change", program=program - 1, channel=0, time=0))
    segments, t, now = [], 0.3, 0
    for note in notes:
        on, off = round(t * 1920), round((t + NOTE_S) * 1920)
        track.append(mido.Message("note_on", note=note, velocity=100, channel=0, time=on - now))
        track.append(mido.Message("note_off", note=note, velocity=0, channel=0, time=off - on))
        now = off
        segments.append((t + 0.08, t + NOTE_S, midi_hz(note)))  # voiced: past the attack
        segments.append((t + NOTE_S + 0.6, t + NOTE_S + GAP_S, 0.0))  # unvoiced: the tail has died
        t += NOTE_S + GAP_S
    mid_path, wav = workdir / "notes.mid", workdir / "notes.wav"
    mid.save(str(mid_path))
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-g",
            "0.6",
            "-R",
            "0",
            "-C",
            "0",
            "-F",
            str(wav),
            "-r",
            str(SR),
            SOUNDFONT,
            str(mid_path),
        ],
        check=True,
        capture_output=True,
    )
    audio, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    assert sr == SR, sr
    return audio.mean(axis=1), segments


def espeak_data() -> Path:
    """espeak-ng's data folder, as ``espeak-ng --version`` reports it ("... Data at: PATH")."""
    version = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    return Path(version.split("Data at:")[1].strip())


def _espeak_data(workdir: Path, base_hz: int) -> Path:
    """A copy of espeak-ng's data folder (symlinks) with a monotone voice variant ``mono``."""
    source = espeak_data()
    root = workdir / f"espeak{base_hz}"
    data = root / "espeak-ng-data"
    (data / "voices" / "!v").mkdir(parents=True)
    for item in source.iterdir():
        if item.name != "voices":
            (data / item.name).symlink_to(item)
    for item in (source / "voices").iterdir():
        if item.name != "!v":
            (data / "voices" / item.name).symlink_to(item)
    for item in (source / "voices" / "!v").iterdir():
        (data / "voices" / "!v" / item.name).symlink_to(item)
    (data / "voices" / "!v" / "mono").write_text(
        f"language en\nname mono\npitch {base_hz} {base_hz}\nflutter 0\nintonation 0\n"
    )
    return root


def espeak(text: str, variant: str, workdir: Path, base_hz: int = 0) -> tuple[np.ndarray, int]:
    """Speak ``text`` slowly with espeak-ng's ``en+variant``; mono audio and its rate."""
    wav = workdir / f"{variant}{base_hz}.wav"
    cmd = ["espeak-ng", "-v", f"en+{variant}", "-s", "80", "-w", str(wav), text]
    if base_hz:
        cmd.insert(1, f"--path={_espeak_data(workdir, base_hz)}")
    subprocess.run(cmd, check=True, capture_output=True)
    audio, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    return audio.mean(axis=1), sr


def frame_levels(audio: np.ndarray, sr: int, hop_s: float = 0.01, win_s: float = 0.032) -> np.ndarray:
    """RMS level (dB) of frames centred every ``hop_s``."""
    n, hop = int(win_s * sr), int(hop_s * sr)
    centres = np.arange(0, audio.size, hop)
    padded = np.pad(audio, n // 2)
    return np.array([10 * np.log10(np.mean(padded[c : c + n] ** 2) + 1e-12) for c in centres])


def harmonic_sum_f0(frame: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """The f0 between lo and hi whose first 8 harmonics collect the most log-magnitude (offline,
    64x zero-padded FFT of a Hann-windowed frame): a method unrelated to YIN's time-domain one."""
    n = frame.size * 8
    spec = np.abs(np.fft.rfft(frame * np.hanning(frame.size), n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    cands = np.exp(np.linspace(np.log(lo), np.log(hi), 600))
    k = np.arange(1, 9)
    score = np.log(1e-4 + np.interp(cands[:, None] * k, freqs, spec)).sum(axis=1)
    return float(cands[int(np.argmax(score))])


def monotone_truth(audio: np.ndarray, sr: int, base_hz: int) -> tuple[float, list]:
    """The voice's pitch and voiced segments. Frames within 20 dB of the loudest are measured by
    ``harmonic_sum_f0``: first within 0.6-1.6x the voice's base (their median is the pitch), then
    within 4 semitones of that pitch; the frames that agree with it within 30 cents are the voiced
    segments. The generator fails unless 85 % agree (the voice really is one pitch)."""
    hop, win = 0.01, int(0.064 * sr)
    levels = frame_levels(audio, sr, hop)
    loud = np.flatnonzero(levels > levels.max() - 20.0)
    padded = np.pad(audio, win // 2)
    frames = [padded[int(i * hop * sr) : int(i * hop * sr) + win] for i in loud]
    pitch = float(np.median([harmonic_sum_f0(f, sr, base_hz / 1.6, base_hz * 1.6) for f in frames]))
    near = 2.0 ** (4 / 12)
    f0s = np.array([harmonic_sum_f0(f, sr, pitch / near, pitch * near) for f in frames])
    cents = np.abs(1200 * np.log2(f0s / pitch))
    agree = float(np.mean(cents < 30.0))
    if agree < 0.85:
        raise RuntimeError(
            f"espeak-ng voice {base_hz}: only {agree:.0%} of loud frames within 30 cents of {pitch:.1f} Hz"
        )
    segments = [(i * hop - 0.005, i * hop + 0.005, pitch) for i in loud[cents < 30.0]]
    return pitch, segments


def make_set(workdir: Path) -> list[tuple[str, np.ndarray, int, list]]:
    """Every recording of the set: (name, audio, sample rate, segments)."""
    items = []
    for name, program, notes in INSTRUMENTS:
        audio, segments = soundfont_notes(program, notes, workdir)
        items.append((name, audio, SR, segments))
    for name, base in VOICES:
        audio, sr = espeak(WORDS, "mono", workdir, base)
        _, segments = monotone_truth(audio, sr, base)
        items.append((name, audio, sr, segments))
    whisper, sr = espeak(WORDS, "whisper", workdir)
    levels = frame_levels(whisper, sr)
    items.append(
        (
            "whisper",
            whisper,
            sr,
            [(i * 0.01 - 0.005, i * 0.01 + 0.005, 0.0) for i in np.flatnonzero(levels > levels.max() - 30.0)],
        )
    )
    noise = np.random.default_rng(7).standard_normal(SR * 2) * 0.1
    items.append(("white_noise", noise, SR, [(0.1, 1.9, 0.0)]))
    return items


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, audio, sr, segments in make_set(Path(tmp)):
            sf.write(str(out / f"{name}.flac"), audio.astype(np.float32), sr)
            truth[name] = {"sample_rate": sr, "segments": segments}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"wrote {len(truth)} recordings to {out}")


if __name__ == "__main__":
    if shutil.which("fluidsynth") is None or shutil.which("espeak-ng") is None:
        sys.exit("needs fluidsynth and espeak-ng (apt-get install fluidsynth fluid-soundfont-gm espeak-ng)")
    main()
