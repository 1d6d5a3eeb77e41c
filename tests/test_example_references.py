"""The shipped examples against exact references, not loudness: the arpeggio's onsets and pitches
from the file's own ticks and tempo map, and the neural drive patch against onnxruntime run by hand."""

from __future__ import annotations

import tomllib
from pathlib import Path

import mido
import numpy as np
import onnxruntime as ort
from analysis import raw_engine, raw_render

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent
ARPEGGIO = ROOT / "examples" / "midi" / "arpeggio.mid"
SR = 48000


def messages_by_hand(path: Path, sample_rate: int) -> list[tuple[int, mido.Message]]:
    """(frame, message) of every channel message, from ticks and the tempo map computed here (not
    by mido's seconds, which the renderer uses): the independent reference for onsets. Messages
    on the same tick keep the file's track order, as a merged type-1 file plays them."""
    song = mido.MidiFile(str(path))
    events = []  # (tick, track, index, message)
    for t, track in enumerate(song.tracks):
        tick = 0
        for i, msg in enumerate(track):
            tick += msg.time
            events.append((tick, t, i, msg))
    events.sort(key=lambda e: e[:3])
    tempo, last_tick, seconds, found = 500000, 0, 0.0, []
    for tick, _, _, msg in events:
        seconds += (tick - last_tick) * tempo / 1e6 / song.ticks_per_beat
        last_tick = tick
        if msg.type == "set_tempo":
            tempo = msg.tempo
        elif not msg.is_meta:
            found.append((int(round(seconds * sample_rate)), msg))
    return found


def poly_saw(**changes) -> ng.Patch:
    data = tomllib.loads((ROOT / "graphs" / "poly_saw.toml").read_text(encoding="utf-8"))
    data["nodes"].update(changes)
    return ng.load_patch(data)


def test_arpeggio_notes_start_on_their_exact_frame_at_their_pitch():
    """Every note of examples/midi/arpeggio.mid (two channels, a tempo change at bar 2) opens a
    voice of graphs/poly_saw.toml on the frame its ticks give, at its equal-tempered frequency."""
    expected = [
        (f, m.channel, m.note) for f, m in messages_by_hand(ARPEGGIO, SR) if m.type == "note_on" and m.velocity > 0
    ]
    assert len(expected) == 18 and {c for _, c, _ in expected} == {0, 1}
    seconds = mido.MidiFile(str(ARPEGGIO)).length + 0.1
    count = 8
    gate = raw_render(
        raw_engine(poly_saw(out={"type": "io.output", "channels": count, "in": "keys.gate"}), SR, 128),
        seconds,
        midi=ARPEGGIO,
    )
    freq = raw_render(
        raw_engine(poly_saw(out={"type": "io.output", "channels": count, "in": "keys.freq"}), SR, 128),
        seconds,
        midi=ARPEGGIO,
    )
    lanes, frames = np.nonzero((gate[:, 1:] > 0) & (gate[:, :-1] <= 0))
    rises = sorted(zip((frames + 1).tolist(), lanes.tolist()))
    rises += [(0, int(lane)) for lane in np.flatnonzero(gate[:, 0] > 0)]  # notes on the very first frame
    rises.sort()
    heard = sorted((frame, round(float(freq[lane, frame]), 2)) for frame, lane in rises)
    wanted = sorted((frame, round(440.0 * 2 ** ((note - 69) / 12), 2)) for frame, _, note in expected)
    assert heard == wanted  # every onset on its frame at its pitch; none extra, none late


def test_arpeggio_audio_equals_the_notes_sent_on_their_frames_by_hand():
    """The rendered file is bit-identical to the same notes sent by hand on the reference frames."""
    song = mido.MidiFile(str(ARPEGGIO))
    seconds = song.length + 0.5
    from_file = raw_render(raw_engine(poly_saw(), SR, 128), seconds, midi=ARPEGGIO, min_peak=0.1)
    engine = raw_engine(poly_saw(), SR, 128)
    frames = [(frame, msg.bytes()) for frame, msg in messages_by_hand(ARPEGGIO, SR)]
    total = int(round(seconds * SR))
    by_hand = np.zeros_like(from_file)
    k = 0
    for start in range(0, total, 128):
        while k < len(frames) and frames[k][0] < start + 128:
            frame, data = frames[k]
            engine.send_midi(data[0], *(list(data[1:]) + [0, 0])[:2], frame=frame - start)
            k += 1
        n = min(128, total - start)
        by_hand[:, start : start + n] = engine.process()[:, :n]
    np.testing.assert_array_equal(from_file, by_hand)


def test_neural_drive_patch_equals_onnxruntime_run_by_hand(monkeypatch):
    """graphs/neural_drive.toml's output is the model run directly by onnxruntime on the patch's
    own drive signal (read from the `level` node), state carried block to block, times 0.5."""
    monkeypatch.chdir(ROOT / "graphs")  # a patch given as data reads its model relative to here
    data = tomllib.loads((ROOT / "graphs" / "neural_drive.toml").read_text(encoding="utf-8"))
    block, seconds = 128, 0.5
    out = raw_render(raw_engine(ng.load_patch(data), SR, block), seconds, min_peak=0.05)
    data["nodes"]["out"]["in"] = "level"
    drive = raw_render(raw_engine(ng.load_patch(data), SR, block), seconds)[0]
    session = ort.InferenceSession(str(ROOT / "graphs" / "models" / "amp_gru.onnx"), providers=["CPUExecutionProvider"])
    state = np.zeros((1, 16), np.float32)
    reference = np.zeros_like(drive)
    for start in range(0, drive.size, block):
        y, state = session.run(["y", "state_out"], {"x": drive[None, start : start + block], "state_in": state})
        reference[start : start + block] = y[0]
    assert np.array_equal(out[0], out[1])
    np.testing.assert_allclose(out[0], 0.5 * reference, rtol=0, atol=2e-6)
