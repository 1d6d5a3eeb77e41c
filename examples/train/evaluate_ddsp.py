"""Evaluate a DDSP decoder (graphs/models/ddsp_<instrument>.onnx) on held-out notes against a non-neural baseline.

For every held-out note of the instrument (``train_ddsp.INSTRUMENTS[...].held_out``: every 7th
MIDI note, never seen in training) at every training velocity, the real FluidR3_GM instrument
(flute or violin) is rendered by fluidsynth, and
two renders are made from that recording's own controls, f0 (from the MIDI note) and loudness
(the frame RMS level in dB, measured on the recording every 256 samples):

- **neural**: ``onnx.model`` (the shipped decoder) -> ``synth.harmonic`` + ``synth.filtered_noise``;
- **baseline**: the same two synthesis nodes fed ONE fixed spectrum, the training set's mean
  harmonic distribution and noise band levels (each relative to the frame's RMS level), scaled
  per frame so the output's RMS level equals the recording's loudness.

With ``--f0 measured`` every render plays instead the pitch ``analysis.pitch`` measures on the
recording (``measured_f0``: its vibrato, in phase), as the timbre-transfer patches do; the
resynthesis protocol of DDSP.

Both are compared with the recording by the multi-scale spectral distance of DDSP (Engel et
al. 2020): the sum over FFT sizes 2048, 1024, 512, 256, 128 and 64 (Hann window, 75 % overlap) of
the mean |S - S'| plus the mean |log S - log S'| of the magnitude spectrograms. Lower is closer.

Usage (needs fluidsynth and fluid-soundfont-gm; no torch)::

    python examples/train/evaluate_ddsp.py                        # the flute: prints the table
    python examples/train/evaluate_ddsp.py --test-data tests/data # also writes the test fixtures
    python examples/train/evaluate_ddsp.py --instrument violin --test-data tests/data
    python examples/train/evaluate_ddsp.py --instrument violin --oracle   # + the bound for any decoder
    python examples/train/evaluate_ddsp.py --instrument violin --oracle --f0 measured
    python examples/train/evaluate_ddsp.py --instrument violin --oracle --channel right  # one channel

``--channel`` measures on one of fluidsynth's two channels instead of the instrument's data form
(``train_ddsp.render``; the baseline's mean spectrum is taken from the same form).

``--test-data`` writes the baseline's mean spectrum (``ddsp_<instrument>_mean_spectrum.json``) and
two held-out notes (the instrument's ``fixtures``) as 16-bit WAVs
(``<instrument>_heldout_<note>_v<velocity>.wav``) that tests/test_ddsp_heldout.py and
docs/make_neural_images.py use without fluidsynth.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_ddsp as td  # the training script's constants and analysis, one definition

ROOT = Path(__file__).resolve().parent.parent.parent
FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_EPS = 1e-5
#: Training frames quieter than this are the gaps between notes: left out of the mean spectrum.
SILENCE_DB = -70.0
#: Seconds of each held-out note kept: from the note-on, through the release.
CLIP_S = 1.25
#: The flute's held-out notes shipped as test fixtures: (MIDI note, velocity).
FIXTURES = td.FLUTE.fixtures
#: ``--f0 measured``: analysis.pitch as the timbre-transfer patches set it (graphs/transfer_*.toml),
#: run in blocks of this many samples (one f0 frame per 4 ms at 32 kHz).
PITCH_MIN_HZ = 50.0
PITCH_MAX_HZ = 2000.0
PITCH_BLOCK = 128


def fixture_path(folder: Path, instrument: str, note: int, velocity: int) -> Path:
    """Where a held-out test fixture lives: ``<instrument>_heldout_<note>_v<velocity>.wav``."""
    return folder / f"{instrument}_heldout_{note}_v{velocity}.wav"


def spectrum_path(folder: Path, instrument: str) -> Path:
    """Where the baseline's mean spectrum of an instrument lives."""
    return folder / f"ddsp_{instrument}_mean_spectrum.json"


def multiscale_spectral_distance(x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...] = FFT_SIZES) -> float:
    """DDSP's multi-scale spectral distance between two equally long signals (lower is closer)."""
    total = 0.0
    for n in sizes:
        hop = n // 4
        window = np.hanning(n)
        mags = []
        for s in (x, y):
            frames = np.lib.stride_tricks.sliding_window_view(np.asarray(s, np.float64), n)[::hop]
            mags.append(np.abs(np.fft.rfft(frames * window, axis=1)))
        a, b = mags
        total += float(np.mean(np.abs(a - b)) + np.mean(np.abs(np.log(a + LOG_EPS) - np.log(b + LOG_EPS))))
    return total


def loudness_track(audio: np.ndarray, frames: int) -> np.ndarray:
    """Loudness in dB (RMS of a Hann-windowed 2048-sample frame, as in training) at the end of each hop."""
    window = np.hanning(td.WIN)
    wsq = float(np.sum(window**2))
    padded = np.concatenate([np.zeros(td.WIN // 2), audio, np.zeros(td.WIN)])
    out = np.empty(frames)
    for b in range(frames):
        centre = (b + 1) * td.HOP + td.WIN // 2  # the sample a block ramps towards: its last one
        frame = padded[centre - td.WIN // 2 : centre + td.WIN // 2] * window
        out[b] = 20.0 * np.log10(np.sqrt(np.sum(frame**2) / wsq) + 1e-7)
    return out


def mean_spectrum(data: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """The training set's mean harmonic amplitudes and noise levels, each relative to the frame's RMS."""
    loud = data["loudness"].astype(np.float64)
    keep = loud > SILENCE_DB
    rms = 10.0 ** (loud[keep] / 20.0)
    f0 = data["f0"][keep].astype(np.float64)
    k = np.arange(1, td.HARMONICS + 1)
    seen = k[None, :] * f0[:, None] < td.SR / 2 - 2 * td.SR / td.WIN  # harmonics the analysis could measure
    rel_h = data["harm"][keep] / rms[:, None]
    harm = np.array([rel_h[seen[:, i], i].mean() if seen[:, i].any() else 0.0 for i in range(td.HARMONICS)])
    noise = (data["noise"][keep] / rms[:, None]).mean(axis=0)
    return {"harm": harm.tolist(), "noise": noise.tolist()}


def _synth_nodes(sr: float, block: int):
    from neuralgraph.plugin import PrepareContext
    from neuralgraph_plugins.ddsp import FilteredNoise, HarmonicSynth

    ctx = PrepareContext(sample_rate=sr, block_size=block, lanes=1, input_lanes={}, output_lanes={})
    harmonic = HarmonicSynth(count=td.HARMONICS)
    noise = FilteredNoise(bands=td.BANDS, top_hz=td.TOP_HZ, seed=1)
    harmonic.prepare(ctx)
    noise.prepare(ctx)
    return ctx, harmonic, noise


def _render(f0: np.ndarray, loud: np.ndarray, controls, model: Path | None = None) -> np.ndarray:
    """Run synth.harmonic + synth.filtered_noise block by block (block = one analysis hop).

    ``f0`` is the pitch per sample (``loud.size`` blocks of td.HOP); the decoder is told each
    block's last value, the one its outputs ramp towards. ``controls(b, loudness_db, f0)`` gives
    (harmonic amplitudes, noise levels) for block b, unless ``model`` is given: then the ONNX
    decoder (``onnx.model``) computes them from f0 and loudness.
    """
    from neuralgraph.plugin import Ports

    ctx, harmonic, noise = _synth_nodes(td.SR, td.HOP)
    decoder = None
    if model is not None:
        from neuralgraph_plugins.onnx_model import OnnxModel

        decoder = OnnxModel(model=str(model))
        decoder.prepare(ctx)
        dec_in = Ports({"f0": np.zeros((1, 1), np.float32), "loudness": np.zeros((1, 1), np.float32)})
        dec_out = Ports({p: np.zeros((1, 1), np.float32) for p in decoder.outputs()})
    freq = np.zeros((1, td.HOP), np.float32)
    h_out, n_out = np.zeros((1, td.HOP), np.float32), np.zeros((1, td.HOP), np.float32)
    audio = np.zeros(loud.size * td.HOP)
    for b, db in enumerate(loud):
        freq[0] = f0[b * td.HOP : (b + 1) * td.HOP]
        if decoder is not None:
            dec_in["f0"][0, 0] = freq[0, -1]
            dec_in["loudness"][0, 0] = db
            decoder.process(dec_in, dec_out, td.HOP)
            h_ins = {f"amp_{k}": dec_out[f"harm_{k}"] for k in range(1, td.HARMONICS + 1)}
            n_ins = {f"band_{k}": dec_out[f"noise_{k}"] for k in range(1, td.BANDS + 1)}
        else:
            harm, bands = controls(b, db, float(freq[0, -1]))
            h_ins = {f"amp_{k}": np.full((1, 1), harm[k - 1], np.float32) for k in range(1, td.HARMONICS + 1)}
            n_ins = {f"band_{k}": np.full((1, 1), bands[k - 1], np.float32) for k in range(1, td.BANDS + 1)}
        harmonic.process(Ports({"freq": freq, **h_ins}), Ports({"out": h_out}), td.HOP)
        noise.process(Ports(n_ins), Ports({"out": n_out}), td.HOP)
        audio[b * td.HOP : (b + 1) * td.HOP] = h_out[0] + n_out[0]
    return audio


def _blocks(real: np.ndarray) -> int:
    return -(-real.size // td.HOP)


def _pitch(real: np.ndarray, note: int, f0: np.ndarray | None) -> np.ndarray:
    """The per-sample pitch a render plays: ``f0`` (a measured track, padded to whole blocks with
    its last value), or the MIDI note's frequency throughout."""
    samples = _blocks(real) * td.HOP
    if f0 is None:
        return np.full(samples, td.midi_hz(note))
    return np.concatenate([f0, np.full(samples - f0.size, f0[-1])])[:samples]


def measured_f0(real: np.ndarray, min_hz: float = PITCH_MIN_HZ, max_hz: float = PITCH_MAX_HZ) -> np.ndarray:
    """The recording's own fundamental per sample, as the timbre-transfer patches measure it:
    ``analysis.pitch`` (with their ``min_hz``/``max_hz``) run over the recording in blocks of
    PITCH_BLOCK samples, each frame's f0 placed at its centre (the block's end minus the node's
    declared latency, which is what ``render`` removes) and interpolated between frames. Before
    the first voiced frame the first voiced f0 is used, after the last the last one (the node
    holds it)."""
    from neuralgraph.plugin import Ports, PrepareContext
    from neuralgraph_plugins.analysis import PitchTracker

    ctx = PrepareContext(sample_rate=td.SR, block_size=PITCH_BLOCK, lanes=1, input_lanes={}, output_lanes={})
    tracker = PitchTracker(min_hz=min_hz, max_hz=max_hz)
    tracker.prepare(ctx)
    block = np.zeros((1, PITCH_BLOCK), np.float32)
    ins = Ports({"in": block, "octave": np.zeros((1, 1), np.float32)})
    outs = Ports({p: np.zeros((1, 1), np.float32) for p in ("f0", "confidence", "voiced")})
    padded = np.concatenate([real, np.zeros(tracker.latency + PITCH_BLOCK)])
    times, values, voiced = [], [], []
    for start in range(0, padded.size - PITCH_BLOCK + 1, PITCH_BLOCK):
        block[0] = padded[start : start + PITCH_BLOCK]
        tracker.process(ins, outs, PITCH_BLOCK)
        times.append(start + PITCH_BLOCK - 1 - tracker.latency)
        values.append(float(outs["f0"][0, 0]))
        voiced.append(outs["voiced"][0, 0] > 0.5)
    times_a, values_a, voiced_a = np.array(times), np.array(values), np.array(voiced)
    if not voiced_a.any():
        raise ValueError("analysis.pitch found no voiced frame in the recording")
    first = int(np.argmax(voiced_a))
    values_a[:first] = values_a[first]
    return np.interp(np.arange(real.size), times_a, values_a)


def render_neural(real: np.ndarray, note: int, model: Path, f0: np.ndarray | None = None) -> np.ndarray:
    """The decoder + DDSP nodes driven by the recording's loudness and f0 (the MIDI note's, or the
    per-sample track ``f0``, e.g. ``measured_f0``); same length as ``real``."""
    pitch = _pitch(real, note, f0)
    return _render(pitch, loudness_track(real, _blocks(real)), None, model)[: real.size]


def render_baseline(
    real: np.ndarray, note: int, spectrum: dict[str, list[float]], f0: np.ndarray | None = None
) -> np.ndarray:
    """The same DDSP nodes with one fixed spectrum, scaled per frame to the recording's loudness
    (pitch as in ``render_neural``)."""
    mean_harm = np.array(spectrum["harm"])
    noise = np.array(spectrum["noise"])
    k = np.arange(1, td.HARMONICS + 1)

    def controls(_b: int, db: float, hz: float) -> tuple[np.ndarray, np.ndarray]:
        harm = np.where(k * hz < td.SR / 2, mean_harm, 0.0)  # what synth.harmonic can play at this pitch
        unit_rms = np.sqrt(np.sum(harm**2) / 2.0 + np.sum(noise**2))  # sine peak a has RMS a / sqrt(2)
        gain = 10.0 ** (db / 20.0) / unit_rms
        return harm * gain, noise * gain

    pitch = _pitch(real, note, f0)
    return _render(pitch, loudness_track(real, _blocks(real)), controls)[: real.size]


def render_oracle(real: np.ndarray, note: int, inst: td.Instrument, f0: np.ndarray | None = None) -> np.ndarray:
    """The same DDSP nodes fed the recording's OWN per-frame targets (the training analysis of this
    very note, at the block's frame): what a perfect decoder with these 48 outputs would play
    (pitch as in ``render_neural``), a bound on what any (f0, loudness) decoder can reach under
    the protocol."""
    frames = _blocks(real)
    padded = np.concatenate([np.zeros(td.WIN // 2), real, np.zeros(2 * td.WIN)])
    targets = td.analyse(padded, [(0.0, padded.size / td.SR, note, 0)], inst.track_pitch, inst.energy)
    harm, noise = targets["harm"][1 : frames + 1], targets["noise"][1 : frames + 1]  # frame b + 1 ends block b
    pitch = _pitch(real, note, f0)
    return _render(pitch, loudness_track(real, frames), lambda b, _db, _hz: (harm[b], noise[b]))[: real.size]


def heldout_notes(
    soundfont: str,
    program: int,
    workdir: Path,
    pitches: tuple[int, ...] = td.HELD_OUT_NOTES,
    channel: str = "mix",
) -> dict[tuple[int, int], np.ndarray]:
    """Every held-out note (default: the flute's) at every velocity, rendered by fluidsynth
    (``channel`` as in ``train_ddsp.render``): {(note, velocity): CLIP_S of audio}."""
    audio, notes = td.render(soundfont, program, workdir, pitches, channel)
    clips = {}
    for start, _end, note, vel in notes:
        a = round(start * td.SR)
        clips[(note, vel)] = audio[a : a + int(CLIP_S * td.SR)]
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instrument", choices=sorted(td.INSTRUMENTS), default="flute")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--program", type=int, help="General MIDI program, 1-based (default: the instrument's)")
    ap.add_argument("--model", type=Path, help="default: graphs/models/ddsp_<instrument>.onnx")
    ap.add_argument("--test-data", type=Path, help="write the mean spectrum and two held-out notes here")
    ap.add_argument(
        "--oracle",
        action="store_true",
        help="also render each note from its own analysed targets: the bound for any decoder",
    )
    ap.add_argument(
        "--f0",
        choices=("midi", "measured"),
        default="midi",
        help="the pitch every render plays: the MIDI note's (default), or the recording's own measured "
        "by analysis.pitch (vibrato included; DDSP's resynthesis protocol)",
    )
    ap.add_argument(
        "--channel",
        choices=td.CHANNELS,
        help="the recordings: the mean of fluidsynth's two channels or one of them (default: the instrument's)",
    )
    args = ap.parse_args()
    inst = td.INSTRUMENTS[args.instrument]
    program = args.program or inst.program
    model = args.model or ROOT / inst.model
    channel = args.channel or inst.channel
    with tempfile.TemporaryDirectory() as tmp:
        train_audio, train_notes = td.render(args.soundfont, program, Path(tmp), inst.train_notes, channel)
        clips = heldout_notes(args.soundfont, program, Path(tmp), inst.held_out, channel)
    spectrum = mean_spectrum(td.analyse(train_audio, train_notes, inst.track_pitch, inst.energy))
    if args.test_data:
        args.test_data.mkdir(parents=True, exist_ok=True)
        path = spectrum_path(args.test_data, inst.name)
        path.write_text(
            json.dumps(
                {
                    "sample_rate": td.SR,
                    "harm": [round(v, 6) for v in spectrum["harm"]],
                    "noise": [round(v, 6) for v in spectrum["noise"]],
                },
                indent=1,
            )
            + "\n"
        )
        print(f"wrote {path}")
        for note, vel in inst.fixtures:
            path = fixture_path(args.test_data, inst.name, note, vel)
            sf.write(str(path), clips[(note, vel)].astype(np.float32), td.SR, subtype="PCM_16")
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    print(f"{'note':>4} {'vel':>4} {'neural':>8} {'baseline':>9}" + (f" {'oracle':>7}" if args.oracle else ""))
    rows = []
    for (note, vel), real in sorted(clips.items()):
        f0 = measured_f0(real) if args.f0 == "measured" else None
        neural = multiscale_spectral_distance(render_neural(real, note, model, f0), real)
        base = multiscale_spectral_distance(render_baseline(real, note, spectrum, f0), real)
        oracle = multiscale_spectral_distance(render_oracle(real, note, inst, f0), real) if args.oracle else 0.0
        rows.append((neural, base, oracle))
        print(
            f"{note:>4} {vel:>4} {neural:>8.2f} {base:>9.2f}" + (f" {oracle:>7.2f}" if args.oracle else ""), flush=True
        )
    n, b, o = np.array(rows).T
    print(
        f"{channel}, f0 {args.f0}: mean over {len(rows)} held-out notes: neural {n.mean():.2f}, baseline {b.mean():.2f} "
        f"({100 * (1 - n.mean() / b.mean()):.0f} % closer); neural closer on {int(np.sum(n < b))} of {len(rows)}"
        + (f"; oracle {o.mean():.2f} ({100 * (1 - o.mean() / b.mean()):.0f} % closer)" if args.oracle else "")
    )


if __name__ == "__main__":
    main()
