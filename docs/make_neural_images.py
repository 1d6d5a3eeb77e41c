"""Make docs/images/neural_{flute,violin,trumpet}_heldout.png: a held-out real note
beside its neural and baseline renders (spectrograms), from the fixtures in tests/data (no
fluidsynth, no torch).

    python docs/make_neural_images.py            # needs matplotlib
    python docs/make_neural_images.py build/pics  # somewhere else

Re-run it after retraining graphs/models/ddsp_<instrument>.onnx (examples/train/train_ddsp.py
--instrument ...) and re-making the fixtures (examples/train/evaluate_ddsp.py --instrument ...
--test-data tests/data); commit the PNGs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DOCS = Path(__file__).resolve().parent
DATA = ROOT / "tests" / "data"
#: The held-out fixture drawn for each instrument: (MIDI note, velocity, its name).
NOTES = {"flute": (84, 75, "C6"), "violin": (79, 75, "G5"), "trumpet": (78, 75, "F#5")}
MAX_HZ = 12000.0


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(folder: Path, instrument: str = "flute") -> Path:
    """Draw real / neural / baseline spectrograms of the instrument's held-out note into ``folder``;
    returns ``folder / neural_<instrument>_heldout.png``."""
    from neuralgraph._tools.plotting import pyplot

    ev = _load("evaluate_ddsp", ROOT / "examples" / "train" / "evaluate_ddsp.py")
    note, velocity, note_name = NOTES[instrument]
    real, sr = sf.read(str(ev.fixture_path(DATA, instrument, note, velocity)), dtype="float64")
    spectrum = json.loads(ev.spectrum_path(DATA, instrument).read_text())
    model = ROOT / ev.td.INSTRUMENTS[instrument].model
    renders = {
        f"real (FluidR3_GM {instrument}, fluidsynth)": real,
        f"neural ({model.name} + synth nodes)": ev.render_neural(real, note, model),
        "baseline (one mean spectrum)": ev.render_baseline(real, note, spectrum),
    }
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True, constrained_layout=True)
    fig.suptitle(
        f"Held-out {instrument} note {note} ({note_name}), velocity {velocity}: driven by the recording's "
        f"f0 and loudness, {sr} Hz",
        fontsize=10,
    )
    n = 1024
    window = np.hanning(n)
    for ax, (name, x) in zip(axes, renders.items()):
        frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 4]
        db = 20 * np.log10(np.abs(np.fft.rfft(frames * window, axis=1)).T * 2 / window.sum() + 1e-6)
        freqs = np.fft.rfftfreq(n, 1 / sr)
        keep = freqs <= MAX_HZ
        ax.imshow(
            db[keep],
            origin="lower",
            aspect="auto",
            vmin=-100,
            vmax=-10,
            cmap="magma",
            extent=(0, x.size / sr, 0, freqs[keep][-1] / 1000),
        )
        title = name if x is real else f"{name}\nMSS distance {ev.multiscale_spectral_distance(x, real):.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    path = folder / f"neural_{instrument}_heldout.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return _load("make_images", DOCS / "make_images.py").shrink(path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DOCS / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for instrument in NOTES:
        path = make(folder, instrument)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
