"""The jack backend against a real JACK server (dummy driver), recorded by a second JACK client.

Each check runs in its own process with a timeout (tests/audio_checks.py). Without a server the
tests skip, unless NEURALGRAPH_REQUIRE_AUDIO=1 makes them fail. Xruns are reported, not asserted:
these virtual machines xrun at small periods even with no client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from audio_server import ENV, require_jack, run_check

pytestmark = pytest.mark.server


@pytest.fixture(autouse=True)
def _server() -> None:
    require_jack()


def test_sine_arrives_at_a_recording_client_at_its_frequency_and_level():
    r = run_check("jack_sine", seconds=0.6)
    assert r["ports"] == ["ng_sine:out_1", "ng_sine:out_2"]
    assert r["frames"] >= 24000
    assert r["freq"] == pytest.approx(1000.0, abs=0.5)
    assert r["peak"] == pytest.approx(0.5, abs=0.01)
    assert r["rms"] == pytest.approx(0.5 / 2 ** 0.5, rel=0.02)
    assert r["channels_equal"]
    assert r["faults"] == 0 and r["silent"] == 0
    # continuity: at least a quarter second without a discontinuity, even on a busy VM
    assert r["longest_clean_s"] >= 0.25, r


def test_io_input_takes_audio_from_the_jack_input_ports():
    r = run_check("jack_thru", seconds=0.6)
    assert r["frames"] >= 24000
    assert r["freq"] == pytest.approx(500.0, abs=0.5)
    assert r["peak"] == pytest.approx(0.5, abs=0.01)
    assert r["longest_clean_s"] >= 0.25, r
    assert r["faults"] == 0


def test_jack_midi_notes_move_the_gate_on_their_exact_frame():
    r = run_check("jack_midi")
    if r["edges"] != r["sent"] and r["xruns"]:  # an xrun cycle may shift events: measure again
        r = run_check("jack_midi")
    assert r["midi_sources"] == ["ng_midi_send:out"]
    assert r["midi_events"] == 5
    assert r["edges"] == r["sent"]


def test_buffer_size_change_rebuilds_the_engine_and_keeps_playing():
    r = run_check("jack_sine", seconds=1.0, change_block=512)
    assert r["block_after_change"] == 512
    assert r["freq_second_half"] == pytest.approx(1000.0, abs=2.0)
    assert r["faults"] == 0


def test_play_command_stops_cleanly_on_ctrl_c(tmp_path):
    patch = tmp_path / "sine.toml"
    patch.write_text('schema = 1\n[nodes.osc]\ntype = "osc.sine"\nfreq = 440.0\n'
                     '[nodes.out]\ntype = "io.output"\nchannels = 2\nin = "osc"\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "neuralgraph", "play", str(patch), "--backend", "jack", "--no-connect",
           "--osc-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        for _ in range(200):  # until its ports exist
            ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV).stdout
            if "neuralgraph:out_1" in ports or proc.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("neuralgraph play did not stop within 30 s of Ctrl-C")
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.startswith("played ") and "jack neuralgraph 48000 Hz" in out and "voices 0" in out
    assert "OSC: /node/param value on 127.0.0.1:" in err
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV).stdout
    assert "neuralgraph:" not in ports  # the client is gone


def test_play_with_a_missing_midi_port_fails_clearly_and_leaves_no_client():
    cmd = [sys.executable, "-m", "neuralgraph", "play", "graphs/poly_saw.toml", "--backend", "jack", "--seconds", "1",
           "--midi-in", "no_such_port*"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=root, timeout=60)
    assert proc.returncode == 1
    assert "no JACK MIDI output port 'no_such_port*' (available:" in proc.stderr
    assert "Traceback" not in proc.stderr
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV).stdout
    assert "neuralgraph:" not in ports
