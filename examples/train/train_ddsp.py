"""Train the DDSP-style decoders shipped as graphs/models/ddsp_{flute,violin,trumpet}.onnx.

One pipeline, one preset per instrument (``INSTRUMENTS``; ``--instrument flute`` is the default),
all offline, a minute or two of CPU each:

1. ``render``: write a MIDI file of sustained notes of the instrument (flute: General MIDI program
   74, MIDI notes 60-96; violin: program 41, notes 55-91; trumpet: program 57, notes 54-86) at
   four velocities, except the
   instrument's held-out notes (every 7th note), which training never sees and
   ``evaluate_ddsp.py`` measures the model on, and render it with the fluidsynth command line and
   a General MIDI soundfont (Debian: ``apt-get install fluidsynth fluid-soundfont-gm``). The
   soundfont's instruments are recordings of real ones, so this is real sound. The data is the
   mean of fluidsynth's two channels (the preset's ``channel``, "mix" for all three: one channel
   alone was measured and not adopted, docs/neural.md; ``--channel left|right`` trains on one).
2. ``analyse``: per frame (hop 256 at 32 kHz, window 2048), the fundamental f0 is known exactly from
   the MIDI note; loudness is the frame's RMS level in dB; the targets are the peak amplitude of
   each of 32 harmonics (read from the spectrum at k * f0; the violin's from the energy around it,
   ``energy``) and the RMS level of 16 noise bands (0-16 kHz in 1 kHz bands, from the spectrum
   with the harmonic peaks removed).
3. ``train``: a small MLP (f0, loudness) -> (32 harmonic amplitudes, 16 noise band levels), fitted
   in the log-amplitude domain with torch on the CPU (the violin's also hears f0's offset from the
   nearest semitone, computed inside the model: ``vibrato_response``).
4. ``export``: ONNX with a dynamic batch axis (``onnx.model`` runs all voices in one call):
   inputs ``f0`` [batch, 1] (Hz) and ``loudness`` [batch, 1] (dB), outputs ``harm`` [batch, 32]
   and ``noise`` [batch, 16] -- exactly what ``synth.harmonic`` (count = 32) and
   ``synth.filtered_noise`` (bands = 16, top_hz = 16000) take.

Usage (torch is only needed here: ``pip install -e .[train]``)::

    python examples/train/train_ddsp.py --out graphs/models/ddsp_flute.onnx
    python examples/train/train_ddsp.py --reference tests/data/flute_a4.wav   # also save a real note
    python examples/train/train_ddsp.py --instrument violin                   # -> graphs/models/ddsp_violin.onnx

Options: ``--instrument`` (flute, violin, trumpet), ``--soundfont`` (default
/usr/share/sounds/sf2/FluidR3_GM.sf2), ``--program`` (overrides the preset's), ``--steps``, ``--out``,
``--channel`` (mix, left, right: overrides the preset's).

``--envelope-only`` skips training and fits what the MIDI patches (graphs/neural_<instrument>.toml)
take from the recordings: the env.adsr settings that follow their mean attack and release
(``fit_envelope``), the sustain level against velocity (``fit_velocity``) and their own vibrato
(``fit_vibrato``), printed as the patch's values.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SR = 32000
HOP = 256
WIN = 2048
HARMONICS = 32
BANDS = 16
TOP_HZ = 16000.0
#: ``analyse(energy=True)``: the bins on each side of a harmonic whose energy is its amplitude.
ENERGY_BINS = 3


@dataclass(frozen=True)
class Instrument:
    """One General MIDI instrument to learn: its program, note range and held-out notes."""

    name: str
    #: General MIDI program, 1-based.
    program: int
    #: Every MIDI note of the instrument's range (training plus held out).
    notes: tuple[int, ...]
    #: Every 7th note, at all velocities, is kept out of training: the evaluation's held-out set.
    held_out: tuple[int, ...]
    #: The held-out notes shipped as test fixtures: (MIDI note, velocity).
    fixtures: tuple[tuple[int, int], ...]
    #: Read the harmonics at the recording's actual pitch (``analyse(track_pitch=True)``).
    track_pitch: bool = False
    #: Average the targets' power over this many consecutive frames (``smooth_targets``); 1 = off.
    smooth_frames: int = 1
    #: Replace each frame's targets by its note's mean spectrum at the frame's level (``note_mean_targets``).
    note_mean: bool = False
    #: Read each harmonic's amplitude from the energy around its peak (``analyse(energy=True)``).
    energy: bool = False
    #: The decoder hears the pitch's offset from the nearest semitone and learns how each partial's
    #: level follows it within a note (``vibrato_response_targets``); needs ``track_pitch``.
    vibrato_response: bool = False
    #: Adam steps of training (``--steps`` overrides).
    steps: int = 3000
    #: Which of fluidsynth's two output channels the data is (``render``): "mix" (their mean),
    #: "left" or "right" (``--channel`` overrides). "mix" for all three: the violin's partials swing
    #: as much in one channel as in the mix, and one channel's model did not reach 25 % against
    #: that channel's baseline (docs/neural.md, "One channel instead of the mix").
    channel: str = "mix"

    @property
    def train_notes(self) -> list[int]:
        """The notes training sees: the range without the held-out notes."""
        return [n for n in self.notes if n not in self.held_out]

    @property
    def model(self) -> str:
        """The shipped model's path, relative to the repository root."""
        return f"graphs/models/ddsp_{self.name}.onnx"


INSTRUMENTS: dict[str, Instrument] = {
    "flute": Instrument("flute", 74, tuple(range(60, 97)), (63, 70, 77, 84, 91), ((70, 105), (84, 75))),
    "violin": Instrument(
        "violin",
        41,
        tuple(range(55, 92)),
        (58, 65, 72, 79, 86),
        ((65, 105), (79, 75)),
        track_pitch=True,
        note_mean=True,
        energy=True,
        vibrato_response=True,
        steps=6000,
    ),
    "trumpet": Instrument(
        "trumpet", 57, tuple(range(54, 87)), (57, 64, 71, 78, 85), ((64, 105), (78, 75)), track_pitch=True
    ),
}
FLUTE = INSTRUMENTS["flute"]
# The flute's, as module constants (the flute was the first instrument).
NOTES = list(FLUTE.notes)
HELD_OUT_NOTES = FLUTE.held_out
TRAIN_NOTES = FLUTE.train_notes
VELOCITIES = [45, 75, 105, 127]
NOTE_S = 1.0
GAP_S = 0.35
FLOOR = 1e-5


def midi_hz(note: float) -> float:
    """Equal-tempered frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def note_list(pitches: list[int] | tuple[int, ...] = tuple(TRAIN_NOTES)) -> list[tuple[float, float, int, int]]:
    """(start s, end s, note, velocity) of every note of ``pitches`` (default: the flute's training notes)."""
    notes, t = [], 0.5
    for vel in VELOCITIES:
        for note in pitches:
            notes.append((t, t + NOTE_S, note, vel))
            t += NOTE_S + GAP_S
    return notes


#: ``render``'s choice of channel: the mean of fluidsynth's two, or one of them.
CHANNELS = ("mix", "left", "right")


def render(
    soundfont: str,
    program: int,
    workdir: Path,
    pitches: list[int] | tuple[int, ...] = tuple(TRAIN_NOTES),
    channel: str = "mix",
) -> tuple[np.ndarray, list]:
    """Render ``pitches`` (default: the flute's training notes) with fluidsynth; mono float audio at SR
    (``channel``: the mean of the two channels, or the left or right one alone) and the notes."""
    audio, notes = render_channels(soundfont, program, workdir, pitches)
    if channel == "mix":
        return audio.mean(axis=1), notes
    return audio[:, CHANNELS.index(channel) - 1], notes


def render_channels(
    soundfont: str, program: int, workdir: Path, pitches: list[int] | tuple[int, ...]
) -> tuple[np.ndarray, list]:
    """``render``'s fluidsynth output as it is: [samples, 2] float audio at SR, and the notes."""
    notes = note_list(pitches)
    mid = mido.MidiFile(ticks_per_beat=960)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 120 bpm: 1920 ticks per second
    track.append(mido.Message("program_change", program=program - 1, channel=0, time=0))
    events = []
    for start, end, note, vel in notes:
        events.append((start, mido.Message("note_on", note=note, velocity=vel, channel=0)))
        events.append((end, mido.Message("note_off", note=note, velocity=0, channel=0)))
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tick = round(t * 1920)
        track.append(msg.copy(time=tick - now))
        now = tick
    mid_path, wav_path = workdir / "train.mid", workdir / "train.wav"
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
            str(wav_path),
            "-r",
            str(SR),
            soundfont,
            str(mid_path),
        ],
        check=True,
        capture_output=True,
    )
    audio, sr = sf.read(str(wav_path), dtype="float64", always_2d=True)
    assert sr == SR, sr
    return audio, notes


def partial_f0(spec: np.ndarray, f0: float, cents: float = 60.0, steps: int = 49, count: int = 8) -> float:
    """The frame's actual fundamental near the nominal ``f0``: the candidate within +-``cents`` whose
    first ``count`` harmonics (below Nyquist) collect the most log magnitude in ``spec`` (a
    WIN-point rfft magnitude). Sampled instruments are not always tuned to the MIDI note, and a
    violin sample has vibrato; reading the harmonics at the nominal k * f0 would miss them."""
    bin_hz = SR / WIN
    cands = f0 * 2.0 ** (np.linspace(-cents, cents, steps) / 1200.0)
    k = np.arange(1, count + 1)
    pos = cands[:, None] * k[None, :] / bin_hz
    ok = pos < spec.size - 2
    idx = np.minimum(np.round(pos).astype(int), spec.size - 1)
    logmag = np.log(spec + 1e-9)
    score = np.where(ok, logmag[idx], 0.0).sum(axis=1)
    return float(cands[int(np.argmax(score))])


def analyse(audio: np.ndarray, notes: list, track_pitch: bool = False, energy: bool = False) -> dict[str, np.ndarray]:
    """Per-frame f0, loudness, harmonic amplitudes and noise band levels.

    The f0 returned (the model's input) is always the MIDI note's; with ``track_pitch`` the
    harmonics are read (and removed before the noise analysis) at multiples of the frame's actual
    fundamental (``partial_f0``) instead of the nominal one. A harmonic's amplitude is its peak
    (2 |X| / sum(w) within +-2 bins: exact for a steady sine), or with ``energy`` the amplitude of
    the sine with the energy of the +-ENERGY_BINS bins around it (2 sqrt(sum |X|^2 / (N sum(w^2)))):
    a partial that moves within the frame (vibrato) spreads over several bins and its peak reads
    it too low.
    """
    window = np.hanning(WIN)
    wsum, wsq = window.sum(), (window**2).sum()
    bin_hz = SR / WIN
    starts = np.array([n[0] for n in notes])
    f0s, louds, harms, noises, parts = [], [], [], [], []
    band_edges = np.linspace(0.0, TOP_HZ, BANDS + 1)
    bins_hz = np.arange(WIN // 2 + 1) * bin_hz
    band_of_bin = np.minimum((bins_hz / (TOP_HZ / BANDS)).astype(int), BANDS)
    for centre in range(WIN // 2, audio.size - WIN // 2, HOP):
        t = centre / SR
        idx = np.searchsorted(starts, t, side="right") - 1
        if idx < 0:
            continue
        f0 = midi_hz(notes[idx][2])
        frame = audio[centre - WIN // 2 : centre + WIN // 2] * window
        spec = np.abs(np.fft.rfft(frame))
        power = spec**2
        harm = np.full(HARMONICS, FLOOR)
        keep = np.ones(spec.size, bool)
        f_part = partial_f0(spec, f0) if track_pitch else f0
        for k in range(1, HARMONICS + 1):
            fk = k * f_part
            if fk >= SR / 2 - 2 * bin_hz:
                break
            c = round(fk / bin_hz)
            if energy:
                lo, hi = max(c - ENERGY_BINS, 0), min(c + ENERGY_BINS + 1, spec.size)
                amp = 2.0 * np.sqrt(power[lo:hi].sum() / (WIN * wsq))
            else:
                lo, hi = max(c - 2, 0), min(c + 3, spec.size)
                amp = 2.0 * spec[lo:hi].max() / wsum
            harm[k - 1] = max(amp, FLOOR)
            keep[max(c - 4, 0) : min(c + 5, spec.size)] = False
        noise = np.full(BANDS, FLOOR)
        for b in range(BANDS):
            in_band = band_of_bin == b
            kept = in_band & keep
            if kept.sum() == 0:
                continue
            p = 2.0 / WIN * power[kept].sum() * (in_band.sum() / kept.sum()) / wsq
            noise[b] = max(np.sqrt(p), FLOOR)
        rms = np.sqrt(np.sum(frame**2) / wsq)
        f0s.append(f0)
        parts.append(f_part)
        louds.append(20.0 * np.log10(rms + 1e-7))
        harms.append(harm)
        noises.append(noise)
    return {
        "f0": np.array(f0s, np.float32),
        "loudness": np.array(louds, np.float32),
        "harm": np.array(harms, np.float32),
        "noise": np.array(noises, np.float32),
        "f_part": np.array(parts, np.float32),
        "edges": band_edges,
    }


def smooth_targets(data: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
    """Average each harmonic's and noise band's power over ``frames`` consecutive analysis frames.

    The decoder is fitted in the log domain, so it learns the geometric mean of what it sees; where
    the frame-to-frame spread is large (a violin's vibrato moves its upper partials in and out of
    the analysis bins) that mean is several dB below the power mean the ear and the spectral
    distance measure. Averaging the power over a few frames (``frames`` * HOP samples) first removes
    most of that bias. Loudness and f0 are left as they are.
    """
    if frames <= 1:
        return data
    kernel = np.ones(frames) / frames
    out = dict(data)
    for key in ("harm", "noise"):
        power = data[key].astype(np.float64) ** 2
        smoothed = np.stack([np.convolve(power[:, i], kernel, mode="same") for i in range(power.shape[1])], axis=1)
        out[key] = np.maximum(np.sqrt(smoothed), FLOOR).astype(np.float32)
    return out


def note_mean_targets(data: dict[str, np.ndarray], silence_db: float = -70.0) -> dict[str, np.ndarray]:
    """Give every frame its note's mean spectrum (each harmonic's and band's amplitude relative to the
    frame's RMS, averaged over the note's frames above ``silence_db``), scaled to the frame's RMS.

    A note is a run of frames at one f0 (the notes of ``note_list`` never repeat a pitch twice in a
    row). The soundfont violin's timbre hardly changes with level, while its vibrato makes each
    frame's partials swing by many dB: fitted frame by frame in the log domain the decoder learns
    that swing's geometric mean, several dB too low and noisy between notes. The note's amplitude
    mean scored best on held-out notes (power and geometric means were worse: docs/neural.md).
    """
    f0, loud = data["f0"], data["loudness"].astype(np.float64)
    rms = 10.0 ** (loud / 20.0)
    starts = np.flatnonzero(np.concatenate([[True], f0[1:] != f0[:-1], [True]]))
    out = dict(data)
    for key in ("harm", "noise"):
        rel = data[key].astype(np.float64) / rms[:, None]
        target = np.empty_like(rel)
        for a, b in zip(starts[:-1], starts[1:]):
            loud_enough = loud[a:b] > silence_db
            mean = rel[a:b][loud_enough].mean(axis=0) if loud_enough.any() else rel[a:b].mean(axis=0)
            target[a:b] = mean[None, :] * rms[a:b, None]
        out[key] = np.maximum(target, FLOOR).astype(np.float32)
    return out


#: ``vibrato_response_targets``: the width of its cents bins and the offsets they cover.
CENTS_BIN = 5.0
CENTS_SPAN = 40.0


def vibrato_response_targets(data: dict[str, np.ndarray], silence_db: float = -70.0) -> dict[str, np.ndarray]:
    """``note_mean_targets``, with each frame's harmonics scaled by how its note's partials respond
    to the pitch's offset from the note: per note, the frames (above ``silence_db``) are put in
    CENTS_BIN bins of their actual fundamental's offset (``f_part``) and each harmonic's mean power
    relative to the note's mean spectrum is taken per bin; a frame gets its bin's factor. The model's
    f0 becomes the frame's actual fundamental, so the decoder can learn that response.

    The soundfont violin's vibrato swings each partial by many dB in step with the pitch (as much in
    each of its samples' two channels as in their mix: ``inspect_channels.py``), and a note's
    neighbours of the same sample share it. Binning by offset keeps that part of the swing and
    drops what does not follow the pitch; the power mean of each bin avoids the log-domain bias.
    """
    out = note_mean_targets(data, silence_db)
    f0, loud, part = data["f0"], data["loudness"], data["f_part"].astype(np.float64)
    cents = 1200.0 * np.log2(part / f0)
    edges = np.arange(-CENTS_SPAN, CENTS_SPAN + CENTS_BIN, CENTS_BIN)
    bins = np.clip(np.digitize(cents, edges) - 1, 0, edges.size - 2)
    starts = np.flatnonzero(np.concatenate([[True], f0[1:] != f0[:-1], [True]]))
    ratio = (data["harm"].astype(np.float64) / out["harm"]) ** 2
    harm = out["harm"].astype(np.float64)
    for a, b in zip(starts[:-1], starts[1:]):
        loud_enough = loud[a:b] > silence_db
        for i in np.unique(bins[a:b]):
            here = bins[a:b] == i
            chosen = here & loud_enough
            if chosen.sum() >= 2:
                harm[a:b][here] *= np.sqrt(ratio[a:b][chosen].mean(axis=0))
    out["harm"] = np.maximum(harm, FLOOR).astype(np.float32)
    out["f0"] = data["f_part"]
    return out


#: The patches map their envelope (0..1) onto this many dB of decoder loudness (-70 .. -22 dB).
ENV_SPAN_DB = 48.0
ENV_FLOOR_DB = -70.0
#: The grid ``fit_envelope`` searches: env.adsr times in ms and sustain levels.
ENV_GRID = {
    "attack_ms": (5, 10, 20, 30, 45, 60, 80, 100, 130, 160, 200, 260, 330, 400),
    "decay_ms": (20, 50, 100, 200, 400),
    "sustain": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0),
    "release_ms": (20, 40, 60, 90, 120, 160, 220, 300, 400, 550, 700, 900, 1200),
}


def loudness_frames(audio: np.ndarray) -> np.ndarray:
    """The loudness feature (RMS of a Hann-windowed WIN-sample frame, in dB) of frames centred on every HOP-th sample."""
    window = np.hanning(WIN)
    padded = np.concatenate([np.zeros(WIN // 2), audio, np.zeros(WIN)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][: -(-audio.size // HOP)]
    return 20.0 * np.log10(np.sqrt(((frames * window) ** 2).sum(axis=1) / (window**2).sum()) + 1e-7)


def adsr_curve(
    frames: int, gate: int, attack_ms: float, decay_ms: float, sustain: float, release_ms: float
) -> np.ndarray:
    """env.adsr (curve "exp") sampled once per HOP: gate on at frame 0, off at frame ``gate``."""
    hop_ms = 1000.0 * HOP / SR

    def segment(y0: float, end: float, ms: float, ratio: float) -> tuple[int, float, float]:
        n = max(1, round(ms / hop_ms))
        return n, (ratio / (1.0 + ratio)) ** (1.0 / n), end + ratio * (end - y0)

    out, y, stage, k = np.zeros(frames), 0.0, "attack", 0
    n, mul, target = segment(0.0, 1.0, attack_ms, 0.3)
    for i in range(frames):
        if i == gate:
            stage, k = "release", 0
            n, mul, target = segment(y, 0.0, release_ms, 0.001)
        if stage in ("attack", "decay", "release"):
            y, k = y * mul + target * (1.0 - mul), k + 1
            if k >= n and stage == "attack":
                y, stage, k = 1.0, "decay", 0
                n, mul, target = segment(1.0, sustain, decay_ms, 0.001)
            elif k >= n:
                y, stage = (sustain, "sustain") if stage == "decay" else (0.0, "idle")
        out[i] = y
    return out


def fit_envelope(audio: np.ndarray, notes: list) -> tuple[dict[str, float], float, np.ndarray]:
    """The env.adsr settings whose loudness, mapped as the patches map it (ENV_SPAN_DB of loudness,
    sustain at the note's sustain level) and measured with the same feature, best follows the
    recordings' mean attack and release (dB relative to each note's sustain level, from 64 ms
    before the note-on to 0.34 s after its note-off). Returns (settings, RMS error in dB, the
    recordings' mean curve)."""
    loud = loudness_frames(audio)
    pre, gate, post = 8, round(NOTE_S * SR / HOP), round(0.34 * SR / HOP)
    curves, sustains = [], []
    for start, _end, _note, _vel in notes:
        i = round(start * SR / HOP)
        sustain = float(np.median(loud[i + round(0.5 * SR / HOP) : i + round(0.9 * SR / HOP)]))
        curves.append(np.maximum(loud[i - pre : i + gate + post], ENV_FLOOR_DB) - sustain)
        sustains.append(sustain)
    real = np.mean(curves, axis=0)
    floor = ENV_FLOOR_DB - float(np.mean(sustains))
    # the feature's window, a power average over +-4 hops, applied to the envelope's power
    window = np.hanning(WIN) ** 2
    smear = np.array([window[WIN // 2 + j * HOP] for j in range(-3, 4)])
    smear /= smear.sum()
    best: tuple[float, dict[str, float]] | None = None
    for a in ENV_GRID["attack_ms"]:
        for d in ENV_GRID["decay_ms"]:
            for s in ENV_GRID["sustain"]:
                for r in ENV_GRID["release_ms"]:
                    env = np.concatenate([np.zeros(pre), adsr_curve(gate + post, gate, a, d, s, r)])
                    power = 10.0 ** (np.maximum(ENV_SPAN_DB * (env - s), floor) / 10.0)
                    model = np.maximum(10.0 * np.log10(np.convolve(power, smear, mode="same")), floor)
                    err = float(np.sqrt(np.mean((model - real) ** 2)))
                    if best is None or err < best[0]:
                        best = (err, {"attack_ms": a, "decay_ms": d, "sustain": s, "release_ms": r})
    assert best is not None
    return best[1], best[0], real


def fit_vibrato(audio: np.ndarray, notes: list, step: int = 128) -> tuple[float, float]:
    """The recordings' own vibrato, as (depth in cents, rate in Hz), medians over every third note:
    the fundamental tracked every ``step`` samples of the sustain (``partial_f0``, 1-cent grid),
    depth = sqrt(2) x its standard deviation in cents (a sine's peak), rate from its upward
    zero crossings."""
    window = np.hanning(WIN)
    depths, rates = [], []
    for start, end, note, _vel in notes[::3]:
        f0 = midi_hz(note)
        track = [
            partial_f0(np.abs(np.fft.rfft(audio[c - WIN // 2 : c + WIN // 2] * window)), f0, steps=121)
            for c in range(int((start + 0.25) * SR), int((end - 0.05) * SR), step)
        ]
        cents = 1200.0 * np.log2(np.array(track) / f0)
        cents -= cents.mean()
        depths.append(np.sqrt(2.0) * cents.std())
        above = cents > 0.0
        up = np.flatnonzero(~above[:-1] & above[1:])  # upward crossings of the mean
        if up.size > 1:
            rates.append((up.size - 1) / ((up[-1] - up[0]) * step / SR))
    return float(np.median(depths)), float(np.median(rates)) if rates else 0.0


def fit_velocity(audio: np.ndarray, notes: list) -> tuple[float, float]:
    """The recordings' sustain level against velocity as a straight line in velocity / 127:
    (level at velocity 127 in dB, dB less at velocity 0), least squares over every note."""
    loud = loudness_frames(audio)
    vel, level = [], []
    for start, _end, _note, velocity in notes:
        i = round(start * SR / HOP)
        level.append(float(np.median(loud[i + round(0.5 * SR / HOP) : i + round(0.9 * SR / HOP)])))
        vel.append(velocity / 127.0)
    slope, at_zero = np.polyfit(vel, level, 1)
    return float(at_zero + slope), float(slope)


def train(data: dict[str, np.ndarray], steps: int, seed: int = 0, cents_input: bool = False):
    """Fit the decoder MLP to the analysed frames; returns the torch module. With ``cents_input`` the
    MLP also sees the pitch's offset from the nearest semitone (``vibrato_response``)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # small steps: more threads only add sync overhead on a shared machine

    class Decoder(nn.Module):
        """(f0 Hz, loudness dB) -> (harmonic amplitudes, noise band levels); normalisation inside."""

        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(3 if cents_input else 2, 96),
                nn.LeakyReLU(0.1),
                nn.Linear(96, 96),
                nn.LeakyReLU(0.1),
                nn.Linear(96, 96),
                nn.LeakyReLU(0.1),
                nn.Linear(96, HARMONICS + BANDS),
            )

        def log_outputs(self, f0, loudness):
            octaves = torch.log2(torch.clamp(f0, min=20.0) / 440.0)
            x = torch.cat([octaves, (loudness + 40.0) / 20.0], dim=1)
            if cents_input:  # the offset from the nearest semitone, -0.5 .. 0.5 semitones, times 2
                x = torch.cat([x, 2.0 * (12.0 * octaves - torch.round(12.0 * octaves))], dim=1)
            return self.net(x) - 6.0  # start near exp(-6): quiet

        def forward(self, f0, loudness):
            y = torch.exp(torch.clamp(self.log_outputs(f0, loudness), max=0.0))
            return y[:, :HARMONICS], y[:, HARMONICS:]

    model = Decoder()
    f0 = torch.tensor(data["f0"])[:, None]
    loud = torch.tensor(data["loudness"])[:, None]
    target = torch.log(torch.tensor(np.concatenate([data["harm"], data["noise"]], axis=1)))
    k = torch.arange(1, HARMONICS + 1)[None, :]
    valid_h = (k * f0 < SR / 2 - 2 * SR / WIN).float()  # harmonics the analysis could see
    mask = torch.cat([valid_h, torch.ones(f0.shape[0], BANDS)], dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    n = f0.shape[0]
    for step in range(steps):
        idx = torch.randint(0, n, (4096,))
        pred = model.log_outputs(f0[idx], loud[idx])
        loss = (((pred - target[idx]) ** 2) * mask[idx]).sum() / mask[idx].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"step {step}: log-amplitude MSE {loss.item():.3f} (= {8.686 * loss.item() ** 0.5:.1f} dB RMS)")
    return model


def export(model, out: Path) -> None:
    """Write ``model`` as ONNX (opset 17) with a dynamic batch axis."""
    import torch

    model.eval()
    f0 = torch.full((1, 1), 440.0)
    loud = torch.full((1, 1), -30.0)
    torch.onnx.export(
        model,
        (f0, loud),
        str(out),
        input_names=["f0", "loudness"],
        output_names=["harm", "noise"],
        dynamic_axes={"f0": {0: "batch"}, "loudness": {0: "batch"}, "harm": {0: "batch"}, "noise": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def save_reference(audio: np.ndarray, notes: list, path: Path, note: int = 69, velocity: int = 105) -> None:
    """Save 0.5 s of the real rendered note (sustain part) as a 16-bit WAV, for tests."""
    start = next(s for s, _, n, v in notes if n == note and v == velocity)
    a = int((start + 0.3) * SR)
    sf.write(str(path), audio[a : a + SR // 2].astype(np.float32), SR, subtype="PCM_16")
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instrument", choices=sorted(INSTRUMENTS), default="flute")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--program", type=int, help="General MIDI program, 1-based (default: the instrument's)")
    ap.add_argument("--steps", type=int, help="Adam steps (default: the instrument's, 3000 or 6000)")
    ap.add_argument("--out", type=Path, help="default: graphs/models/ddsp_<instrument>.onnx")
    ap.add_argument("--reference", type=Path, help="also save a real note (A4) as a WAV here")
    ap.add_argument("--smooth", type=int, help="target smoothing in frames (default: the instrument's)")
    ap.add_argument(
        "--channel",
        choices=CHANNELS,
        help="the recordings: the mean of fluidsynth's two channels or one of them (default: the instrument's)",
    )
    ap.add_argument(
        "--envelope-only",
        action="store_true",
        help="only fit the patch's envelope, velocity mapping and vibrato to the recordings (no training)",
    )
    args = ap.parse_args()
    inst = INSTRUMENTS[args.instrument]
    program = args.program or inst.program
    out = args.out or Path(inst.model)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        audio, notes = render(args.soundfont, program, Path(tmp), inst.train_notes, args.channel or inst.channel)
    print(f"rendered {audio.size / SR:.1f} s of audio ({inst.name}, program {program}, {args.channel or inst.channel})")
    settings, err, _ = fit_envelope(audio, notes)
    print(
        f"env.adsr fitted to the recordings' attacks and releases ({err:.1f} dB RMS): "
        + ", ".join(f"{k} = {v}" for k, v in settings.items())
    )
    top, span = fit_velocity(audio, notes)
    low = top - ENV_SPAN_DB * settings["sustain"]
    print(
        f"sustain level {top:.1f} dB at velocity 127, {span:.1f} dB less at 0: "
        f'loudness = [{{ from = "env", range = [{low:.1f}, {low + ENV_SPAN_DB:.1f}] }}, '
        f'{{ from = "keys.velocity", range = [{-span:.1f}, 0.0] }}]'
    )
    depth, rate = fit_vibrato(audio, notes)
    print(
        f"the recordings' vibrato: {depth:.1f} cents at {rate:.1f} Hz: "
        f"wheel.initial = {depth / 50.0:.2f} (of 50 cents), pitch.vibrato_hz = {rate:.1f}"
    )
    if args.envelope_only:
        return
    data = analyse(audio, notes, inst.track_pitch, inst.energy)
    if inst.vibrato_response:
        data = vibrato_response_targets(data)
    elif inst.note_mean:
        data = note_mean_targets(data)
    else:
        data = smooth_targets(data, args.smooth or inst.smooth_frames)
    print(f"{data['f0'].size} frames; loudness {data['loudness'].min():.1f} .. {data['loudness'].max():.1f} dB")
    if args.reference:
        save_reference(audio, notes, args.reference)
    model = train(data, args.steps or inst.steps, cents_input=inst.vibrato_response)
    export(model, out)
    print(f"total {time.perf_counter() - t0:.0f} s (render, analysis, training, export)")


if __name__ == "__main__":
    main()
