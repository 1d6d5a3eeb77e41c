"""The mutation cases stay runnable: each names a file that exists, a ``find`` text that occurs
exactly once in it, and test files that exist (``tools/mutants/run`` refuses a broken case only
when it is run, which is after the code it targets has moved)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tools" / "mutants" / "cases").glob("*.toml"))


def test_there_are_cases() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_a_case_finds_its_code_exactly_once_and_names_existing_tests(case: Path) -> None:
    spec = tomllib.loads(case.read_text())
    target = ROOT / spec["file"]
    assert target.is_file(), f"{case.name}: no file {spec['file']}"
    found = target.read_text().count(spec["find"])
    assert found == 1, f"{case.name}: its find text occurs {found} times in {spec['file']} (must be once)"
    assert spec["replace"] != spec["find"], f"{case.name}: the replacement plants nothing"
    for test in spec["tests"]:
        path = test.split("::")[0]
        assert (ROOT / path).exists(), f"{case.name}: no test file {path}"
