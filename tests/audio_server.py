"""Finding the JACK server and running tests/audio_checks.py in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHECKS = Path(__file__).resolve().parent / "audio_checks.py"
CI_SCRIPTS = Path(__file__).resolve().parent.parent / ".ci"
ENV = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}


def jack_running() -> str | None:
    """None when a JACK server answers, else why not."""
    if shutil.which("jack_wait") is None:
        return "jack_wait not found: install Debian's jackd2 (apt-get install jackd2)"
    try:
        out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True, timeout=10, env=ENV).stdout
    except subprocess.TimeoutExpired:
        return "jack_wait -c did not answer within 10 s"
    if out.strip() != "running":
        return "no JACK server running (start one with .ci/start-audio-servers.sh)"
    return None


def require_jack() -> None:
    """Skip the test without a JACK server, or fail when NEURALGRAPH_REQUIRE_AUDIO=1."""
    reason = jack_running()
    if reason is not None:
        if os.environ.get("NEURALGRAPH_REQUIRE_AUDIO") == "1":
            pytest.fail(f"NEURALGRAPH_REQUIRE_AUDIO=1 but {reason}")
        pytest.skip(reason)


@contextmanager
def private_jack(state_dir: Path, name: str) -> Iterator[str]:
    """A JACK server of the caller's own (dummy driver, 48 kHz, period 256, realtime as root),
    started and stopped by its PID with the CI scripts: xruns counted on it are its clients' only.
    Yields the server name to pass as ``server=``."""
    if shutil.which("jackd") is None:
        require_jack()  # the same skip or CI failure as for the shared server
        pytest.skip("jackd not found: install Debian's jackd2")
    env = {
        **ENV,
        "JACK_DEFAULT_SERVER": name,
        "AUDIO_STATE_DIR": str(state_dir),
        "JACK_PERIOD": "256",
        "JACK_RATE": "48000",
    }
    started = subprocess.run(
        ["bash", str(CI_SCRIPTS / "start-audio-servers.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    if started.returncode != 0:
        pytest.fail(f"could not start a JACK server {name!r}:\n{started.stderr[-2000:]}")
    try:
        yield name
    finally:
        subprocess.run(["bash", str(CI_SCRIPTS / "stop-audio-servers.sh")], env=env, capture_output=True, timeout=60)


def run_check(name: str, timeout: float = 60.0, script: str | Path = CHECKS, **args: Any) -> dict[str, Any]:
    """Run one check of ``script`` in a fresh process (its own session, killed whole on timeout); its JSON result."""
    proc = subprocess.Popen(
        [sys.executable, str(script), name, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"audio check {name} hung for {timeout:g} s (JACK client deadlock?)\n{err[-2000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"audio check {name} failed (exit {proc.returncode})\n{out[-2000:]}\n{err[-3000:]}")
    result = json.loads(lines[-1])
    print(f"{name}: {result}")  # xruns and loads are reported, not asserted
    return result
