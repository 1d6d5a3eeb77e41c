"""``neuralgraph serve``'s HTTP API and websocket, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from analysis import peak_frequency, rms
from helpers import patch_toml
from surface_server import SINE, fresh, serving

import neuralgraph as ng

httpx = pytest.importorskip("httpx")
websockets_sync = pytest.importorskip("websockets.sync.client")

SR = 48000
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"token {TOKEN}"}

POLY = patch_toml(
    """[nodes.keys]
type = "midi.voices"
count = 4
[nodes.osc]
type = "osc.saw"
freq = "keys.freq"
[nodes.env]
type = "env.adsr"
gate = "keys.gate"
attack_ms = 2.0
release_ms = 30.0
[nodes.vca]
type = "math.mul"
in = "osc"
gain = "env"
[nodes.mix]
type = "voices.sum"
in = "vca"
[nodes.out]
type = "io.output"
channels = 2
in = "mix"
"""
)


@pytest.fixture
def sine(tmp_path):
    with serving(tmp_path, SINE) as server:
        yield server


def client(server, **kw) -> httpx.Client:
    return httpx.Client(base_url=server.base, timeout=30.0, **kw)


def frames(server, count, messages=(), headers=None, until=lambda m: True):
    """``count`` frames from the websocket that satisfy ``until``, after sending ``messages``."""
    got = []
    with websockets_sync.connect(server.base.replace("http", "ws") + "/ws", additional_headers=headers or AUTH) as ws:
        for m in messages:
            ws.send(json.dumps(m))
        while len(got) < count:
            m = json.loads(ws.recv(timeout=20))
            if m["type"] == "frame" and until(m):
                got.append(m)
            elif m["type"] == "error":
                raise AssertionError(m["message"])
    return got


def test_the_token_is_required_and_a_foreign_origin_or_host_is_refused(sine):
    with client(sine) as c:
        for headers in ({}, {"Authorization": "token wrong"}, {"X-Neuralgraph-Token": TOKEN[:-1]}):
            r = c.get("/api/status", headers=headers)
            assert r.status_code == 401 and "token" in r.json()["message"]
        assert c.get("/api/status", headers=AUTH).status_code == 200
        assert c.get("/api/status", headers={"X-Neuralgraph-Token": TOKEN}).status_code == 200
        assert c.get("/static/app.js").status_code == 401  # the page's own files too
        # the page's URL: its token becomes a cookie that carries every later request
        page = c.get(f"/?token={TOKEN}")
        assert page.status_code == 200 and "<title>neuralgraph</title>" in page.text
        assert c.get("/api/status").status_code == 200 and c.get("/static/app.js").status_code == 200
        # another web page in the same browser: refused even with the cookie or token
        r = c.post("/api/params", json={"osc.freq": 1000.0}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "evil.example" in r.json()["message"]
        assert c.post("/api/params", json={"osc.freq": 220.0}, headers={"Origin": sine.base}).status_code == 200
        # DNS rebinding: a foreign name resolving to 127.0.0.1
        assert c.get("/api/status", headers={**AUTH, "Host": f"evil.example:{sine.port}"}).status_code == 403
    assert sine.surface.engine.settings["osc.freq"] == 220.0  # the foreign request changed nothing
    url = sine.base.replace("http", "ws") + "/ws"
    with pytest.raises(Exception) as refused:
        websockets_sync.connect(url).close()
    assert refused.value.response.status_code == 401
    with pytest.raises(Exception) as refused:
        websockets_sync.connect(url, additional_headers={**AUTH, "Origin": "http://evil.example"}).close()
    assert refused.value.response.status_code == 403


def test_a_parameter_set_reaches_the_audio_and_the_page_frames(sine):
    tap = sine.surface.engine.tap("osc", seconds=2.0)
    assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(220.0, abs=1.0)
    with client(sine, headers=AUTH) as c:
        r = c.post("/api/params", json={"osc.freq": 330.0, "amp.gain": 0.25})
        assert r.status_code == 200, r.text
        assert c.get("/api/params").json()["osc.freq"] == 330.0
    time.sleep(0.1)  # the input ramps over its ramp_ms
    assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(330.0, abs=1.0)
    # the page's own view: the websocket's scope/spectrum of the port it watches, and the meters
    got = frames(
        sine,
        2,
        [{"type": "watch", "port": "osc"}],
        until=lambda m: m["port"] == "osc.out" and "peak_hz" in (m["scope"] or {}),
    )
    last = got[-1]
    assert last["port"] == "osc.out" and last["scope"]["peak_hz"] == pytest.approx(330.0, abs=0.5)
    assert last["meters"][0]["rms_db"] == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=0.5)
    # a change sent over the websocket lands too
    frames(sine, 1, [{"type": "set", "values": {"osc.freq": 440.0}}])
    time.sleep(0.1)
    assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(440.0, abs=1.0)


def test_bad_requests_get_located_messages(sine):
    with client(sine, headers=AUTH) as c:
        r = c.post("/api/params", json={"osc.fre": 330})
        assert r.status_code == 400
        assert r.json()["message"].endswith(
            "sine.toml:8:2: NG111 nodes.osc.fre: (from --set osc.fre) `osc.sine` has "
            "no parameter or input `fre` (did you mean `freq`?)"
        )
        cli = subprocess.run(
            [sys.executable, "-m", "neuralgraph", "check", str(sine.surface.path), "--set", "osc.fre=330"],
            capture_output=True,
            text=True,
        )
        assert r.json()["message"] in cli.stderr  # the very words --set prints
        r = c.post("/api/params", json={"amp.in": 1.0})
        assert (
            r.status_code == 400 and r.json()["message"] == "amp.in: the input is connected; change its source instead"
        )
        r = c.post("/api/params", content=b"{osc.freq: 3")
        assert r.status_code == 400 and r.json()["message"].startswith("POST /api/params: the body is not JSON")
        r = c.post("/api/params", json=[1, 2])
        assert r.status_code == 400 and "JSON object" in r.json()["message"]
        r = c.post("/api/notes", json={"note": 60})
        assert r.status_code == 400 and "takes no MIDI" in r.json()["message"]
        r = c.post("/api/presets", json={"name": "../x"})
        assert r.status_code == 400 and "preset name" in r.json()["message"]
        assert c.post("/api/presets/nothing/recall").status_code == 404


def test_a_broken_source_keeps_the_old_patch_playing_and_a_good_one_swaps(sine):
    tap = sine.surface.engine.tap(None, seconds=4.0)
    path = sine.surface.path
    tap.read()
    broken = SINE.replace('type = "math.mul"', 'type = "math.mull"')
    with client(sine, headers=AUTH) as c:
        r = c.put("/api/patch/source", content=broken.encode())
        assert r.status_code == 400
        body = r.json()
        assert body["problems"][0]["line"] == 13 and body["problems"][0]["code"] == "NG110"
        assert "sine.toml:13:" in body["message"] and "math.mull" in body["message"]
        assert "still playing the last good version" in body["message"]
        during = fresh(tap, 0.2)
        assert path.read_text() == SINE  # the file keeps the good version
        good = SINE.replace("freq = 220.0", "freq = 440.0")
        r = c.put("/api/patch/source", content=good.encode())
        assert r.status_code == 200, r.text
        assert r.json()["swapped"] and "changed osc.freq" in r.json()["report"]
        assert path.read_text() == good
        assert c.get("/api/patch/source").text == good
        status = c.get("/api/status").json()
    assert status["swaps"] == 1 and status["failed_swaps"] == 1
    # the old patch sounded through the failed save: every 10 ms of it at the sine's level
    windows = during[: len(during) // 480 * 480].reshape(-1, 480)
    assert min(rms(w) for w in windows) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    time.sleep(0.1)
    assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(440.0, abs=1.0)


def test_notes_sound_on_a_midi_patch(tmp_path):
    with serving(tmp_path, POLY, "poly.toml") as server:
        tap = server.surface.engine.tap(None, seconds=2.0)
        assert rms(fresh(tap, 0.1)) == 0.0
        with client(server, headers=AUTH) as c:
            assert c.get("/api/patch").json()["midi"] is True
            assert c.post("/api/notes", json={"note": 69, "velocity": 127, "on": True}).status_code == 200
            time.sleep(0.05)
            held = fresh(tap, 0.3)
            assert rms(held) > 0.2 and peak_frequency(held, SR) == pytest.approx(440.0, abs=1.5)
            assert c.get("/api/status").json()["voices"] == 1
            r = c.post("/api/notes", json={"note": 128})
            assert r.status_code == 400 and r.json()["message"] == "note: expected an integer 0..127, got 128"
            assert c.post("/api/notes", json={"note": 69, "on": False}).status_code == 200
            time.sleep(0.2)
            assert rms(fresh(tap, 0.1)) < 1e-3


def test_status_counters_move_and_a_faulting_node_is_counted(tmp_path, registry):
    faulty = SINE.replace('type = "math.mul"', 'type = "test.raiser"\nafter = 200').replace("gain = 0.5\n", "")
    with serving(tmp_path, faulty, "faulty.toml", registry=registry) as server, client(server, headers=AUTH) as c:
        first = c.get("/api/status").json()
        time.sleep(1.0)
        later = c.get("/api/status").json()
    assert first["backend"] == "none" and first["sample_rate"] == SR and first["block_size"] == 128
    assert later["callbacks"] > first["callbacks"] + 100  # ~375 blocks a second
    assert later["node_faults"] == 1 and first["node_faults"] == 0  # the raiser fails at block 200 (0.53 s)
    assert later["latency_ms"] == pytest.approx(128 / 48, abs=0.01)


def test_the_patch_description_controls_and_presets(sine):
    with client(sine, headers=AUTH) as c:
        patch = c.get("/api/patch").json()
        assert [n["name"] for n in patch["nodes"]] == ["osc", "amp", "out"]
        assert {"from": "osc.out", "to": "amp.in", "feedback": False, "range": None, "curve": "lin"} in patch["edges"]
        controls = {x["target"]: x for x in patch["controls"]}
        assert controls["osc.freq"]["unit"] == "Hz" and controls["osc.freq"]["slider"] == [20.0, 20000.0, "log"]
        assert controls["osc.freq"]["value"] == 220.0 and "amp.in" not in controls
        assert set(controls) == set(c.get("/api/params").json())
        assert c.post("/api/params", json={"osc.freq": 500.0}).status_code == 200
        assert c.post("/api/presets", json={"name": "high"}).json()["file"] == "sine.high.preset.toml"
        assert c.post("/api/params", json={"osc.freq": 100.0}).status_code == 200
        assert c.get("/api/presets").json() == {"presets": ["high"]}
        r = c.post("/api/presets/high/recall").json()
        assert "osc.freq" in r["applied"] and r["skipped"] == []
        assert c.get("/api/params").json()["osc.freq"] == 500.0
        svg = c.get("/api/graph.svg")
        assert svg.status_code == 200 and "<svg" in svg.text and "<title>osc</title>" in svg.text
    saved = (sine.surface.path.parent / "sine.high.preset.toml").read_text()
    assert '"osc.freq" = 500.0' in saved


def test_a_slow_page_is_dropped_frames_and_the_monitor_idles_without_pages(sine):
    monitor = sine.monitor
    time.sleep(0.3)
    idle = monitor.ticks
    time.sleep(0.5)
    assert monitor.ticks == idle  # nobody watching: no frames computed
    with websockets_sync.connect(sine.base.replace("http", "ws") + "/ws", additional_headers=AUTH) as ws:
        time.sleep(1.0)  # a page that reads nothing for a second
        seqs = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            m = json.loads(ws.recv(timeout=5))
            seqs.append(m["seq"])
    assert len(seqs) <= 33 + 40  # at most 30 frames a second (plus what the socket buffered)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert sine.surface.backend.status().xruns < 50


@pytest.mark.slow
def test_the_command_prints_one_url_and_refuses_a_taken_port(tmp_path):
    path = tmp_path / "sine.toml"
    path.write_text(SINE, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuralgraph", "serve", str(path), "--backend", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base, token = url.split("/?token=")
        assert len(token) >= 32
        assert httpx.get(base + "/api/status", timeout=30).status_code == 401
        assert httpx.get(base + "/api/status", headers={"Authorization": f"token {token}"}, timeout=30).json()[
            "running"
        ]
        port = base.rsplit(":", 1)[1]
        taken = subprocess.run(
            [sys.executable, "-m", "neuralgraph", "serve", str(path), "--backend", "none", "--port", port],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
        assert "Traceback" not in taken.stderr
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err and "played: none clock" in err


def test_the_clock_callback_allocates_nothing_with_a_page_watching():
    """The audio thread's side of serve: the adapter's block into the clock's buffer, with the
    monitor's output tap and a watched port's tap attached (the monitor thread itself is idle here:
    tracemalloc would count its allocations too)."""
    from neuralgraph._tools.serve.monitor import Monitor
    from neuralgraph.plugin import CallbackAdapter
    from neuralgraph.testing import assert_no_allocations

    engine = ng.Engine(ng.load_patch(SINE.replace("block_size = 128", "block_size = 4096"), text_name="sine"))
    monitor = Monitor(lambda: engine, dict)
    try:
        port = monitor._attach("osc")
        adapter = CallbackAdapter(engine)
        out = np.zeros((4096, 1), np.float32)
        assert_no_allocations(lambda: adapter.process_interleaved(out, 4096), calls=40)
        assert monitor.taps[port].written > 0 and monitor.output.written > 0
        assert adapter.faults == 0
    finally:
        monitor.close()
