"""Taps: lock-free rings the audio thread fills, read from another thread; overruns counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import neuralgraph as ng
from neuralgraph.testing import assert_no_allocations

SR = 48000
SYNTH = {
    "schema": 1,
    "nodes": {
        "osc": {"type": "osc.saw", "freq": 220.0},
        "lfo": {"type": "osc.sine", "freq": 3.0},
        "lpf": {"type": "filter.lowpass", "in": "osc", "cutoff": {"from": "lfo", "range": [300.0, 3000.0]}},
        "out": {"type": "io.output", "channels": 2, "in": "lpf"},
    },
}


def test_the_output_tap_holds_exactly_what_process_returned_with_start_frames():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    played = []
    tap = engine.tap(seconds=1.0)
    chunks = []
    for b in range(40):
        played.append(engine.process().copy())
        if b % 7 == 6:
            chunks.append(tap.read())
    chunks.append(tap.read())
    assert tap.read() is None  # nothing new
    assert [c.start for c in chunks] == [0] + list(np.cumsum([c.frames for c in chunks[:-1]]))
    assert np.array_equal(np.concatenate([c.data for c in chunks], axis=1), np.concatenate(played, axis=1))
    assert tap.overruns == 0 and all(c.lost == 0 for c in chunks)


def test_a_node_port_tap_sees_that_node_and_a_control_port_one_value_per_block():
    only_osc = {
        "schema": 1,
        "nodes": {"osc": SYNTH["nodes"]["osc"], "out": {"type": "io.output", "channels": 1, "in": "osc"}},
    }
    only_lfo = {
        "schema": 1,
        "nodes": {"lfo": SYNTH["nodes"]["lfo"], "out": {"type": "io.output", "channels": 1, "in": "lfo"}},
    }
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 64)
    osc = engine.tap("osc", seconds=1.0)
    lfo = engine.tap("lfo.out", seconds=1.0)  # its buffer is reused inside the fused run: tapped per member
    out = np.concatenate([engine.process().copy() for _ in range(30)], axis=1)
    assert np.array_equal(
        osc.read().data, ng.Engine(ng.load_patch(only_osc), SR, 64, ceiling=np.inf).render(30 * 64 / SR)
    )
    assert np.array_equal(
        lfo.read().data, ng.Engine(ng.load_patch(only_lfo), SR, 64, ceiling=np.inf).render(30 * 64 / SR)
    )
    # the run now goes member by member: the output is still the same as an untapped engine's
    assert np.array_equal(out, ng.Engine(ng.load_patch(SYNTH), SR, 64).render(30 * 64 / SR))


def test_a_stalled_reader_counts_overruns_and_gets_the_newest_frames():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    tap = engine.tap(seconds=0.05)  # 2400 frames (+2 blocks of margin)
    played = [engine.process().copy() for _ in range(100)]  # 12800 frames, nobody reading
    assert tap.overruns > 0
    chunk = tap.read()
    assert chunk.lost > 0 and tap.lost == chunk.lost
    assert chunk.start + chunk.frames == 100 * 128  # up to date
    everything = np.concatenate(played, axis=1)
    assert np.array_equal(chunk.data, everything[:, chunk.start :])
    engine.process()
    assert tap.read().start == 100 * 128  # the reader carries on from there, nothing lost since


def test_several_taps_and_a_reader_thread_while_blocks_run():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    taps = [engine.tap(), engine.tap("osc"), engine.tap("lpf")]
    got: list[list] = [[] for _ in taps]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for tap, sink in zip(taps, got):
                chunk = tap.read()
                if chunk is not None:
                    sink.append(chunk)
            time.sleep(0.001)
        for tap, sink in zip(taps, got):
            chunk = tap.read()
            if chunk is not None:
                sink.append(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    played = []
    for _ in range(300):
        played.append(engine.process().copy())
    stop.set()
    thread.join(timeout=10)
    out = np.concatenate([c.data for c in got[0]], axis=1)
    assert np.array_equal(out, np.concatenate(played, axis=1))
    lpf = np.concatenate([c.data for c in got[2]], axis=1)[0]
    assert np.array_equal(np.clip(lpf, -1.0, 1.0), out[0])  # lpf feeds the output, through the guard's ceiling
    assert all(t.overruns == 0 for t in taps)


def test_taps_follow_a_swap():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    tap = engine.tap("osc", seconds=1.0)
    out = engine.tap(seconds=1.0)
    for _ in range(10):
        engine.process()
    changed = {**SYNTH, "nodes": {**SYNTH["nodes"], "osc": {"type": "osc.saw", "freq": 330.0}}}
    engine.swap(ng.load_patch(changed))
    for _ in range(10):
        engine.process()
    assert tap.read().frames == 20 * 128 and out.read().frames == 20 * 128


def test_zero_allocations_per_block_with_two_taps_attached():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 4096)
    taps = [engine.tap(seconds=2.0), engine.tap("osc", seconds=2.0)]

    def block() -> None:
        engine.process()
        if taps[0].available > 40000:
            for t in taps:  # keep the rings from overrunning; reading is the consumer's cost, outside the block
                t.read_pos = t.written

    assert_no_allocations(block, calls=40)
    assert taps[1].written > 0


def test_tap_errors_name_the_port_and_what_would_be_valid():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    with pytest.raises(ng.ParameterError, match=r"tap os: no node `os` \(did you mean `osc`\?\)"):
        engine.tap("os")
    with pytest.raises(ng.ParameterError, match=r"tap lpf.outt: `filter.lowpass` has no output `outt`"):
        engine.tap("lpf.outt")
    with pytest.raises(ng.ParameterError, match="tap seconds"):
        engine.tap(seconds=0)


def test_a_closed_tap_stops_receiving():
    engine = ng.Engine(ng.load_patch(SYNTH), SR, 128)
    tap = engine.tap("osc")
    engine.process()
    tap.close()
    engine.process()
    assert tap.written == 128


#: In a fresh process: blocks of a fused plan loaded from its compiled modules (no numba), then a
#: tap that makes the run fall back to its members one by one, then more blocks. Prints which
#: thread imported numba and which threads compiled (or loaded) a kernel after the tap.
PROBE_FALLBACK = """
import importlib.abc, json, sys, threading
imported_on = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "numba":
            imported_on.append(threading.current_thread().name)
        return None
sys.meta_path.insert(0, Watch())
import neuralgraph as ng
engine = ng.Engine(ng.load_patch(sys.argv[1]))
def play():
    audio = threading.Thread(target=engine.render, args=(0.1,), name="audio")
    audio.start()
    audio.join()
play()
before = "numba" in sys.modules
tap = engine.tap("a.out", seconds=1.0)
from numba.core.dispatcher import Dispatcher  # a kernel compiled or loaded from numba's cache
compiled_on = set()
load = Dispatcher.compile
def watched(self, sig):
    compiled_on.add(threading.current_thread().name)
    return load(self, sig)
Dispatcher.compile = watched
play()
level = float(abs(tap.read().data).max())
print(json.dumps({"before": before, "imported_on": imported_on, "compiled_on": sorted(compiled_on), "level": level}))
"""


def test_a_tap_that_makes_a_fused_run_fall_back_compiles_its_members_before_the_audio_thread_runs_them(tmp_path):
    """A tap on a port the fused run reuses (the lowpass's output: the peak filter's later) makes the run call its members
    one by one from the next block on. Their kernels were compiled into the run's module, which
    is loaded without numba: their own ``process`` is compiled when the tap is attached (the
    control thread), so the audio thread's blocks after it import and compile nothing, and the
    tap hears the filtered sine."""
    patch = tmp_path / "chain.toml"
    patch.write_text(
        """schema = 1
[engine]
sample_rate = 48000
block_size = 64
[nodes.s]
type = "osc.sine"
freq = 440
[nodes.a]
type = "filter.lowpass"
in = "s"
cutoff = 2000
[nodes.b]
type = "filter.highpass"
in = "a"
cutoff = 100
[nodes.c]
type = "filter.peak"
in = "b"
cutoff = 1000
[nodes.out]
type = "io.output"
channels = 1
in = "c"
"""
    )
    env = {**os.environ, "NEURALGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "neuralgraph", "render", str(patch), "-o", str(tmp_path / "x.wav"), "--seconds", "0.1"]
    subprocess.run(cli, env=env, check=True, capture_output=True)  # builds the run's compiled module
    done = subprocess.run(
        [sys.executable, "-c", PROBE_FALLBACK, str(patch)], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["before"] is False  # the fused run came from its compiled module
    assert set(got["imported_on"]) == {"MainThread"}  # by the tap, not by the audio thread's next block
    assert "audio" not in got["compiled_on"]
    assert 0.5 < got["level"] < 1.1  # a 440 Hz sine through a 2 kHz lowpass
