"""The jack backend against a real JACK server (dummy driver), recorded by a second JACK client.

Each check runs in its own process with a timeout (tests/audio_checks.py). Without a server the
tests skip, unless NEURALGRAPH_REQUIRE_AUDIO=1 (or CI) makes them fail. These virtual machines xrun
now and then even with no client at all, so xruns are asserted against a do-nothing JACK client's
in the same run: the engine may not add xruns of its own, and every discontinuity anywhere in a
recording must be explained by an xrun the idle client saw.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from audio_server import ENV, require_jack, run_check

pytestmark = pytest.mark.server


@pytest.fixture(autouse=True)
def _server() -> None:
    require_jack()


def assert_clean(r: dict) -> None:
    """No discontinuity the machine's own xruns do not explain (one xrun: a jump in and one out),
    and no more xruns reported by the engine's client than the idle client saw meanwhile."""
    assert r["glitches"] <= 2 * r["idle_xruns"], r
    assert r["xruns"] <= r["idle_xruns"] + 1, r  # +1: the two counters are read a moment apart


def test_sine_arrives_at_a_recording_client_at_its_frequency_and_level():
    r = run_check("jack_sine", seconds=0.6)
    assert r["ports"] == ["ng_sine:out_1", "ng_sine:out_2"]
    assert r["frames"] >= 24000
    assert r["freq"] == pytest.approx(1000.0, abs=0.5)
    assert r["peak"] == pytest.approx(0.5, abs=0.01)
    assert r["rms"] == pytest.approx(0.5 / 2**0.5, rel=0.02)
    assert r["channels_equal"]
    assert r["faults"] == 0 and r["silent"] == 0
    assert_clean(r)
    # the engine adds no xruns: while it plays, the idle client sees no more than the machine's own
    # rate, measured by the same client alone for as long just before (slack for a busy VM)
    assert r["idle_xruns"] <= 2 * r["idle_xruns_alone"] + 2, r


def test_io_input_takes_audio_from_the_jack_input_ports():
    r = run_check("jack_thru", seconds=0.6)
    assert r["frames"] >= 24000
    assert r["freq"] == pytest.approx(500.0, abs=0.5)
    assert r["peak"] == pytest.approx(0.5, abs=0.01)
    assert_clean(r)
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
    assert r["frames_after_change"] >= 24000  # half a second recorded after the swap took effect
    assert r["freq_second_half"] == pytest.approx(1000.0, abs=2.0)
    assert r["faults"] == 0


def test_play_command_stops_cleanly_on_ctrl_c(tmp_path):
    patch = tmp_path / "sine.toml"
    patch.write_text(
        'schema = 1\n[nodes.osc]\ntype = "osc.sine"\nfreq = 440.0\n'
        '[nodes.out]\ntype = "io.output"\nchannels = 2\nin = "osc"\n',
        encoding="utf-8",
    )
    cmd = [
        sys.executable,
        "-m",
        "neuralgraph",
        "play",
        str(patch),
        "--backend",
        "jack",
        "--no-connect",
        "--osc-port",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True
    )
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        # until it plays: its ports exist and it has printed where OSC listens (after starting)
        while time.monotonic() < deadline and proc.poll() is None:
            ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV).stdout
            if "neuralgraph:out_1" in ports and any("OSC:" in line for line in err_lines):
                break
            time.sleep(0.01)
        else:
            pytest.fail(f"neuralgraph play did not start within 60 s: {''.join(err_lines)[-2000:]}")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        reader.join(timeout=5)
        err = "".join(err_lines)
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
    cmd = [
        sys.executable,
        "-m",
        "neuralgraph",
        "play",
        "graphs/poly_saw.toml",
        "--backend",
        "jack",
        "--seconds",
        "1",
        "--midi-in",
        "no_such_port*",
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=root, timeout=60)
    assert proc.returncode == 1
    assert "no JACK MIDI output port 'no_such_port*' (available:" in proc.stderr
    assert "Traceback" not in proc.stderr
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=ENV).stdout
    assert "neuralgraph:" not in ports


@pytest.mark.parametrize(
    "kind, name",
    [("system_exit", "SystemExit"), ("keyboard_interrupt", "KeyboardInterrupt"), ("base", "PlantedBaseException")],
)
def test_a_node_raising_systemexit_or_keyboardinterrupt_does_not_kill_the_jack_callback(kind, name):
    # these used to escape the containment: JACK's process callback died, audio stopped, and
    # `play` still printed "played 2.67 s" and exited 0
    r = run_check("jack_node_raises", kind=kind)
    assert r["faults"] == [["bad", name]]
    assert r["running"] and not r["message"]
    assert r["callbacks_while_recording"] > 50  # 0.5 s at 256 frames per period: still being called
    assert r["freq"] == pytest.approx(1000.0, abs=1.0) and r["peak"] == pytest.approx(0.5, abs=0.01)


def test_a_node_too_slow_for_the_period_is_named_while_playing():
    r = run_check("jack_slow_node")
    assert r["callbacks"] >= 32  # at least one timed block
    assert [name for name, _, _ in r["slow"]] == ["slow"]
    name, worst, budget = r["slow"][0]
    assert worst >= 20.0 > budget  # a 256-frame period is 5.3-5.8 ms


def test_notes_outside_an_instrument_range_are_reported_once_while_playing():
    expected = [
        ["pitch", "note 43 (G2) is outside the trained range 55..91 (G3–G6); policy 'fold': played as note 55 (G3)"],
        ["pitch", "note 100 (E7) is outside the trained range 55..91 (G3–G6); policy 'fold': played as note 88 (E6)"],
    ]
    r = run_check("jack_range_notice")
    if r["notices"] != expected and r["midi_events"] != 6:  # an xrun cycle lost an event: measure again
        r = run_check("jack_range_notice")
    assert r["midi_events"] == 6 and r["cycles"] >= 70, r
    assert r["notices"] == expected
