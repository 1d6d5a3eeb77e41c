from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import testnodes  # noqa: E402

import neuralgraph as ng  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry() -> ng.Registry:
    """Every installed plugin plus the test node types."""
    return ng.Registry.load(plugins={"testnodes": testnodes})


@pytest.fixture
def load(registry):
    """Load a patch from a dict of nodes (schema and output added when missing)."""

    def _load(nodes: dict[str, Any], **extra: Any) -> ng.Patch:
        data = {"schema": 1, "nodes": nodes}
        data.update(extra)
        return ng.load_patch(data, registry=registry)

    return _load


@pytest.fixture
def write_patch(tmp_path):
    """Write TOML text to a file in a temporary folder and return its path."""

    def _write(text: str, name: str = "patch.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


# ---- the shipped graphs' kernel modules, built in the background at the start of a long run ----------
#: a run of at least this many tests starts the warm-up (one test, or a file, is not worth it)
WARMUP_MIN_TESTS = 200


@pytest.fixture(scope="session", autouse=True)
def kernel_warmup(request: pytest.FixtureRequest) -> Any:
    """``tests/kernel_warmup.py`` in the background: the modules the command-line tests need are
    built in one batch on the second core while the first tests run, instead of one compile
    subprocess in each test's ``neuralgraph render`` (docs/performance.md, "The test suite").
    Tests that check cold-cache behaviour use caches of their own. ``NEURALGRAPH_TEST_WARMUP=0``
    turns it off."""
    if len(request.session.items) < WARMUP_MIN_TESTS or os.environ.get("NEURALGRAPH_TEST_WARMUP") == "0":
        yield None
        return
    script = Path(__file__).with_name("kernel_warmup.py")
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    yield proc
    proc.wait()


@pytest.fixture(autouse=True)
def _quiet_cpu_for_server_tests(request: pytest.FixtureRequest, kernel_warmup: Any) -> None:
    """A JACK test compares xruns with an idle client: it must not share the CPU with the warm-up
    (the ``server`` marker, or a module that runs audio checks against the server)."""
    realtime = request.node.get_closest_marker("server") is not None or hasattr(request.module, "require_jack")
    if kernel_warmup is not None and realtime:
        kernel_warmup.wait()


# ---- in CI a missing dependency fails, it does not skip ----------------------------------------------
#: Skip reasons accepted even in CI (docs/reliability.md, "Tests in CI"). Add a reason here only
#: together with its entry in that page.
ACCEPTED_SKIPS: tuple[str, ...] = (
    "root reads any file",  # permission bits do not stop root: an unreadable file cannot be made
    "root writes anywhere",
)


def skips_fail() -> bool:
    """True in CI (``CI`` set, as every CI service does) or with NEURALGRAPH_REQUIRE_AUDIO=1."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("NEURALGRAPH_REQUIRE_AUDIO") == "1"


def _refuse_skip(report: Any) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not skips_fail():
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(accepted in reason for accepted in ACCEPTED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI, which must run every test: {reason}\n"
        "(.ci/run installs every dependency; see docs/reliability.md, 'Tests in CI')"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    _refuse_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: Any) -> Any:
    outcome = yield  # a module-level importorskip skips the whole file at collection
    _refuse_skip(outcome.get_result())
