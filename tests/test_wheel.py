"""The wheel carries what a user needs: the core, the built-in plugins, the shipped models and
example patches; installed (not editable) into a fresh environment it renders a neural example."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with this environment's setuptools, offline (CI builds isolated)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (found,) = out.glob("neuralgraph-*.whl")
    return found


def test_the_wheel_carries_core_plugins_models_and_examples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "neuralgraph/__init__.py",
        "neuralgraph/plugin.py",
        "neuralgraph/testing.py",
        "neuralgraph/py.typed",
        "neuralgraph/_runtime/engine.py",
        "neuralgraph/_tools/cli.py",
    ):
        assert module in names
    shipped = {p.relative_to(ROOT / "plugins").as_posix() for p in (ROOT / "plugins").glob("*.py")}
    assert {f"neuralgraph_plugins/{p}" for p in shipped} <= names
    examples = {
        p.relative_to(ROOT / "graphs").as_posix()
        for p in (ROOT / "graphs").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {f"neuralgraph_examples/{p}" for p in examples} <= names
    assert "neuralgraph_examples/models/ddsp_violin.onnx" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "neuralgraph = neuralgraph.__main__:run" in text and "io = neuralgraph_plugins.io" in text


def test_installed_from_the_wheel_it_copies_out_and_renders_a_neural_example(wheel, tmp_path):
    venv = tmp_path / "venv"
    base = Path(sys.base_prefix) / "bin" / "python3"  # dependencies from the base interpreter
    subprocess.run([str(base), "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py, cli = venv / "bin" / "python", venv / "bin" / "neuralgraph"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(py), "-c", "import neuralgraph; print(neuralgraph.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv)  # the wheel's copy, not the checkout
    listed = subprocess.run([str(cli), "examples"], cwd=work, env=env, capture_output=True, text=True, check=True)
    assert "neural_drive" in listed.stdout and "neural_violin" in listed.stdout
    subprocess.run([str(cli), "examples", "neural_drive", "ex"], cwd=work, env=env, check=True, capture_output=True)
    assert (work / "ex" / "models" / "amp_gru.onnx").is_file()
    subprocess.run(
        [str(cli), "render", "ex/neural_drive.toml", "-o", "drive.wav", "--seconds", "1"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    audio, rate = soundfile.read(work / "drive.wav")
    assert rate == 48000 and audio.shape == (48000, 2)
    assert 0.05 < float(np.sqrt(np.mean(audio**2))) and float(np.abs(audio).max()) <= 1.0
