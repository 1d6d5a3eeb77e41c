"""docs/images/live_session.png: the hot-reload session of docs/live.md, replayed offline.

    python docs/make_live_image.py [FOLDER]

The same saves as the recorded ``play --watch`` session (the saw at 220 Hz, then 330 Hz, a
lowpass added with a 0.2 s crossfade, its cutoff raised, a broken save), one second apart, made
with ``Engine.swap`` on an offline engine: what the audio thread does at the block each save
lands on. ``docs/make_images.py`` runs it too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import neuralgraph as ng
from neuralgraph._tools.plotting import plot_render

IMAGES = Path(__file__).resolve().parent / "images"
SAW = (Path(__file__).resolve().parent.parent / "graphs" / "live_saw.toml").read_text(encoding="utf-8")
LPF = SAW.replace("220.0", "330.0").replace('in = "amp"\n', 'in = "lpf"\n') + (
    '[nodes.lpf]\ntype = "filter.lowpass"\nin = "amp"\ncutoff = 600.0\nq = 4.0\n'
)
#: The saved texts, one per second; the last does not load and changes nothing.
SAVES = [
    SAW,
    SAW.replace("220.0", "330.0"),
    LPF,
    LPF.replace("600.0", "2500.0"),
    LPF.replace("600.0", "2500.0").replace('"filter.lowpass"', '"filter.lowpas"'),
]


def make(folder: Path = IMAGES) -> Path:
    rate, block = 48000, 256
    engine = ng.Engine(ng.Patch.from_string(SAVES[0]), rate, block)
    parts = []
    for text in SAVES:
        try:
            engine.swap(ng.Patch.from_string(text), fade=0.2)
        except ng.PatchError:
            pass  # a broken save: the last good version plays on
        parts.append(np.concatenate([engine.process().copy() for _ in range(rate // block)], axis=1))
    audio = np.concatenate(parts, axis=1)
    path = plot_render(
        audio,
        rate,
        folder / "live_session.png",
        "play --watch: 220 Hz, 330 Hz, lowpass added (0.2 s crossfade), cutoff 2500 Hz, broken save",
        max_hz=8000.0,
    )
    from make_images import shrink

    return shrink(path)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    out = make(Path(sys.argv[1]) if len(sys.argv) > 1 else IMAGES)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
