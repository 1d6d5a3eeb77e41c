"""Every mapping mistake in ``[nodes.X.tensors.NAME]`` is reported at its patch line, with the
model's actual signature and a suggestion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
from onnx_zoo import ZOO

import neuralgraph as ng
from neuralgraph_plugins.onnx_mapping import fits_dtype

VAD = next(e for e in ZOO if e.name == "vad")
SIGNATURE = "the model has inputs (input: float [?, 576]; state: float [2, ?, 128]; sr: int64 [])"


def vad_patch(tmp_path: Path, replace: tuple[str, str]) -> Path:
    VAD.build(tmp_path / "vad.onnx")
    body = VAD.node.replace(*replace)
    assert body != VAD.node
    path = tmp_path / "patch.toml"
    path.write_text(f"""schema = 1
[nodes.src]
type = "io.input"
channels = 1
[nodes.net]
type = "onnx.model"
model = "vad.onnx"
input = "src"
{body}[nodes.out]
type = "io.output"
in = "net.output"
""")
    return path


def problem(tmp_path: Path, replace: tuple[str, str], marker: str) -> ng.errors.Problem:
    """The one problem of the patch, checked to sit on the line that holds ``marker``."""
    path = vad_patch(tmp_path, replace)
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(path)
    (found,) = info.value.problems
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if marker in text)
    assert found.code == "NG117" and found.line == line, found.format()
    assert SIGNATURE in found.message
    return found


def test_unknown_tensor_name_suggests_the_closest(tmp_path):
    p = problem(tmp_path, ("[nodes.net.tensors.state]", "[nodes.net.tensors.stat]"), "[nodes.net.tensors.stat]")
    assert "it has no tensor 'stat'" in p.message and p.hint == "did you mean `state`?"
    assert p.path == "nodes.net.tensors.stat"


def test_unknown_key_in_a_tensor_table(tmp_path):
    p = problem(tmp_path, ('role = "constant"', 'rol = "constant"'), 'rol = "constant"')
    assert "unknown key 'rol'" in p.message and p.hint == "did you mean `role`?"


def test_role_that_does_not_fit_the_shape(tmp_path):
    p = problem(tmp_path, ('role = "constant"\nvalue = 16000', 'role = "audio"  # sr'), "# sr")
    assert p.path == "nodes.net.tensors.sr.role"
    assert "role audio does not fit sr: int64 []: it has no time axis" in p.message
    assert 'role = "control"' in p.hint


def test_state_whose_output_has_another_shape(tmp_path):
    patch = ('output = "stateN"', 'output = "output"')
    VAD.build(tmp_path / "vad.onnx")
    path = vad_patch(tmp_path, patch)
    text = path.read_text().replace(
        '[nodes.net.tensors.output]\nrole = "control"\n',
        '[nodes.net.tensors.stateN]\nrole = "ignore"\nbatch_axis = 1\n',
    )
    path.write_text(text.replace('in = "net.output"', "in = 0.0"))
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(path)
    (p,) = info.value.problems
    assert p.line == text.splitlines().index('output = "output"') + 1
    assert "state state: float [2, batch, 128] is fed by output: float [batch, 1], whose shape differs" in p.message
    assert "pair each state input with the output of the same shape" in p.hint


def test_constant_the_dtype_cannot_hold(tmp_path):
    p = problem(tmp_path, ("value = 16000", "value = 16000.5"), "value = 16000.5")
    assert p.path == "nodes.net.tensors.sr.value"
    assert "an int64 tensor holds whole numbers, not 16000.5" in p.message
    assert p.hint == "write a value that fits int64"


def test_axis_out_of_range(tmp_path):
    p = problem(tmp_path, ("batch_axis = 1", "batch_axis = 3"), "batch_axis = 3")
    assert "batch_axis = 3 is out of range for state: float [2, batch, 128] (rank 3)" in p.message
    assert p.hint == 'valid: 0..2 or "none"'


def test_batch_on_an_axis_that_is_not_the_batch(tmp_path):
    p = problem(tmp_path, ("batch_axis = 1", "batch_axis = 0  # state"), "# state")
    assert "axis 0 of state: float [2, batch, 128] is taken as the batch but has size 2" in p.message


@pytest.mark.parametrize(
    "value, dtype, reason",
    [
        (70000.0, np.float16, "outside float16's range"),
        (2, np.bool_, "bool tensor holds true/false"),
        (2**40, np.int32, "outside int32's range"),
        (1e39, np.float32, "outside float32's range"),
        ([1, 2.5], np.int64, "whole numbers"),
    ],
)
def test_dtype_ranges(value, dtype, reason):
    assert reason in fits_dtype(value, np.dtype(dtype))
    assert fits_dtype(1, np.dtype(dtype)) is None
