"""`neuralgraph examples` lists every shipped patch and copies one out with the files it reads."""

from __future__ import annotations

from pathlib import Path

import neuralgraph as ng
from neuralgraph._tools import cli

ROOT = Path(__file__).resolve().parent.parent


def test_every_shipped_patch_is_listed_with_its_name(capsys):
    assert cli.main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    shipped = {p.relative_to(ROOT / "graphs").with_suffix("").as_posix() for p in (ROOT / "graphs").rglob("*.toml")}
    assert set(listed) == shipped
    assert listed["neural_violin"] == "Neural violin"


def test_an_example_is_copied_with_its_model_and_loads_from_there(tmp_path, capsys):
    assert cli.main(["examples", "neural_violin", str(tmp_path / "mine")]) == 0
    written = capsys.readouterr().out.split()
    assert written == [
        str(tmp_path / "mine" / "neural_violin.toml"),
        str(tmp_path / "mine" / "models" / "ddsp_violin.onnx"),
    ]
    assert (tmp_path / "mine" / "models" / "ddsp_violin.onnx").read_bytes() == (
        ROOT / "graphs" / "models" / "ddsp_violin.onnx"
    ).read_bytes()
    patch = ng.load_patch(tmp_path / "mine" / "neural_violin.toml")  # inside its own folder: no NG118
    assert patch.name == "Neural violin"


def test_a_misspelt_example_gets_a_suggestion(tmp_path, capsys):
    assert cli.main(["examples", "neural_vilin", str(tmp_path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "no shipped example 'neural_vilin'" in err and "neural_violin" in err
    assert not any(tmp_path.iterdir())
