"""Make the pictures in docs/images/ (used by the README and the docs) from the repository's patches.

    python docs/make_images.py            # needs Graphviz's `dot` and matplotlib
    python docs/make_images.py build/pics  # somewhere else

Each image is what `neuralgraph graph PATCH -o X.png` and `neuralgraph render PATCH --plot X.png`
draw; re-run this after changing a patch, a node or the drawing code, and commit the PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import neuralgraph as ng
from neuralgraph._tools.drawing import draw_patch
from neuralgraph._tools.plotting import plot_render, title_for

ROOT = Path(__file__).resolve().parent.parent
IMAGES = Path(__file__).resolve().parent / "images"

#: (patch, MIDI file or None, seconds or None for the MIDI's length + tail, spectrogram top in Hz)
PICTURES = {
    "neural_flute": ("graphs/neural_flute.toml", "examples/midi/arpeggio.mid", None, 8000.0),
    "saw_chord": ("graphs/saw_chord.toml", None, 4.0, 4000.0),
}
TAIL_S = 0.5


def make(
    name: str, patch_file: str, midi: str | None, seconds: float | None, max_hz: float, folder: Path = IMAGES
) -> list[Path]:
    """Draw one patch and plot its render into ``folder``: ``NAME_graph.png`` and ``NAME_spectrogram.png``."""
    patch = ng.load_patch(ROOT / patch_file)
    graph = draw_patch(patch, folder / f"{name}_graph.png")
    engine = ng.Engine(patch)
    if seconds is None:
        from neuralgraph._io.midifile import midi_length

        seconds = midi_length(ROOT / midi) + TAIL_S
    audio = engine.render(seconds, midi=ROOT / midi if midi else None)
    settings = [Path(patch_file).name, f"{engine.sample_rate} Hz", f"block {engine.block_size}", f"{seconds:.2f} s"]
    if midi:
        settings.append(f"midi {Path(midi).name}")
    plot = plot_render(
        audio, engine.sample_rate, folder / f"{name}_spectrogram.png", title_for(patch.name, settings), max_hz=max_hz
    )
    return [shrink(graph), shrink(plot)]


def shrink(png: Path, colors: int = 128) -> Path:
    """Re-save with a palette of ``colors``: a spectrogram's PNG drops to about a third of its size."""
    from PIL import Image  # a dependency of matplotlib

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)
    return png


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else IMAGES  # another folder: to check the script without touching docs/
    folder.mkdir(parents=True, exist_ok=True)
    for name, (patch_file, midi, seconds, max_hz) in PICTURES.items():
        for path in make(name, patch_file, midi, seconds, max_hz, folder):
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    import make_neural_images  # docs/make_neural_images.py: the held-out flute and violin pictures, from test fixtures

    for instrument in make_neural_images.NOTES:
        path = make_neural_images.make(folder, instrument)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    import make_live_image  # docs/make_live_image.py: the hot-reload session of docs/live.md

    path = make_live_image.make(folder)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    import make_serve_image  # docs/make_serve_image.py: the control surface in headless Chromium

    path = make_serve_image.make(folder)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    import make_transfer_examples  # docs/make_transfer_examples.py: timbre transfer, and docs/audio/transfer_*.flac

    for path in make_transfer_examples.make(folder):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
