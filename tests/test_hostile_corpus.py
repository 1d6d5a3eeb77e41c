"""The hostile-patch corpus (tests/hostile/, format in its README): every case fails the way a user
should see it fail: neuralgraph's own error, the expected code and line, the file named, no
traceback, quickly, and (for the limits) before anything big is allocated."""

from __future__ import annotations

import re
import signal
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import neuralgraph as ng
from neuralgraph import parse_override
from neuralgraph._errors import CODES
from neuralgraph._patch.config import LIMIT_ENV
from neuralgraph._tools.cli import EXIT_PATCH, main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "hostile"
CASES = sorted(CORPUS.glob("*.toml"))
EXPECT = re.compile(r"^# expect: (NG\d{3}) line (\d+)$")
SECONDS = 30  #: no case may take longer (a hang fails the test instead of the run)
#: codes no patch file can show: NG130 is a malformed --set argument, refused by the command line
NOT_IN_FILES = {"NG130"}


class Case:
    """One corpus file: its expectation, its environment and overrides, and how it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lines = path.read_bytes().decode("utf-8", "replace").lstrip("\ufeff").splitlines()
        m = EXPECT.match(lines[0]) if lines else None
        assert m, f"{path.name}: the first line must be `# expect: NGnnn line N`"
        self.code, self.line = m[1], int(m[2])
        self.env: dict[str, str] = {}
        self.sets: list[str] = []
        self.cli = False
        for header in lines[1:3]:
            if header.startswith("# env: "):
                name, value = header[len("# env: ") :].split("=", 1)
                self.env[name] = value
            elif header.startswith("# set: "):
                self.sets.append(header[len("# set: ") :])
            elif header == "# via: cli":
                self.cli = True


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def clean_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default limits whatever the machine's config: no user config.toml, no NEURALGRAPH_* limits."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for var in LIMIT_ENV:
        monkeypatch.delenv(var, raising=False)
    assert not (ROOT / "config.toml").exists()


def load_and_compile(case: Case) -> ng.PatchError:
    overrides = dict(parse_override(item) for item in case.sets)
    with pytest.raises(ng.PatchError) as info:
        patch = ng.load_patch(case.path.relative_to(ROOT), overrides=overrides)
        ng.Engine(patch, warmup=False)
    return info.value


def test_the_corpus_is_large_and_covers_every_patch_error_code():
    cases = [Case(path) for path in CASES]
    assert len(cases) >= 30
    assert len({path.stem.split("_", 1)[1] for path in CASES}) == len(CASES), "one mistake per file"
    assert {c.code for c in cases} == set(CODES) - NOT_IN_FILES


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_patch_fails_cleanly(
    path: Path, clean_limits: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = Case(path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    shown = str(path.relative_to(ROOT))
    with time_limit(SECONDS):
        if case.cli:
            argv = ["check", shown] + [arg for item in case.sets for arg in ("--set", item)]
            assert main(argv) == EXIT_PATCH
            err = capsys.readouterr().err
            first = err.splitlines()[0]
            assert first.startswith(f"{shown}:{case.line}:"), err
            assert f": {case.code} " in first, err
            assert "Traceback" not in err
            return
        error = load_and_compile(case)
    first = error.problems[0]
    assert (first.code, first.line) == (case.code, case.line), str(error)
    assert path.name in str(error)
    assert "Traceback" not in str(error) and 'File "' not in str(error)
    for problem in error.problems:
        assert problem.code in CODES
        assert problem.file == shown, problem
        assert problem.line is not None, problem


def test_the_memory_budget_refuses_before_allocating(clean_limits: None) -> None:
    """A 60 s delay on 128 voices at 192 kHz would need 5.5 GiB: refused having allocated little."""
    case = Case(CORPUS / "41_memory_budget.toml")
    tracemalloc.start()
    try:
        error = load_and_compile(case)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.codes == ["NG127"]
    assert peak < 64 * 1024 * 1024
    text = str(error)
    assert "nodes.echo (fx.delay, 128 lanes) 5.5 GiB" in text and "memory_budget_mb" in text


def test_the_memory_budget_can_be_raised_on_purpose(clean_limits: None) -> None:
    patch = ng.load_patch(CORPUS / "41_memory_budget.toml", memory_budget_mb=8192)
    assert patch.limits.memory_budget_mb == 8192
    # (the engine would now allocate 5.5 GiB: raising the budget is the user's explicit choice)


def test_outside_paths_load_when_allowed(clean_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The opt-in works by keyword, environment and command line; the corpus's refusal is the default."""
    case = CORPUS / "37_path_escapes_folder.toml"
    assert ng.load_patch(case, allow_outside=True).spec.nodes["osc"].params["table"].endswith("organ.npy")
    monkeypatch.setenv("NEURALGRAPH_ALLOW_OUTSIDE_PATHS", "1")
    ng.load_patch(case)
    monkeypatch.delenv("NEURALGRAPH_ALLOW_OUTSIDE_PATHS")
    assert main(["check", str(case.relative_to(ROOT)), "--allow-outside-paths"]) == 0


def test_node_limit_from_config_toml(clean_limits: None, tmp_path: Path) -> None:
    (tmp_path / "neuralgraph").mkdir()
    (tmp_path / "neuralgraph" / "config.toml").write_text("[limits]\nmax_nodes = 5\n", encoding="utf-8")
    with pytest.raises(ng.PatchValidationError) as info:
        ng.load_patch(CORPUS / "40_too_many_nodes.toml")
    assert info.value.codes == ["NG126"]
    assert ng.load_patch(CORPUS / "40_too_many_nodes.toml", max_nodes=7).spec.nodes.keys() >= {"s5", "out"}


def test_the_cli_help_names_the_limit_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("render", "check"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--allow-outside-paths" in out and "--max-nodes" in out and "--memory-budget-mb" in out


def test_env_allows_no_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURALGRAPH_ALLOW_OUTSIDE_PATHS", "maybe")
    with pytest.raises(ng.NeuralgraphError, match="NEURALGRAPH_ALLOW_OUTSIDE_PATHS='maybe' is not a boolean"):
        ng.load_patch(CORPUS / "37_path_escapes_folder.toml")
