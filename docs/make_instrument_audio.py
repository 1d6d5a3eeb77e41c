"""Make docs/audio/instrument_{flute,violin,trumpet}.flac: each neural instrument playing
examples/midi/expressive.mid (velocity, pressure, mod wheel, pitch bend, a note folded into range).

    python docs/make_instrument_audio.py            # into docs/audio
    python docs/make_instrument_audio.py build/au   # somewhere else

Rendered by the engine at 32 kHz (small files), first channel, 16-bit FLAC. Re-run it after
changing graphs/neural_*.toml or their models, and commit the files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent
MIDI = ROOT / "examples" / "midi" / "expressive.mid"
INSTRUMENTS = ("flute", "violin", "trumpet")
RATE = 32000
TAIL_S = 0.8


def make(folder: Path) -> list[Path]:
    """Render every instrument into ``folder``; returns the files written."""
    from neuralgraph._io.midifile import midi_length

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in INSTRUMENTS:
        engine = ng.Engine(ng.load_patch(ROOT / "graphs" / f"neural_{name}.toml"), sample_rate=RATE)
        audio = engine.render(midi_length(MIDI) + TAIL_S, midi=MIDI)
        path = folder / f"instrument_{name}.flac"
        sf.write(str(path), np.clip(audio[0], -1.0, 1.0).astype(np.float32), RATE, subtype="PCM_16")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in make(Path(args[0]) if args else ROOT / "docs" / "audio"):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
