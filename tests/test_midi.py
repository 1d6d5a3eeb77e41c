"""midi.voices, midi.cc, midi.pitchbend, voices.sum, and rendering real MIDI files written with mido."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from analysis import peak_frequency

import neuralgraph as ng
from neuralgraph._tools.cli import main as cli_main
from neuralgraph.testing import assert_no_allocations

SR = 48000
TPB = 480  # at 120 BPM one tick is 1/960 s = 50 frames at 48 kHz


def write_song(path: Path, tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]], *, kind: int = 1,
               bpm: float = 120.0) -> Path:
    """A standard MIDI file from tracks of (absolute tick, message); tempo first in track 0."""
    song = mido.MidiFile(type=kind, ticks_per_beat=TPB)
    for n, events in enumerate(tracks):
        track = mido.MidiTrack()
        if n == 0:
            track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
        last = 0
        for tick, msg in sorted(events, key=lambda e: e[0]):
            track.append(msg.copy(time=tick - last))
            last = tick
        song.tracks.append(track)
    song.save(str(path))
    return path


def on(note: int, ch: int = 0, vel: int = 100) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=vel, channel=ch)


def off(note: int, ch: int = 0) -> mido.Message:
    return mido.Message("note_off", note=note, velocity=0, channel=ch)


def cc(control: int, value: int, ch: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=ch)


def voices_patch(load, port: str, count: int, **keys) -> ng.Patch:
    """midi.voices' ``port`` lanes straight to an output with one channel per voice."""
    return load({"keys": {"type": "midi.voices", "count": count, **keys},
                 "out": {"type": "io.output", "channels": count, "in": f"keys.{port}"}})


def render(load, song: Path, port: str, count: int, seconds: float, block: int = 64, **keys) -> np.ndarray:
    # no ceiling: these outputs are values (Hz, note numbers), not audio
    engine = ng.Engine(voices_patch(load, port, count, **keys), sample_rate=SR, block_size=block, ceiling=np.inf)
    return engine.render(seconds, midi=song)


def rises(lane: np.ndarray) -> list[int]:
    """Frames where a gate goes from off to on."""
    on_ = lane > 0.5
    return ([0] if on_[0] else []) + [int(i) + 1 for i in np.flatnonzero(~on_[:-1] & on_[1:])]


def falls(lane: np.ndarray) -> list[int]:
    on_ = lane > 0.5
    return [int(i) + 1 for i in np.flatnonzero(on_[:-1] & ~on_[1:])]


def test_gates_change_at_the_exact_event_frame(load, tmp_path):
    # ticks 3, 77, 101 -> frames 150, 3850, 5050: none on a 64-frame block boundary
    song = write_song(tmp_path / "s.mid", [[(3, on(60)), (77, on(64)), (101, off(60)), (130, off(64))]], kind=0)
    gate = render(load, song, "gate", 2, 0.2)
    assert rises(gate[0]) == [150] and falls(gate[0]) == [5050]
    assert rises(gate[1]) == [3850] and falls(gate[1]) == [6500]
    freq = render(load, song, "freq", 2, 0.2)
    assert freq[0, 200] == pytest.approx(261.6256, abs=1e-3)
    assert freq[1, 4000] == pytest.approx(329.6276, abs=1e-3)
    vel = render(load, song, "velocity", 2, 0.2)
    assert vel[0, 149] == 0.0 and vel[0, 150] == pytest.approx(100 / 127, abs=1e-6)


def test_voice_stealing_order(load, tmp_path):
    # 3 voices, long tail so released voices stay "released" (not free)
    events = [(0, on(60)), (10, on(62)), (20, off(60)),  # voice 0 released, voice 1 playing
              (30, on(64)),  # a free voice (2) wins over the released one
              (40, on(65)),  # no free voice: the oldest released (0)
              (50, on(67)),  # none released: the oldest playing (1, note 62)
              (60, off(64)), (61, off(65)),  # 2 released before 0
              (70, on(69))]  # oldest released: voice 2
    song = write_song(tmp_path / "s.mid", [events])
    notes = render(load, song, "note", 3, 0.1, tail_ms=10000.0)
    at = lambda tick: notes[:, tick * 50 + 10].tolist()  # noqa: E731
    assert at(0)[0] == 60 and at(10)[1] == 62
    assert at(30) == [60, 62, 64]
    assert at(40) == [65, 62, 64]
    assert at(50) == [65, 67, 64]
    assert at(70) == [65, 67, 69]


def test_a_voice_is_free_again_after_its_tail(load, tmp_path):
    # tail 10 ms = 480 frames; voice 0 released at tick 20 (frame 1000) is free by tick 40
    events = [(0, on(60)), (10, on(62)), (20, off(60)), (21, off(62)), (40, on(64)), (41, on(65))]
    song = write_song(tmp_path / "s.mid", [events])
    notes = render(load, song, "note", 2, 0.1, tail_ms=10.0)
    # both voices free: the one released longest ago (0) first, then 1
    assert notes[:, 42 * 50].tolist() == [64, 65]


def test_stolen_voice_gate_drops_for_one_frame(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(0, on(60)), (10, on(62)), (30, off(62))]])
    gate = render(load, song, "gate", 1, 0.05)
    assert rises(gate[0]) == [0, 501] and falls(gate[0]) == [500, 1500]


def test_mono_last_note_priority_with_retrigger(load, tmp_path):
    events = [(0, on(60)), (10, on(64)), (20, off(64)), (30, off(60))]
    song = write_song(tmp_path / "s.mid", [events])
    notes = render(load, song, "note", 2, 0.05, mode="mono")
    gate = render(load, song, "gate", 2, 0.05, mode="mono")
    assert notes[0, 499] == 60 and notes[0, 500] == 64 and notes[0, 1000] == 60  # back to the held key
    assert falls(gate[0]) == [500, 1000, 1500] and rises(gate[0]) == [0, 501, 1001]
    assert not gate[1].any()  # mono uses lane 0 only


def test_legato_changes_pitch_without_retriggering(load, tmp_path):
    events = [(0, on(60)), (10, on(64)), (20, off(64)), (30, off(60)), (40, on(67)), (45, off(67))]
    song = write_song(tmp_path / "s.mid", [events])
    notes = render(load, song, "note", 1, 0.05, mode="legato")
    gate = render(load, song, "gate", 1, 0.05, mode="legato")
    assert notes[0, 500] == 64 and notes[0, 1000] == 60 and notes[0, 2000] == 67
    assert rises(gate[0]) == [0, 2000] and falls(gate[0]) == [1500, 2250]


def test_sustain_pedal_holds_gates_until_released(load, tmp_path):
    events = [(0, cc(64, 127)), (5, on(60)), (10, off(60)), (12, on(64)), (14, off(64)),
              (20, cc(64, 0)), (30, on(67)), (34, off(67))]
    song = write_song(tmp_path / "s.mid", [events])
    gate = render(load, song, "gate", 3, 0.05)
    assert rises(gate[0]) == [250] and falls(gate[0]) == [1000]  # held past its note-off at 500
    assert rises(gate[1]) == [600] and falls(gate[1]) == [1000]
    assert rises(gate[2]) == [1500] and falls(gate[2]) == [1700]  # pedal up: note-off acts at once


def test_pitch_bend_aftertouch_and_channel_filter(load, tmp_path):
    bend_up = mido.Message("pitchwheel", pitch=8191, channel=0)
    events = [(0, on(69)), (0, on(57, ch=1)), (10, bend_up),
              (12, mido.Message("aftertouch", value=64, channel=0))]
    song = write_song(tmp_path / "s.mid", [events])
    freq = render(load, song, "freq", 2, 0.05, bend_range=12.0)
    assert freq[0, 499] == pytest.approx(440.0) and freq[1, 499] == pytest.approx(220.0)
    assert freq[0, 500] == pytest.approx(440.0 * 2 ** (8191 / 8192), rel=1e-6)
    assert freq[1, 500] == pytest.approx(220.0)  # bend is per channel
    touch = render(load, song, "aftertouch", 2, 0.05)
    assert touch[0, 599] == 0.0 and touch[0, 600] == pytest.approx(64 / 127, abs=1e-6) and touch[1, 700] == 0.0
    only2 = render(load, song, "note", 2, 0.05, channel=2)
    assert only2[:, 100].tolist() == [57, 69]  # channel 2's note only; lane 1 never played


def test_midi_cc_maps_controller_exponentially_at_its_frame(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(10, cc(74, 127)), (20, cc(74, 0)), (30, cc(1, 127))]])
    patch = load({"ctl": {"type": "midi.cc", "controller": 74, "lo": 100.0, "hi": 1000.0, "curve": "exp",
                          "smooth_ms": 0.0},
                  "out": {"type": "io.output", "channels": 1, "in": "ctl"}})
    out = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.05, midi=song)[0]
    assert out[499] == pytest.approx(100.0) and out[500] == pytest.approx(1000.0, rel=1e-5)
    assert out[1000] == pytest.approx(100.0) and out[2000] == pytest.approx(100.0)  # CC 1 ignored


def test_midi_cc_exp_curve_needs_positive_ends(load):
    with pytest.raises(ng.PatchError, match="lo and hi > 0"):
        ng.Engine(load({"ctl": {"type": "midi.cc", "lo": 0.0, "hi": 1.0, "curve": "exp"},
                        "out": {"type": "io.output", "channels": 1, "in": "ctl"}}))


def test_pitchbend_ratio_and_smoothing(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(10, mido.Message("pitchwheel", pitch=-8192))]])
    patch = load({"pb": {"type": "midi.pitchbend", "bend_range": 12.0, "smooth_ms": 1.0},
                  "out": {"type": "io.output", "channels": 2, "in": ["pb.ratio"]}})
    ratio = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.05, midi=song)[0]
    assert ratio[499] == pytest.approx(1.0)
    assert 0.5 < ratio[520] < 0.99  # gliding, not a step
    assert ratio[2000] == pytest.approx(0.5, rel=1e-4)


def test_voices_sum_collapses_lanes(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(0, on(60)), (0, on(64)), (0, on(67))]])
    patch = load({"keys": {"type": "midi.voices", "count": 4},
                  "sum": {"type": "voices.sum", "in": "keys.gate"},
                  "out": {"type": "io.output", "channels": 1, "in": "sum"}})
    out = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.01, midi=song)
    assert out.shape == (1, 480) and np.all(out[0] == 3.0)


def test_voices_process_does_not_allocate(load):
    engine = ng.Engine(voices_patch(load, "freq", 8), sample_rate=SR, block_size=4096)

    def block() -> None:
        for n in range(8):
            engine.plan.midi.push(n * 100, 0x90, 60 + n, 100)
            engine.plan.midi.push(n * 100 + 50, 0x80, 60 + n, 0)
        engine.plan.run_block()

    assert_no_allocations(block)


SINE_PATCH = """
schema = 1
[engine]
sample_rate = 48000
block_size = 128
[nodes.keys]
type = "midi.voices"
count = 4
tail_ms = 0.0
[nodes.osc]
type = "osc.sine"
freq = "keys.freq"
[nodes.lift]
type = "math.add"   # 1..3: each onset is a step, whatever the oscillator's phase
a = "osc"
b = 2.0
[nodes.vca]
type = "math.mul"
in = "lift"
gain = "keys.gate"
[nodes.sum]
type = "voices.sum"
in = "vca"
[nodes.level]
type = "math.mul"
in = "sum"
gain = 0.25
[nodes.out]
type = "io.output"
channels = 1
in = "level"
"""


def test_render_cli_plays_a_type1_file_with_tempo_change_on_several_channels(tmp_path):
    patch = tmp_path / "keys.toml"
    patch.write_text(SINE_PATCH, encoding="utf-8")
    tempo90 = mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90))
    # 120 BPM for 960 ticks (1 s), then 90 BPM: one tick = 1/720 s
    song = write_song(tmp_path / "song.mid", [
        [(960, tempo90)],
        [(480, on(69, ch=0)), (720, off(69, ch=0))],  # 0.5 s .. 0.75 s
        [(1200, on(76, ch=1)), (1440, off(76, ch=1))],  # 1 + 240/720 s .. 1 + 480/720 s
    ])
    out = tmp_path / "out.wav"
    assert cli_main(["render", str(patch), "--midi", str(song), "-o", str(out), "--tail", "0.5"]) == 0
    audio, rate = sf.read(str(out), dtype="float32")
    assert rate == SR
    assert len(audio) == round((5 / 3 + 0.5) * SR)  # the song (1.667 s) plus the tail
    loud = np.abs(audio) > 0.1
    edges = np.flatnonzero(loud[1:] != loud[:-1]) + 1
    assert edges.tolist() == [24000, 36000, 64000, 80000]
    assert peak_frequency(audio[25000:35000], SR) == pytest.approx(440.0, abs=0.5)
    assert peak_frequency(audio[65000:79000], SR) == pytest.approx(659.255, abs=0.5)


def test_render_onsets_stay_exact_at_any_block_size(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(7, on(60)), (13, off(60)), (29, on(72)), (31, off(72))]], kind=0)
    for block in (1, 65, 1024):
        gate = render(load, song, "gate", 1, 0.05, block=block)
        assert rises(gate[0]) == [350, 1450] and falls(gate[0]) == [650, 1550]


def test_example_arpeggio_renders_through_poly_saw():
    root = Path(__file__).resolve().parent.parent
    song = root / "examples" / "midi" / "arpeggio.mid"
    engine = ng.Engine(ng.load_patch(root / "graphs" / "poly_saw.toml"), block_size=256)
    length = mido.MidiFile(str(song)).length
    audio = engine.render(length + 0.5, midi=song)
    assert np.abs(audio).max() > 0.1 and np.isfinite(audio).all()
    assert np.abs(audio[:, -2400:]).max() < 1e-3  # the release is over after the tail


@pytest.mark.parametrize("node", ["midi.voices", "midi.cc", "midi.pitchbend"])
def test_an_empty_block_applies_events_without_writing(load, node):
    patch = load({"n": {"type": node}, "out": {"type": "io.output", "channels": 1, "in": 0.0}})
    engine = ng.Engine(patch, sample_rate=SR, block_size=16)
    n = engine.plan.nodes["n"]
    from neuralgraph.plugin import EventBuffer, Ports

    events = EventBuffer(4)
    events.push(5, 0x90, 60, 100)
    events.push(0, 0xB0, 1, 127)
    events.push(9, 0xE0, 0, 127)
    outs = {name: np.full((n.count if node == "midi.voices" else 1, 16), 7.0, np.float32) for name in n.outputs()}
    n.process(Ports({"midi": events}), Ports(outs), 0)  # must not write past the 0 frames it was given
    if node == "midi.voices":
        assert all(np.all(a == 7.0) for a in outs.values())
    assert all(np.all(np.isfinite(a)) for a in outs.values())
    n.process(Ports({"midi": EventBuffer(1)}), Ports(outs), 16)
    first = next(iter(outs.values()))
    assert np.all(np.isfinite(first)) and not np.all(first == 7.0)
