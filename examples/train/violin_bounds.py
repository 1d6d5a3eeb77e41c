"""How much of the per-frame oracle's lead a (f0, loudness) decoder could learn, on held-out notes.

``evaluate_ddsp.py --oracle`` feeds the synthesis each held-out note's own analysed levels frame
by frame: the bound for any decoder trained on that analysis. This script splits that bound, on
the instrument's held-out notes at velocity 75 with the measured f0 (``measured_f0``), by playing
the same synthesis nodes with other levels (noise levels always the note's own steady ones, except
in the two swaps):

- ``oracle``: the note's own per-frame levels (harmonics and noise);
- ``steady``: the note's own mean spectrum at each frame's loudness (``note_mean_targets``): the
  best any decoder can do that plays one spectrum per note;
- ``own table``, ``neighbour table``: ``steady`` scaled per frame by how the partials follow the
  pitch's offset from the note (``vibrato_response_targets``' 5-cent bins), taken from the note
  itself or from its training neighbour that plays the same sample (the one whose channels are
  delayed alike, ``inspect_channels.best_tap``): what the ``vibrato_response`` decoder can learn;
- ``smoothed N``: the oracle's harmonic levels (relative to loudness) power-averaged over N frames:
  how fast the part of the oracle's lead that a table misses changes;
- ``decoder``, ``decoder H + oracle N``, ``oracle H + decoder N``: the shipped decoder, and its
  harmonics and noise each swapped for the oracle's: where its gap to the oracle lies.

Usage (needs fluidsynth and fluid-soundfont-gm; no torch)::

    python examples/train/violin_bounds.py --instrument violin
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate_ddsp as ev  # the protocol: renders, distance, measured f0
import inspect_channels as ic  # the channels' delay: which neighbour plays the same sample
import train_ddsp as td  # the analysis and targets

VELOCITY = 75
SMOOTHING = (5, 11, 21, 41)


def frame_targets(x: np.ndarray, note: int, inst: td.Instrument) -> dict[str, np.ndarray]:
    """The training analysis of one clip, frame b + 1 ending block b (as ``render_oracle`` reads it)."""
    frames = -(-x.size // td.HOP)
    padded = np.concatenate([np.zeros(td.WIN // 2), x, np.zeros(2 * td.WIN)])
    data = td.analyse(padded, [(0.0, padded.size / td.SR, note, 0)], True, inst.energy)
    return {k: v[1 : frames + 1] for k, v in data.items() if k != "edges"}


def pitch_table(data: dict[str, np.ndarray]) -> np.ndarray:
    """Per 5-cent bin of the fundamental's offset, each harmonic's factor over the note's mean
    spectrum (``vibrato_response_targets`` on one note); bins without frames get 1."""
    edges = np.arange(-td.CENTS_SPAN, td.CENTS_SPAN + td.CENTS_BIN, td.CENTS_BIN)
    steady = td.note_mean_targets(data)["harm"]
    shaped = td.vibrato_response_targets(data)["harm"]
    bins = np.clip(np.digitize(1200.0 * np.log2(data["f_part"] / data["f0"]), edges) - 1, 0, edges.size - 2)
    table = np.ones((edges.size - 1, td.HARMONICS))
    for i in np.unique(bins):
        table[i] = (shaped[bins == i] / steady[bins == i]).mean(axis=0)
    return table


def offset_bins(pitch: np.ndarray, note: int, blocks: int) -> np.ndarray:
    """Each block's bin of the played pitch's offset from the note (its last sample, as the decoder hears it)."""
    edges = np.arange(-td.CENTS_SPAN, td.CENTS_SPAN + td.CENTS_BIN, td.CENTS_BIN)
    cents = 1200.0 * np.log2(pitch[td.HOP - 1 :: td.HOP][:blocks] / td.midi_hz(note))
    return np.clip(np.digitize(cents, edges) - 1, 0, edges.size - 2)


def smoothed(harm: np.ndarray, loud: np.ndarray, frames: int) -> np.ndarray:
    """Harmonic levels relative to the frame's RMS, power-averaged over ``frames``, at the frame's RMS."""
    rms = 10.0 ** (loud / 20.0)[:, None]
    kernel = np.ones(frames) / frames
    power = (harm / rms) ** 2
    padded = np.pad(power, ((frames // 2, frames // 2), (0, 0)), mode="edge")
    mean = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(harm.shape[1])], axis=1)
    return np.sqrt(mean) * rms


def decoder_levels(pitch: np.ndarray, loud: np.ndarray, model: Path) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's (harmonic, noise) levels per block, told each block's last pitch as ``_render`` tells it."""
    import onnxruntime as ort

    f0 = pitch[td.HOP - 1 :: td.HOP][: loud.size, None].astype(np.float32)
    harm, noise = ort.InferenceSession(str(model)).run(None, {"f0": f0, "loudness": loud[:, None].astype(np.float32)})
    return harm, noise


def same_sample_neighbour(stereo: dict[int, np.ndarray], note: int, inst: td.Instrument) -> int:
    """The training neighbour (note +- 1) whose channels are delayed most like the note's own."""
    sustain = slice(round(0.3 * td.SR), round(0.9 * td.SR))

    def lag(n: int) -> float:
        return ic.best_tap(stereo[n][sustain, 0], stereo[n][sustain, 1])[0] * td.midi_hz(n)

    near = [n for n in (note - 1, note + 1) if n in inst.train_notes]
    return min(near, key=lambda n: abs(lag(n) - lag(note)))


def rows(inst: td.Instrument, soundfont: str, model: Path) -> dict[str, list[float]]:
    """Every render's distance on each held-out note at VELOCITY."""
    velocities = td.VELOCITIES[:]
    td.VELOCITIES[:] = [VELOCITY]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            audio, notes = td.render_channels(soundfont, inst.program, Path(tmp), inst.notes)
    finally:
        td.VELOCITIES[:] = velocities
    clip = int(ev.CLIP_S * td.SR)
    stereo = {n: audio[round(s * td.SR) : round(s * td.SR) + clip] for s, _e, n, _v in notes}
    out: dict[str, list[float]] = {}
    for note in inst.held_out:
        real = stereo[note].mean(axis=1)
        pitch = ev._pitch(real, note, ev.measured_f0(real))
        blocks = -(-real.size // td.HOP)
        loud = ev.loudness_track(real, blocks)
        own = frame_targets(real, note, inst)
        steady = td.note_mean_targets(own)
        neighbour = same_sample_neighbour(stereo, note, inst)
        tables = {
            "own": pitch_table(own),
            "neighbour": pitch_table(frame_targets(stereo[neighbour].mean(1), neighbour, inst)),
        }
        bins = offset_bins(pitch, note, blocks)
        decoded = ev._render(pitch, loud, None, model)  # for its distance
        dec_levels = decoder_levels(pitch, loud, model)
        harms = {
            "oracle": (own["harm"], own["noise"]),
            "steady": (steady["harm"], steady["noise"]),
            **{f"{k} table": (steady["harm"] * t[bins], steady["noise"]) for k, t in tables.items()},
            **{f"smoothed {n}": (smoothed(own["harm"], own["loudness"], n), own["noise"]) for n in SMOOTHING},
            "decoder H + oracle N": (dec_levels[0], own["noise"]),
            "oracle H + decoder N": (own["harm"], dec_levels[1]),
        }
        for name, (h, nz) in harms.items():
            render = ev._render(pitch, loud, lambda b, _db, _hz, h=h, nz=nz: (h[b], nz[b]))
            out.setdefault(name, []).append(ev.multiscale_spectral_distance(render[: real.size], real))
        out.setdefault("decoder", []).append(ev.multiscale_spectral_distance(decoded[: real.size], real))
        print(
            f"note {note} (same sample as {neighbour}): " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in out.items()),
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instrument", choices=sorted(td.INSTRUMENTS), default="violin")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--model", type=Path, help="default: graphs/models/ddsp_<instrument>.onnx")
    args = ap.parse_args()
    inst = td.INSTRUMENTS[args.instrument]
    out = rows(inst, args.soundfont, args.model or ev.ROOT / inst.model)
    print(f"mean over the {len(inst.held_out)} held-out notes at velocity {VELOCITY}, measured f0:")
    for name, values in out.items():
        print(f"  {name:<22} {np.mean(values):.2f}")


if __name__ == "__main__":
    main()
