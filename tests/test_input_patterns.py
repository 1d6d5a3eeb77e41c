"""`"amp_*" = "decoder.harm_*"`: one key connects a numbered family of inputs (docs/patch-format.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng

MODEL = Path(__file__).resolve().parent.parent / "graphs" / "models" / "ddsp_flute.onnx"

HEAD = """\
schema = 1

[nodes.decoder]
type = "onnx.model"
model = "flute.onnx"
f0 = 440.0
loudness = -30.0

[nodes.out]
type = "io.output"
in = "harmonic"

[nodes.harmonic]
type = "synth.harmonic"
count = 4
freq = 440.0
"""


@pytest.fixture(autouse=True)
def _model_beside_the_patch(tmp_path):
    shutil.copyfile(MODEL, tmp_path / "flute.onnx")


def _inputs(path: Path, node: str) -> dict[str, tuple]:
    spec = ng.load_patch(path).spec.nodes[node]
    return {name: (i.constant, tuple((s.node, s.port, s.range) for s in i.sources)) for name, i in spec.inputs.items()}


def test_a_pattern_is_the_same_patch_as_every_key_written_out(write_patch):
    pattern = _inputs(write_patch(HEAD + '"amp_*" = "decoder.harm_*"\n', "a.toml"), "harmonic")
    explicit = _inputs(
        write_patch(HEAD + "".join(f'amp_{k} = "decoder.harm_{k}"\n' for k in range(1, 5)), "b.toml"), "harmonic"
    )
    assert pattern == explicit
    assert pattern["amp_3"] == (0.0, (("decoder", "harm_3", None),))


def test_mappings_lists_and_constants_take_the_matched_text(write_patch):
    text = HEAD + '"amp_*" = [{ from = "decoder.harm_*", range = [0.0, 0.5] }, 0.01]\namp_2 = 0.25\n'
    inputs = _inputs(write_patch(text), "harmonic")
    assert inputs["amp_4"] == (0.01, (("decoder", "harm_4", (0.0, 0.5)),))
    assert inputs["amp_2"] == (0.25, ())  # a key written out wins over the pattern


def test_pattern_render_equals_explicit_render(write_patch):
    a = ng.Engine(ng.load_patch(write_patch(HEAD + '"amp_*" = "decoder.harm_*"\n', "a.toml"))).render(0.2)
    b = ng.Engine(
        ng.load_patch(write_patch(HEAD + "".join(f'amp_{k} = "decoder.harm_{k}"\n' for k in range(1, 5)), "b.toml"))
    ).render(0.2)
    assert np.sqrt(np.mean(a**2)) > 0.001
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        ('"gain_*" = 1.0', "NG111", "no input matching `gain_*`"),
        ('"amp_*_*" = 1.0', "NG115", "exactly one `*`"),
    ],
)
def test_bad_patterns_are_located(write_patch, line, code, words):
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(write_patch(HEAD + line + "\n"))
    (problem,) = info.value.problems
    assert problem.code == code and words in problem.message
    assert problem.line == HEAD.count("\n") + 1


def test_a_missing_source_port_points_at_the_pattern_line(write_patch):
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(write_patch(HEAD.replace("count = 4", "count = 40") + '"amp_*" = "decoder.harm_*"\n'))
    problems = info.value.problems
    assert {p.code for p in problems} == {"NG121"} and len(problems) == 8  # harm_33 .. harm_40
    assert all(p.line == HEAD.count("\n") + 1 for p in problems)
    assert "harm_33" in str(info.value)
