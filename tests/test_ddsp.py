"""DDSP synthesis nodes and the neural flute: pitch, spectral envelope vs a real flute recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from analysis import raw_engine, raw_render

import neuralgraph as ng
from neuralgraph_plugins.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "graphs" / "models" / "ddsp_flute.onnx"
PATCH = ROOT / "graphs" / "neural_flute.toml"
REFERENCE = Path(__file__).parent / "data" / "flute_a4.wav"  # FluidR3_GM flute, A4, rendered by fluidsynth


def spectrum(x: np.ndarray, sr: float) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size))) * 2.0 / np.hanning(x.size).sum()
    return np.fft.rfftfreq(x.size, 1.0 / sr), mag


def harmonic_profile(x: np.ndarray, sr: float, f0: float, count: int = 10) -> np.ndarray:
    """Level of harmonics 1..count in dB relative to the strongest (the spectral envelope)."""
    freqs, mag = spectrum(x, sr)
    levels = np.array([mag[np.abs(freqs - k * f0) < 0.1 * f0].max() for k in range(1, count + 1)])
    db = 20.0 * np.log10(levels + 1e-9)
    return db - db.max()


def patch_text(body: str) -> str:
    return 'schema = 1\nname = "t"\n[engine]\nsample_rate = 48000\nblock_size = 128\n' + body


def render(tmp_path: Path, body: str, seconds: float) -> np.ndarray:
    path = tmp_path / "p.toml"
    path.write_text(patch_text(body))
    return raw_render(raw_engine(ng.load_patch(path)), seconds)[0]


def test_harmonic_synth_puts_each_amplitude_on_its_harmonic(tmp_path):
    audio = render(
        tmp_path,
        """
[nodes.h]
type = "synth.harmonic"
count = 4
freq = 1000.0
amp_1 = 0.5
amp_3 = 0.25
[nodes.out]
type = "io.output"
channels = 1
in = "h"
""",
        0.25,
    )
    freqs, mag = spectrum(audio[2400:], 48000)
    at = lambda f: mag[np.abs(freqs - f) < 20].max()
    assert at(1000) == pytest.approx(0.5, rel=0.02)
    assert at(3000) == pytest.approx(0.25, rel=0.02)
    assert at(2000) < 1e-3 and at(4000) < 1e-3


def test_harmonics_above_nyquist_are_silent(tmp_path):
    audio = render(
        tmp_path,
        """
[engine]
[nodes.h]
type = "synth.harmonic"
count = 3
freq = 9000.0
amp_1 = 0.5
amp_3 = 0.5
[nodes.out]
type = "io.output"
channels = 1
in = "h"
""".replace("[engine]\n", ""),
        0.25,
    )
    freqs, mag = spectrum(audio[2400:], 48000)
    assert mag[np.abs(freqs - 9000) < 20].max() == pytest.approx(0.5, rel=0.02)
    # harmonic 3 = 27 kHz is above Nyquist (24 kHz): nothing, not even its alias at 21 kHz
    assert mag[np.abs(freqs - 21000) < 200].max() < 1e-4


def test_filtered_noise_band_level_and_placement(tmp_path):
    audio = render(
        tmp_path,
        """
[nodes.n]
type = "synth.filtered_noise"
bands = 16
top_hz = 16000.0
band_3 = 0.2
[nodes.out]
type = "io.output"
channels = 1
in = "n"
""",
        1.0,
    )
    x = audio[4800:]
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.2, rel=0.1)
    freqs, mag = spectrum(x, 48000)
    power = mag**2
    # band 3 covers 2-3 kHz (a 4th-order Butterworth band-pass)
    assert power[(freqs > 1500) & (freqs < 3500)].sum() / power.sum() > 0.9
    assert power[(freqs > 6000)].sum() / power.sum() < 0.01


def test_banks_read_the_decoders_outputs_in_place_and_sound_as_from_copies():
    """In the flute's plan both banks read the decoder's output array through one strided view
    (no copy per port); driven with the same values as separate arrays (the copying path), they
    give the same samples."""
    from neuralgraph.plugin import Ports

    engine = ng.Engine(ng.load_patch(PATCH))
    decoder, harmonic, noise = (engine.plan.nodes[n] for n in ("decoder", "harmonic", "noise"))
    assert np.shares_memory(harmonic.amp_view, decoder.owned) and np.shares_memory(noise.gain_view, decoder.owned)
    engine.note_on(69, velocity=100)
    engine.note_on(76, velocity=90)
    for _ in range(30):
        engine.process()
    for name, node, view in (("harmonic", harmonic, harmonic.amp_view), ("noise", noise, noise.gain_view)):
        _, ins, outs = engine.plan.steps[engine.plan.step_names.index(name)]
        assert view.max() > 0.0  # the decoder is playing: the comparison is not between silences
        state = node.save_state()
        node.process(ins, outs, outs.out.shape[1])
        in_place = outs.out.copy()
        node.load_state(state)
        copies = Ports({name: np.array(ins[name]) for name in node.inputs()})
        node.process(copies, outs, outs.out.shape[1])
        assert np.abs(in_place).max() > 1e-4
        np.testing.assert_array_equal(outs.out, in_place, err_msg=name)


def test_shipped_model_is_small_and_has_the_expected_signature():
    assert MODEL.stat().st_size < 2_000_000
    node = OnnxModel(model=str(MODEL))
    assert list(node.inputs()) == ["f0", "loudness"]
    assert list(node.outputs()) == [f"harm_{k}" for k in range(1, 33)] + [f"noise_{k}" for k in range(1, 17)]


@pytest.fixture(scope="module")
def flute_notes() -> dict[int, np.ndarray]:
    engine = raw_engine(ng.load_patch(PATCH))
    notes = {}
    for note in (69, 76):
        engine.reset()
        engine.note_on(note, velocity=105)
        notes[note] = raw_render(engine, 0.6)[0]
        engine.note_off(note)
        raw_render(engine, 0.7)  # let the voice's release finish
    return notes


@pytest.mark.parametrize("note", [69, 76])
def test_neural_flute_plays_the_requested_pitch(flute_notes, note):
    audio = flute_notes[note][9600:]
    freqs, mag = spectrum(audio, 48000)
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    peak = freqs[np.argmax(mag)]
    assert abs(peak - f0) < 3.0  # bin width 2.1 Hz
    assert np.sqrt(np.mean(audio**2)) > 0.005  # it actually sounds


def test_neural_flute_envelope_is_closer_to_the_real_flute_than_a_saw(flute_notes):
    real, sr = sf.read(str(REFERENCE), dtype="float64")
    real_profile = harmonic_profile(real, sr, 440.0)
    neural_profile = harmonic_profile(flute_notes[69][9600:], 48000, 440.0)
    t = np.arange(24000) / 48000
    saw = sum(np.sin(2 * np.pi * 440.0 * k * t) / k for k in range(1, 54))  # band-limited saw
    saw_profile = harmonic_profile(saw, 48000, 440.0)
    neural_error = np.sqrt(np.mean((neural_profile - real_profile) ** 2))
    saw_error = np.sqrt(np.mean((saw_profile - real_profile) ** 2))
    # measured: neural 4.3 dB (4.1 before the flute was retrained by the current script, 3.5 before
    # the held-out split), saw 18.4 dB RMS over harmonics 1-10
    assert neural_error < 8.0
    assert neural_error < 0.5 * saw_error


VIOLIN_PATCH = ROOT / "graphs" / "neural_violin.toml"
VIOLIN_MODEL = ROOT / "graphs" / "models" / "ddsp_violin.onnx"


def test_shipped_violin_model_is_small_and_has_the_flute_signature():
    assert VIOLIN_MODEL.stat().st_size < 2_000_000
    flute, violin = OnnxModel(model=str(MODEL)), OnnxModel(model=str(VIOLIN_MODEL))
    assert list(violin.inputs()) == list(flute.inputs())
    assert list(violin.outputs()) == list(flute.outputs())


def test_neural_violin_plays_a_chord_polyphonically():
    """Two held MIDI notes (G4 and D5, a fifth) both sound at their pitches through the violin patch."""
    engine = raw_engine(ng.load_patch(VIOLIN_PATCH))
    engine.note_on(67, velocity=105)
    engine.note_on(74, velocity=105)
    audio = raw_render(engine, 0.8)[0][9600:]
    freqs, mag = spectrum(audio, 48000)
    for note in (67, 74):
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        near = np.abs(freqs - f0) < 0.03 * f0
        assert abs(freqs[near][np.argmax(mag[near])] - f0) < 2.0  # bin width 1.25 Hz
        assert mag[near].max() > 0.005
    assert np.sqrt(np.mean(audio**2)) > 0.01
    engine.note_off(67)
    engine.note_off(74)
    tail = raw_render(engine, 0.9)[0][-4800:]
    assert np.sqrt(np.mean(tail**2)) < 1e-3  # the release ends the voices
