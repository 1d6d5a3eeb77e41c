"""``neuralgraph serve`` playing through a real JACK server: the page's changes reach what JACK plays."""

from __future__ import annotations

import os
import time

import pytest
from analysis import peak_frequency
from audio_server import require_jack
from surface_server import SINE, fresh, serving

pytestmark = pytest.mark.server
httpx = pytest.importorskip("httpx")


def test_a_parameter_set_over_http_reaches_the_jack_output(tmp_path):
    require_jack()
    with serving(
        tmp_path, SINE, "sine.toml", backend="jack", connect=False, client_name=f"ng-serve-test-{os.getpid()}"
    ) as server:
        engine = server.surface.engine  # rebuilt by the backend for the server's period
        tap = engine.tap(None, seconds=2.0)
        rate = engine.sample_rate
        assert peak_frequency(fresh(tap, 0.3), rate) == pytest.approx(220.0, abs=1.0)
        headers = {"Authorization": "token test-token-0123456789"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as c:
            status = c.get("/api/status").json()
            assert status["backend"] == "jack" and status["running"] and status["period"] == engine.block_size
            assert c.post("/api/params", json={"osc.freq": 550.0}).status_code == 200
            time.sleep(0.1)
            assert peak_frequency(fresh(tap, 0.3), rate) == pytest.approx(550.0, abs=1.0)
            assert c.get("/api/status").json()["callbacks"] > status["callbacks"]
