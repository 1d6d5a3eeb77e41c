"""The sounddevice backend through PortAudio's JACK host API, recorded by a JACK client.

Runs in a subprocess started after jackd (PortAudio enumerates host APIs only when imported).
"""

from __future__ import annotations

import re

import pytest
from audio_server import require_jack, run_check

pytestmark = pytest.mark.server


def test_sounddevice_stream_on_jack_host_api_plays_and_is_captured():
    require_jack()
    r = run_check("sounddevice_jack", seconds=0.6)
    assert "error" not in r, r["error"] if "error" in r else ""
    assert r["device"].endswith("(JACK Audio Connection Kit)")
    # "PortAudio", or "PortAudio-01" while another process on the shared server holds the first name
    assert len(r["sources"]) == 2 and all(
        re.fullmatch(rf"PortAudio(-\d+)?:out_{i}", name) for i, name in enumerate(r["sources"])
    ), r["sources"]
    assert r["frames"] >= 24000
    assert r["freq"] == pytest.approx(1000.0, abs=0.5)
    assert r["peak"] == pytest.approx(0.5, abs=0.01)
    assert r["glitches"] <= 2 * r["idle_xruns"], r  # discontinuities only where the machine xran
    assert r["faults"] == 0
    if r["realtime"]:  # live edits run on the audio thread's CPU, below it (as with the JACK backend)
        assert r["audio_cpus"] == 1, r
