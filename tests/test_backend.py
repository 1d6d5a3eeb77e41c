"""The backend core without a device: the callback adapter, the realtime guard, errors, OSC."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

import numpy as np
import pytest
from analysis import peak_frequency

import neuralgraph as ng
from neuralgraph._io.backend import SWITCH_INTERVAL_S, CallbackAdapter, RealtimeGuard, open_backend
from neuralgraph._tools.cli import main as cli_main
from neuralgraph.testing import assert_no_allocations

SR = 48000


def sine(load, channels: int = 2, freq: float = 1000.0) -> ng.Patch:
    return load(
        {
            "osc": {"type": "osc.sine", "freq": freq},
            "amp": {"type": "math.mul", "in": "osc", "gain": 0.5},
            "out": {"type": "io.output", "channels": channels, "in": "amp"},
        }
    )


def reference(load, channels: int, frames: int, block: int = 64) -> np.ndarray:
    return ng.Engine(sine(load, channels), sample_rate=SR, block_size=block).render(frames / SR)


def test_interleaved_callbacks_play_exactly_what_render_makes(load):
    adapter = CallbackAdapter(ng.Engine(sine(load), sample_rate=SR, block_size=64))
    out = np.empty((64 * 10, 2), np.float32)
    for k in range(10):
        adapter.process_interleaved(out[k * 64 : (k + 1) * 64], 64)
    np.testing.assert_array_equal(out.T, reference(load, 2, 640))
    assert adapter.callbacks == 10 and adapter.faults == 0 and adapter.period == 64


def test_a_callback_of_0_frames_runs_no_block_and_shifts_nothing(load):
    """JACK and PortAudio may ask for 0 frames: no node runs (the plan never calls one with 0
    frames), nothing raises, and the stream continues exactly where it was."""
    adapter = CallbackAdapter(ng.Engine(sine(load), sample_rate=SR, block_size=64))
    out = np.empty((64 * 4, 2), np.float32)
    adapter.process_interleaved(out[:64], 64)
    adapter.process_interleaved(out[64:64], 0)
    adapter.process_planar([np.empty(0, np.float32), np.empty(0, np.float32)], 0)
    for k in range(1, 4):
        adapter.process_interleaved(out[k * 64 : (k + 1) * 64], 64)
    np.testing.assert_array_equal(out.T, reference(load, 2, 256))
    assert adapter.faults == 0 and adapter.engine.frames_done == 256


def test_a_period_of_several_blocks_runs_them_in_order(load):
    adapter = CallbackAdapter(ng.Engine(sine(load, 1), sample_rate=SR, block_size=64))
    outs = [np.empty(256, np.float32), np.empty(256, np.float32)]  # mono patch -> both device channels
    adapter.process_planar(outs, 256)
    ref = reference(load, 1, 256)[0]
    np.testing.assert_array_equal(outs[0], ref)
    np.testing.assert_array_equal(outs[1], ref)


def test_more_engine_channels_than_device_channels_keeps_the_first(load):
    adapter = CallbackAdapter(ng.Engine(sine(load, 3), sample_rate=SR, block_size=64))
    out = np.full((64, 2), 9.0, np.float32)
    adapter.process_interleaved(out, 64)
    np.testing.assert_array_equal(out.T, reference(load, 3, 64)[:2])
    wide = np.full((64, 4), 9.0, np.float32)
    adapter.process_interleaved(wide, 64)
    assert np.all(wide[:, 3] == 0.0) and np.any(wide[:, 0] != 0.0)


def test_midi_from_the_device_lands_on_its_frame_within_each_block(load):
    patch = load(
        {"keys": {"type": "midi.voices", "count": 1}, "out": {"type": "io.output", "channels": 1, "in": "keys.gate"}}
    )
    adapter = CallbackAdapter(ng.Engine(patch, sample_rate=SR, block_size=64))
    outs = [np.empty(256, np.float32)]
    adapter.push_midi(100, 0x90, 60, 100)  # in the second engine block of this period
    adapter.push_midi(201, 0x80, 60, 0)
    adapter.process_planar(outs, 256)
    assert np.flatnonzero(outs[0]).tolist() == list(range(100, 201))
    assert adapter.midi_events == 2 and adapter.active_voices() == 1


def test_a_burst_of_device_midi_keeps_its_note_off(load):
    # 1100 controller messages then a note-off in one period: more than a block's 1024 events;
    # controllers merge (the newest value counts) and the note-off lands on its frame
    patch = load(
        {"keys": {"type": "midi.voices", "count": 1}, "out": {"type": "io.output", "channels": 1, "in": "keys.gate"}}
    )
    adapter = CallbackAdapter(ng.Engine(patch, sample_rate=SR, block_size=256))
    outs = [np.empty(256, np.float32)]
    adapter.push_midi(10, 0x90, 60, 100)
    for k in range(1100):
        adapter.push_midi(100, 0xB0, 1, k % 128)
    adapter.push_midi(200, 0x80, 60, 0)
    adapter.process_planar(outs, 256)
    assert np.flatnonzero(outs[0]).tolist() == list(range(10, 200))
    assert adapter.midi_events == 1102 and adapter.midi_dropped == 0
    # messages that cannot merge, beyond the period's 4096 slots, are counted, and shown
    for k in range(5000):
        adapter.push_midi(0, 0x90, 60 + k % 2, 100)
    assert adapter.midi_dropped == 5000 - 4096
    assert "midi dropped 904" in adapter.status(backend="test", running=True, device="dev").line()


def test_a_fault_in_the_callback_plays_silence_and_is_counted(load):
    adapter = CallbackAdapter(ng.Engine(sine(load), sample_rate=SR, block_size=64))
    bad = np.full((32, 2), 7.0, np.float32)  # the device handed a buffer of the wrong length
    adapter.process_interleaved(bad, 64)
    assert adapter.faults == 1 and isinstance(adapter.last_error, ValueError)
    assert np.all(bad == 0.0)


def test_a_new_period_size_plays_silence_until_the_rebuilt_engine_swaps_in(load):
    engine = ng.Engine(sine(load, 1), sample_rate=SR, block_size=64)
    engine.set("osc.freq", 3000.0)
    adapter = CallbackAdapter(engine)
    outs = [np.full(100, 5.0, np.float32)]
    adapter.process_planar(outs, 100)  # 100 is no multiple of 64
    assert adapter.silent == 1 and np.all(outs[0] == 0.0)
    adapter.request_block_size(100)  # control thread
    assert adapter.pending.block_size == 100
    audio = np.empty(100 * 96, np.float32)
    for k in range(96):
        adapter.process_planar([audio[k * 100 : (k + 1) * 100]], 100)
    assert adapter.engine.block_size == 100 and adapter.pending is None
    assert adapter.retired is engine  # parked for the control thread, not freed in the callback
    adapter.collect()
    assert adapter.retired is None
    assert peak_frequency(audio[2400:], SR) == pytest.approx(3000.0, abs=2.0)  # the setting carried over


def test_engine_rebuilt_keeps_settings(load):
    engine = ng.Engine(sine(load), sample_rate=SR, block_size=64)
    engine.set("amp.gain", 0.25)
    other = engine.rebuilt(sample_rate=44100, block_size=128)
    assert (other.sample_rate, other.block_size) == (44100, 128)
    audio = other.render(0.1)
    assert np.abs(audio[:, 2000:]).max() == pytest.approx(0.25, abs=1e-3)


def test_callback_does_not_allocate(load):
    adapter = CallbackAdapter(ng.Engine(sine(load), sample_rate=SR, block_size=4096))
    out = np.empty((4096, 2), np.float32)
    assert_no_allocations(lambda: adapter.process_interleaved(out, 4096))
    planar = [np.empty(4096, np.float32), np.empty(4096, np.float32)]
    assert_no_allocations(lambda: adapter.process_planar(planar, 4096))


def test_load_is_measured_as_a_share_of_the_period(load):
    ticks = iter([0.0, 0.0005, 1.0, 1.002])  # 0.5 ms and 2 ms of a 64/48000 = 1.333 ms period
    adapter = CallbackAdapter(ng.Engine(sine(load), sample_rate=SR, block_size=64), clock=lambda: next(ticks))
    out = np.empty((64, 2), np.float32)
    adapter.process_interleaved(out, 64)
    assert adapter.load == pytest.approx(0.375)
    adapter.process_interleaved(out, 64)
    assert adapter.load == pytest.approx(1.5) and adapter.load_max == pytest.approx(1.5)
    status = adapter.status(backend="test", running=True, device="none")
    assert status.callbacks == 2 and status.load_p50 == pytest.approx(0.9375)
    assert "cpu 150.0%" in status.line() and "voices 0" in status.line()


def test_realtime_guard_lowers_switch_interval_and_freezes_gc():
    before = sys.getswitchinterval()
    outer, inner = RealtimeGuard(), RealtimeGuard()
    outer.enter()
    inner.enter()
    try:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert gc.get_freeze_count() > 0
        inner.exit()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)  # still one backend playing
    finally:
        outer.exit()
    assert sys.getswitchinterval() == pytest.approx(before)
    assert gc.get_freeze_count() == 0


def test_backends_are_registered_plugins_and_unknown_names_are_explained(load):
    registry = ng.default_registry()
    assert {"jack", "sounddevice"} <= set(registry.backends)
    assert registry.backends["jack"].plugin == "backend_jack"
    with pytest.raises(ng.BackendError, match=r"no audio backend 'jak'.*available: .*jack"):
        open_backend("jak", ng.Engine(sine(load)))


def test_missing_device_library_says_what_to_install(load, monkeypatch):
    from neuralgraph_plugins import backend_jack, backend_sounddevice

    monkeypatch.setitem(sys.modules, "jack", None)  # as on a machine without JACK-Client
    with pytest.raises(ng.BackendError, match="apt-get install libjack-jackd2-0.*pip install JACK-Client"):
        backend_jack.JackBackend(ng.Engine(sine(load))).start()
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(ng.BackendError, match="apt-get install libportaudio2 and pip install sounddevice"):
        backend_sounddevice.SoundDeviceBackend(ng.Engine(sine(load))).start()


def test_play_with_an_unknown_backend_fails_with_a_message(tmp_path, capsys):
    patch = tmp_path / "p.toml"
    patch.write_text('schema = 1\n[nodes.out]\ntype = "io.output"\nin = 0.0\n', encoding="utf-8")
    assert cli_main(["play", str(patch), "--backend", "nope"]) == 2  # a usage error
    assert "no audio backend 'nope'" in capsys.readouterr().err


def test_osc_messages_set_parameters(load):
    from pythonosc.udp_client import SimpleUDPClient

    from neuralgraph._io.osc import OscControl

    engine = ng.Engine(sine(load, 1), sample_rate=SR, block_size=256)
    osc = OscControl(lambda: engine, port=0)
    try:
        assert osc.host == "127.0.0.1"
        client = SimpleUDPClient("127.0.0.1", osc.port)
        client.send_message("/osc/freq", 2000)
        client.send_message("/nope/freq", 1.0)
        client.send_message("/osc", 1.0)
        for _ in range(500):
            if osc.received == 3:
                break
            time.sleep(0.01)
    finally:
        osc.close()
    assert engine.settings == {"osc.freq": 2000.0}
    assert any("no node `nope`" in e for e in osc.errors)
    assert any("expected /node/param" in e for e in osc.errors)
    audio = engine.render(0.5)
    assert peak_frequency(audio[0, 4800:], SR) == pytest.approx(2000.0, abs=1.0)


def test_play_takes_backend_and_device_from_config_and_environment(tmp_path, capsys, monkeypatch):
    patch = tmp_path / "p.toml"
    patch.write_text('schema = 1\n[nodes.out]\ntype = "io.output"\nin = 0.0\n', encoding="utf-8")
    (tmp_path / "config.toml").write_text('[audio]\nbackend = "from_config"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEURALGRAPH_AUDIO_BACKEND", raising=False)
    assert cli_main(["play", str(patch)]) == 2
    assert "no audio backend 'from_config'" in capsys.readouterr().err
    monkeypatch.setenv("NEURALGRAPH_AUDIO_BACKEND", "from_env")
    assert cli_main(["play", str(patch)]) == 2
    assert "no audio backend 'from_env'" in capsys.readouterr().err


def test_a_realtime_audio_thread_is_pinned_and_live_edits_run_on_its_cpu_below_it():
    if os.geteuid() != 0:  # CI runs as root, so it never skips here
        pytest.skip("real-time scheduling needs root or an rtprio limit")
    from neuralgraph._io.backend import CONTROL_PRIORITY, control_priority

    ready, done, ids = threading.Event(), threading.Event(), []

    def audio_like(policy: int, priority: int) -> None:
        os.sched_setscheduler(0, policy, os.sched_param(priority))
        ids.append(threading.get_native_id())
        ready.set()
        done.wait(10)

    normal = threading.Thread(target=audio_like, args=(os.SCHED_OTHER, 0))
    normal.start()
    ready.wait(10)
    ready.clear()
    audio = threading.Thread(target=audio_like, args=(os.SCHED_FIFO, 5))
    audio.start()
    ready.wait(10)
    guard = RealtimeGuard()
    guard.enter()
    all_cpus = os.sched_getaffinity(0)
    try:
        RealtimeGuard.pin_audio_thread(ids[0])
        assert os.sched_getaffinity(ids[0]) == all_cpus  # a normal-priority thread is left alone
        RealtimeGuard.pin_audio_thread(ids[1])
        pinned = os.sched_getaffinity(ids[1])
        assert len(pinned) == 1
        started_inside = threading.Event()
        seen_by_child: list = []

        def child() -> None:  # started during the live edit, as a model's worker thread may be
            started_inside.wait(10)
            seen_by_child.append((os.sched_getaffinity(0), os.sched_getscheduler(0)))

        with control_priority():
            inside = os.sched_getaffinity(0), os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
            worker = threading.Thread(target=child)
            worker.start()
        after = os.sched_getaffinity(0), os.sched_getscheduler(0)
        started_inside.set()
        worker.join()
    finally:
        guard.exit()
        done.set()
        normal.join()
        audio.join()
    assert inside == (pinned, os.SCHED_FIFO, CONTROL_PRIORITY) and CONTROL_PRIORITY < 5
    assert after == (all_cpus, os.SCHED_OTHER)
    assert seen_by_child == [(all_cpus, os.SCHED_OTHER)]  # it does not keep what it inherited
    assert RealtimeGuard._audio_cpu is None  # forgotten once nothing plays
