"""midi.voices, midi.cc, midi.pitchbend, voices.sum, and rendering real MIDI files written with mido."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
from analysis import peak_frequency
from helpers import patch_toml

import neuralgraph as ng
from neuralgraph._tools.cli import main as cli_main
from neuralgraph.testing import assert_no_allocations

SR = 48000
TPB = 480  # at 120 BPM one tick is 1/960 s = 50 frames at 48 kHz


def write_song(
    path: Path, tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]], *, kind: int = 1, bpm: float = 120.0
) -> Path:
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
    return load(
        {
            "keys": {"type": "midi.voices", "count": count, **keys},
            "out": {"type": "io.output", "channels": count, "in": f"keys.{port}"},
        }
    )


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
    events = [
        (0, on(60)),
        (10, on(62)),
        (20, off(60)),  # voice 0 released, voice 1 playing
        (30, on(64)),  # a free voice (2) wins over the released one
        (40, on(65)),  # no free voice: the oldest released (0)
        (50, on(67)),  # none released: the oldest playing (1, note 62)
        (60, off(64)),
        (61, off(65)),  # 2 released before 0
        (70, on(69)),
    ]  # oldest released: voice 2
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
    events = [
        (0, cc(64, 127)),
        (5, on(60)),
        (10, off(60)),
        (12, on(64)),
        (14, off(64)),
        (20, cc(64, 0)),
        (30, on(67)),
        (34, off(67)),
    ]
    song = write_song(tmp_path / "s.mid", [events])
    gate = render(load, song, "gate", 3, 0.05)
    assert rises(gate[0]) == [250] and falls(gate[0]) == [1000]  # held past its note-off at 500
    assert rises(gate[1]) == [600] and falls(gate[1]) == [1000]
    assert rises(gate[2]) == [1500] and falls(gate[2]) == [1700]  # pedal up: note-off acts at once


def test_pitch_bend_aftertouch_and_channel_filter(load, tmp_path):
    bend_up = mido.Message("pitchwheel", pitch=8191, channel=0)
    events = [(0, on(69)), (0, on(57, ch=1)), (10, bend_up), (12, mido.Message("aftertouch", value=64, channel=0))]
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
    patch = load(
        {
            "ctl": {"type": "midi.cc", "controller": 74, "lo": 100.0, "hi": 1000.0, "curve": "exp", "smooth_ms": 0.0},
            "out": {"type": "io.output", "channels": 1, "in": "ctl"},
        }
    )
    out = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.05, midi=song)[0]
    assert out[499] == pytest.approx(100.0) and out[500] == pytest.approx(1000.0, rel=1e-5)
    assert out[1000] == pytest.approx(100.0) and out[2000] == pytest.approx(100.0)  # CC 1 ignored


def test_midi_cc_exp_curve_needs_positive_ends(load):
    with pytest.raises(ng.PatchError, match="lo and hi > 0"):
        ng.Engine(
            load(
                {
                    "ctl": {"type": "midi.cc", "lo": 0.0, "hi": 1.0, "curve": "exp"},
                    "out": {"type": "io.output", "channels": 1, "in": "ctl"},
                }
            )
        )


def test_pitchbend_ratio_and_smoothing(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(10, mido.Message("pitchwheel", pitch=-8192))]])
    patch = load(
        {
            "pb": {"type": "midi.pitchbend", "bend_range": 12.0, "smooth_ms": 1.0},
            "out": {"type": "io.output", "channels": 2, "in": ["pb.ratio"]},
        }
    )
    ratio = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.05, midi=song)[0]
    assert ratio[499] == pytest.approx(1.0)
    assert 0.5 < ratio[520] < 0.99  # gliding, not a step
    assert ratio[2000] == pytest.approx(0.5, rel=1e-4)


def test_voices_sum_collapses_lanes(load, tmp_path):
    song = write_song(tmp_path / "s.mid", [[(0, on(60)), (0, on(64)), (0, on(67))]])
    patch = load(
        {
            "keys": {"type": "midi.voices", "count": 4},
            "sum": {"type": "voices.sum", "in": "keys.gate"},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )
    out = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.01, midi=song)
    assert out.shape == (1, 480) and np.all(out[0] == 3.0)


@pytest.mark.parametrize("fuse", [True, False])
def test_fixed_voices_are_read_where_they_are_held(load, fuse):
    """voices.fixed's lanes are its own array, read in place by the plan (no copy a block), and
    each lane sounds at its value: 220, 330 and 440 Hz sines summed."""
    patch = load(
        {
            "keys": {"type": "voices.fixed", "count": 3, "start": 220.0, "step": 110.0},
            "osc": {"type": "osc.sine", "freq": "keys"},
            "sum": {"type": "voices.sum", "in": "osc"},
            "out": {"type": "io.output", "channels": 1, "in": "sum"},
        }
    )
    engine = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf, fuse=fuse)
    keys = engine.plan.nodes["keys"]
    out = engine.render(1.0)[0]
    records = [m for r in engine.plan.records for m in (r.members or (r,))]
    assert next(r for r in records if r.name == "keys").outs.out is keys.values
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    peaks = sorted(np.argsort(spectrum)[-3:])  # 1 Hz bins
    assert peaks == [220, 330, 440]
    np.testing.assert_array_equal(keys.values[:, 0], [220.0, 330.0, 440.0])


def test_voices_process_does_not_allocate(load):
    engine = ng.Engine(voices_patch(load, "freq", 8), sample_rate=SR, block_size=4096)

    def block() -> None:
        for n in range(8):
            engine.plan.midi.push(n * 100, 0x90, 60 + n, 100)
            engine.plan.midi.push(n * 100 + 50, 0x80, 60 + n, 0)
        engine.plan.run_block()

    assert_no_allocations(block)


SINE_PATCH = patch_toml(
    """[nodes.keys]
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
)


def test_render_cli_plays_a_type1_file_with_tempo_change_on_several_channels(tmp_path):
    patch = tmp_path / "keys.toml"
    patch.write_text(SINE_PATCH, encoding="utf-8")
    tempo90 = mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90))
    # 120 BPM for 960 ticks (1 s), then 90 BPM: one tick = 1/720 s
    song = write_song(
        tmp_path / "song.mid",
        [
            [(960, tempo90)],
            [(480, on(69, ch=0)), (720, off(69, ch=0))],  # 0.5 s .. 0.75 s
            [(1200, on(76, ch=1)), (1440, off(76, ch=1))],  # 1 + 240/720 s .. 1 + 480/720 s
        ],
    )
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


def test_same_key_notes_each_get_a_voice_and_note_offs_end_the_oldest(load, tmp_path):
    # two parts (tracks, one channel) play key 60: the second starts while the first still
    # sounds; the first note-off must end the first note (velocity 100), not the second (velocity 50)
    song = write_song(
        tmp_path / "s.mid", [[(0, on(60, vel=100)), (20, off(60))], [(10, on(60, vel=50)), (30, off(60))]]
    )
    gate = render(load, song, "gate", 2, 0.05)
    vel = render(load, song, "velocity", 2, 0.05)
    assert rises(gate[0]) == [0] and falls(gate[0]) == [1000]
    assert rises(gate[1]) == [500] and falls(gate[1]) == [1500]
    assert vel[0, 100] == pytest.approx(100 / 127) and vel[1, 600] == pytest.approx(50 / 127)
    # a unison: two note-ons of one key on one tick sound as two voices
    song = write_song(tmp_path / "u.mid", [[(0, on(64)), (10, off(64))], [(0, on(64)), (20, off(64))]])
    gate = render(load, song, "gate", 3, 0.05)
    assert gate[:, 100].tolist() == [1.0, 1.0, 0.0]
    assert falls(gate[0]) == [500] and falls(gate[1]) == [1000]


def test_a_stolen_notes_own_note_off_is_absorbed(load, tmp_path):
    # two voices: 60 (A), 62 (B), then 60 again (C) steals A, the oldest; A's note-off at tick 30
    # must not end C, which lasts until its own note-off at tick 40
    song = write_song(
        tmp_path / "s.mid", [[(0, on(60)), (10, on(62)), (20, on(60)), (30, off(60)), (35, off(62)), (40, off(60))]]
    )
    gate = render(load, song, "gate", 2, 0.05)
    assert rises(gate[0]) == [0, 1001] and falls(gate[0]) == [1000, 2000]  # C from tick 20 to 40
    assert rises(gate[1]) == [500] and falls(gate[1]) == [1750]


def test_pedal_held_voices_are_stolen_same_key_first_then_longest_lifted(load, tmp_path):
    # three voices, pedal down; keys 60, 62, 64 pressed and lifted in the order 64, 62, 60: all
    # three ring on the pedal. A new 60 takes the voice of the pedalled 60 (re-striking its key,
    # not the longest lifted, 64); then a 65 takes the voice whose key went up longest ago (64),
    # not the one with the oldest note-on (62)
    song = write_song(
        tmp_path / "s.mid",
        [
            [
                (0, cc(64, 127)),
                (1, on(60)),
                (2, on(62)),
                (3, on(64)),
                (4, off(64)),
                (5, off(62)),
                (6, off(60)),
                (10, on(60)),
                (20, on(65)),
            ]
        ],
    )
    notes = render(load, song, "note", 3, 0.05, tail_ms=10000.0)
    gate = render(load, song, "gate", 3, 0.05, tail_ms=10000.0)
    assert notes[:, 8 * 50].tolist() == [60, 62, 64]
    assert notes[:, 12 * 50].tolist() == [60, 62, 64] and falls(gate[0]) == [500]  # re-struck: one frame of 0
    assert notes[:, 22 * 50].tolist() == [60, 62, 65] and falls(gate[2]) == [1000] and not falls(gate[1])


def test_all_notes_off_lifts_keys_but_the_pedal_still_holds(load, tmp_path):
    # CC 123 on channel 1 at tick 10: its held notes end there; channel 2's note plays on.
    # With the pedal down (second file) they ring on until the pedal comes up at tick 30.
    notes = [(0, on(60)), (0, on(64)), (0, on(67, ch=1)), (10, cc(123, 0)), (40, off(67, ch=1))]
    song = write_song(tmp_path / "a.mid", [notes])
    gate = render(load, song, "gate", 3, 0.05)
    assert [falls(g) for g in gate] == [[500], [500], [2000]]
    song = write_song(tmp_path / "b.mid", [[(0, cc(64, 127))] + notes + [(30, cc(64, 0))]])
    gate = render(load, song, "gate", 3, 0.05)
    assert [falls(g) for g in gate] == [[1500], [1500], [2000]]


def test_all_sound_off_ends_every_voice_at_once_and_frees_it(load, tmp_path):
    # CC 120 at tick 10 ends held and pedal-held notes of its channel: gates fall on its frame
    # and the voices are free at once (no tail_ms wait): the lanes are flagged idle
    song = write_song(
        tmp_path / "s.mid", [[(0, cc(64, 127)), (0, on(60)), (2, on(64)), (5, off(64)), (10, cc(120, 0))]]
    )
    engine = ng.Engine(voices_patch(load, "gate", 3, tail_ms=10000.0), sample_rate=SR, block_size=64, ceiling=np.inf)
    gate = engine.render(0.05, midi=song)
    assert falls(gate[0]) == [500] and falls(gate[1]) == [500] and not gate[2].any()
    assert engine.plan.nodes["keys"].lane_activity().tolist() == [0, 0, 0]
    assert engine.plan.nodes["keys"].active_voices == 0
    # without CC 120 (only CC 123, pedal up first) the same voices stay active in their 10 s tail
    song = write_song(tmp_path / "t.mid", [[(0, on(60)), (2, on(64)), (10, cc(123, 0))]])
    engine = ng.Engine(voices_patch(load, "gate", 3, tail_ms=10000.0), sample_rate=SR, block_size=64, ceiling=np.inf)
    engine.render(0.05, midi=song)
    assert engine.plan.nodes["keys"].active_voices == 2


def test_reset_controllers_centres_bend_lifts_the_pedal_and_zeroes_pressure(load, tmp_path):
    bend = mido.Message("pitchwheel", pitch=8191, channel=0)
    events = [
        (0, cc(64, 127)),
        (0, on(69)),
        (2, bend),
        (3, mido.Message("aftertouch", value=100, channel=0)),
        (5, off(69)),
        (10, cc(121, 0)),
    ]
    song = write_song(tmp_path / "s.mid", [events])
    freq = render(load, song, "freq", 1, 0.05, bend_range=12.0)
    touch = render(load, song, "aftertouch", 1, 0.05)
    gate = render(load, song, "gate", 1, 0.05)
    assert freq[0, 499] == pytest.approx(440.0 * 2 ** (8191 / 8192), rel=1e-6)
    assert freq[0, 500] == pytest.approx(440.0)
    assert touch[0, 499] == pytest.approx(100 / 127, abs=1e-6) and touch[0, 500] == 0.0
    assert falls(gate[0]) == [500]  # pedal up: the key lifted at tick 5 now ends


def test_type_2_files_are_refused_with_a_clear_message(load, tmp_path, capsys):
    song = mido.MidiFile(type=2, ticks_per_beat=TPB)
    for key in (60, 64):
        song.tracks.append(mido.MidiTrack([on(key), off(key).copy(time=480)]))
    path = tmp_path / "two.mid"
    song.save(str(path))
    engine = ng.Engine(voices_patch(load, "gate", 2), sample_rate=SR, block_size=64)
    with pytest.raises(
        ng.NeuralgraphError,
        match=r"two\.mid: type 2 MIDI files \(independent sequences\) are not "
        r"supported",
    ):
        engine.render(0.1, midi=path)
    patch = tmp_path / "keys.toml"
    patch.write_text(SINE_PATCH, encoding="utf-8")
    code = cli_main(["render", str(patch), "--midi", str(path), "-o", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err
    assert code != 0 and "two.mid: type 2 MIDI files" in err and "Traceback" not in err
    assert not (tmp_path / "o.wav").exists()


def test_a_note_off_after_a_burst_of_controllers_in_one_tick_still_arrives(load, tmp_path):
    # 1100 controller messages and then a note-off on one tick: more than a block's 1024 events.
    # The note-off used to be dropped and the note stuck; now the overflow waits for the next block.
    # Continuous controllers beyond three quarters of the block's room are merged (only the
    # newest value counts), so the note-off still lands on its own frame.
    burst = [(10, cc(1, k % 128)) for k in range(1100)]
    song = write_song(tmp_path / "s.mid", [[(0, on(60))] + burst + [(10, off(60))]])
    gate = render(load, song, "gate", 1, 0.05, block=64)
    assert rises(gate[0]) == [0] and falls(gate[0]) == [500]
    # 1100 different messages that cannot merge (pedal presses): the note-off waits a block
    burst = [(10, cc(64, 127 * ((k + 1) % 2))) for k in range(1100)]  # ends with the pedal up
    song = write_song(tmp_path / "p.mid", [[(0, on(60))] + burst + [(10, off(60))]])
    gate = render(load, song, "gate", 1, 0.05, block=64)
    assert rises(gate[0]) == [0] and len(falls(gate[0])) == 1 and 500 < falls(gate[0])[0] <= 500 + 64


def test_a_merged_controller_burst_keeps_the_last_value(load, tmp_path):
    burst = [(10, cc(74, k % 128)) for k in range(1100)] + [(10, cc(74, 100))]
    song = write_song(tmp_path / "s.mid", [burst])
    patch = load(
        {
            "ctl": {"type": "midi.cc", "controller": 74, "smooth_ms": 0.0},
            "out": {"type": "io.output", "channels": 1, "in": "ctl"},
        }
    )
    out = ng.Engine(patch, sample_rate=SR, block_size=64, ceiling=np.inf).render(0.05, midi=song)[0]
    assert out[-1] == pytest.approx(100 / 127, abs=1e-6)


def test_the_engine_api_never_drops_a_note_off_and_reports_what_it_refuses(load):
    import threading

    engine = ng.Engine(voices_patch(load, "gate", 8), sample_rate=SR, block_size=64)

    def player(channel: int) -> None:  # 2 x 15 000 notes while no block runs: far past the 4096-slot ring
        for k in range(15000):
            assert engine.note_on(60 + k % 8, 100, channel)
            assert engine.note_off(60 + k % 8, 0, channel)

    threads = [threading.Thread(target=player, args=(ch,)) for ch in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.midi_waiting == 60000 and engine.midi_dropped == 0
    while engine.midi_waiting:
        engine.process()
    assert engine.plan.nodes["keys"].active_voices <= 8
    engine.process()
    assert not engine.process().any()  # every note-off arrived: no gate is left on
    # controllers beyond 65 536 waiting are refused, reported by the return value and the counter
    results = [engine.control_change(1, k % 128) for k in range(80000)]
    assert results.count(False) == engine.midi_dropped == 80000 - 65536 - 4096
    assert engine.note_off(60) is True  # a note-off is still taken
