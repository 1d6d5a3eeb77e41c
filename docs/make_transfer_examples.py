"""Make the timbre-transfer examples of docs/neural.md: docs/audio/transfer_*.flac (short, mono,
32 kHz) and docs/images/transfer_spectrograms.png (input and output spectrograms).

Two inputs, each played through a transfer patch offline (what `neuralgraph render PATCH --input
IN.wav` does, latency removed):

- a clarinet phrase (General MIDI program 72 of FluidR3_GM, rendered by fluidsynth; the decoders
  never heard a clarinet) into graphs/transfer_violin.toml;
- a spoken phrase from espeak-ng (its default English voice, with its own intonation) into
  graphs/transfer_flute.toml two octaves up (`pitch.octave = 2`: the flute was trained from C4, and
  one octave up most of the voice is still below it, which the patch's range node would fold).

    python docs/make_transfer_examples.py            # needs fluidsynth, fluid-soundfont-gm, espeak-ng, matplotlib
    python docs/make_transfer_examples.py build/ex   # somewhere else
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

import neuralgraph as ng

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
DOCS = Path(__file__).resolve().parent
RATE = 32000
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
#: (MIDI note, start s, length s) of the clarinet phrase.
PHRASE = [(62, 0.2, 0.35), (65, 0.6, 0.35), (69, 1.0, 0.7), (67, 1.8, 0.3), (65, 2.15, 0.3), (64, 2.5, 0.8)]


def clarinet(workdir: Path) -> np.ndarray:
    """The phrase on the soundfont's clarinet, mono at RATE."""
    mid = mido.MidiFile(ticks_per_beat=960)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 1920 ticks per second
    track.append(mido.Message("program_change", program=71, channel=0, time=0))
    events = []
    for note, start, length in PHRASE:
        events.append((start, mido.Message("note_on", note=note, velocity=96, channel=0)))
        events.append((start + length, mido.Message("note_off", note=note, velocity=0, channel=0)))
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=round(t * 1920) - now))
        now = round(t * 1920)
    mid.save(str(workdir / "phrase.mid"))
    wav = workdir / "phrase.wav"
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
            str(RATE),
            SOUNDFONT,
            str(workdir / "phrase.mid"),
        ],
        check=True,
        capture_output=True,
    )
    audio, _ = sf.read(str(wav), dtype="float64", always_2d=True)
    return audio.mean(axis=1)[: int(3.5 * RATE)]


def voice(workdir: Path) -> np.ndarray:
    """A spoken phrase by espeak-ng, mono at RATE."""
    wav = workdir / "voice.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en", "-s", "120", "-w", str(wav), "Hello, I am singing into a flute."],
        check=True,
        capture_output=True,
    )
    audio, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    g = np.gcd(RATE, sr)
    return resample_poly(audio.mean(axis=1), RATE // g, sr // g)[: int(3.5 * RATE)]


def transfer(patch: str, audio: np.ndarray, **settings: float) -> np.ndarray:
    """``audio`` through graphs/<patch>.toml at RATE, latency removed; mono."""
    engine = ng.Engine(ng.load_patch(ROOT / "graphs" / f"{patch}.toml"), sample_rate=RATE, block_size=256)
    for target, value in settings.items():
        engine.set(target.replace("__", "."), value)
    out, _ = ng.render_aligned(engine, audio.size / RATE, input=audio[None].astype(np.float32))
    return out.mean(axis=0)


def spectrograms(pairs: list[tuple[str, np.ndarray, np.ndarray]], png: Path) -> Path:
    """One row per example: input and output spectrograms, 0-8 kHz."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from make_images import shrink  # docs/make_images.py: a palette PNG, a third of the size

    fig, axes = plt.subplots(len(pairs), 2, figsize=(10, 3.2 * len(pairs)), sharey=True, constrained_layout=True)
    floor = 1e-6 * np.random.default_rng(0).standard_normal(max(a.size for _, s, o in pairs for a in (s, o)))
    for row, (title, src, out) in zip(axes, pairs):
        for ax, audio, label in ((row[0], src, "input"), (row[1], out, "output")):
            # a -120 dB noise floor: digital silence would be log(0), drawn as a hole
            ax.specgram(
                audio + floor[: audio.size], NFFT=1024, Fs=RATE, noverlap=768, cmap="magma", vmin=-130, vmax=-30
            )
            ax.set_ylim(0, 8000)
            ax.set_title(f"{title}: {label}", fontsize=10)
            ax.set_xlabel("time (s)")
        row[0].set_ylabel("Hz")
    fig.savefig(png, dpi=72)
    plt.close(fig)
    return shrink(png)


def make(images: Path = DOCS / "images", audio: Path | None = None) -> list[Path]:
    """Write the picture into ``images`` and the FLAC files into ``audio`` (default: beside
    ``images``, in ``audio/``: docs/audio); returns their paths."""
    audio = audio or images.parent / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        clar, spoken = clarinet(Path(tmp)), voice(Path(tmp))
    violin = transfer("transfer_violin", clar)
    flute = transfer("transfer_flute", spoken, pitch__octave=2.0)
    written = []
    for name, sound in (
        ("clarinet_in", clar),
        ("clarinet_to_violin", violin),
        ("voice_in", spoken),
        ("voice_to_flute", flute),
    ):
        path = audio / f"transfer_{name}.flac"
        sf.write(str(path), np.clip(sound, -1.0, 1.0).astype(np.float32), RATE, subtype="PCM_16")
        written.append(path)
    pairs = [
        ("clarinet → transfer_violin", clar, violin),
        ("espeak-ng voice → transfer_flute, octave +2", spoken, flute),
    ]
    written.append(spectrograms(pairs, images / "transfer_spectrograms.png"))
    return written


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) / "images" if len(sys.argv) > 1 else DOCS / "images"):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
