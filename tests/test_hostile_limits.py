"""Hostile input the adversarial pass found getting through (issue 18, hostile items 4, 5, 8, 10):
a tiny model with a huge inference, huge or deeply nested patch files, a model that is empty or a
folder, and values where zero or nonsense was silently taken."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng
from neuralgraph._patch.prescan import MAX_NESTING
from neuralgraph._tools.cli import main

ROOT = Path(__file__).resolve().parent.parent


def problems(path: Path | dict) -> list[str]:
    return [p.format() for p in ng.check_patch(path)[1]]


# ---- item 4: a model whose one inference exceeds the memory budget ------------------------------
def constant_of_shape_model(path: Path, elements: int) -> Path:
    """A few hundred bytes of ONNX that allocate ``elements`` floats on every inference."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([elements], np.int64), "shape")
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


MODEL_PATCH = (
    'schema = 1\n[nodes.nn]\ntype = "onnx.model"\nmodel = "{model}"\n[nodes.out]\ntype = "io.output"\nin = "nn"\n'
)
PEAK = (
    "import resource, sys\nfrom neuralgraph._tools.cli import main\n"
    "rc = main(sys.argv[1:])\nprint(rc, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def test_a_tiny_model_with_a_huge_inference_is_refused_at_its_model_key(tmp_path):
    bomb = constant_of_shape_model(tmp_path / "bomb.onnx", 2**29)  # 2 GiB of float32 per inference
    assert bomb.stat().st_size < 300
    patch = tmp_path / "p.toml"
    patch.write_text(MODEL_PATCH.format(model="bomb.onnx"))
    run = subprocess.run(
        [sys.executable, "-c", PEAK, "check", str(patch)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    code, peak_kb = run.stdout.split()[-2:]
    assert code == "2", run.stderr
    assert re.search(
        r"p.toml:4:9: NG117 nodes.nn.model: onnx.model: one inference of '.*bomb.onnx' needs more "
        r"than the memory budget of 2048 MB \(one tensor alone needs 2048 MB\); raise it on purpose "
        r"with --memory-budget-mb",
        run.stderr,
    ), run.stderr
    # The refusal must not allocate what the model asks for (2 GiB; it was 4.6 GB before the probe).
    # The process usually peaks near 210 MB, but 2 of the 6 full-suite runs of one session measured
    # 1.1 GB (not reproduced alone): the bound is what the model asks; the 1.1 GB is an open question.
    assert int(peak_kb) < 2 * 1024 * 1024, f"peak {int(peak_kb) / 1024:.0f} MB: the refusal allocated what was asked"
    assert "\x1b[" not in run.stderr and "onnxruntime" not in run.stderr.replace("onnx.model", "")  # no ORT log lines


def test_the_budget_of_the_patch_applies_to_the_probe(tmp_path):
    constant_of_shape_model(tmp_path / "mid.onnx", 2**24)  # 64 MiB per inference
    patch = tmp_path / "p.toml"
    patch.write_text(MODEL_PATCH.format(model="mid.onnx"))
    assert problems(patch) == []
    refused = [p.format() for p in ng.check_patch(patch, memory_budget_mb=32)[1]]
    assert (
        len(refused) == 1 and "needs more than the memory budget of 32 MB (one tensor alone needs 64 MB)" in refused[0]
    )


def test_real_models_pass_the_probe():
    for name in ("neural_violin", "neural_drive"):
        assert problems(ROOT / "graphs" / f"{name}.toml") == []


# ---- item 5: size and nesting refused before parsing --------------------------------------------
def test_a_patch_over_the_byte_limit_is_refused_unread(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text('schema = 1\n[nodes.out]\ntype = "io.output"\nin = 0.0\n# ' + "x" * (5 * 1024 * 1024) + "\n")
    assert problems(big) == [
        f"{big}:1:1: NG101 the patch file is larger than the limit of 4194304 bytes (raise it on "
        "purpose: max_patch_bytes in [limits] of config.toml, NEURALGRAPH_MAX_PATCH_BYTES, or "
        "load_patch(..., max_patch_bytes=N))"
    ]
    # the limit is a setting: raised, the same file loads
    assert ng.check_patch(big, max_patch_bytes=8 * 1024 * 1024)[1] == []


def test_an_endless_device_is_read_only_up_to_the_limit():
    assert problems(Path("/dev/zero"))[0].startswith("/dev/zero:1:1: NG101 the patch file is larger than the limit")


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("schema = 1\nx = " + "[" * 2000 + "]" * 2000 + "\n", "2:37", "brackets nest more than 32 deep"),
        (
            "schema = 1\nx = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n",
            "2:" + str(4 + 5 * 32 + 1),
            "brackets nest more than 32 deep",
        ),
        ("schema = 1\n" + ".".join(["a"] * 100_000) + " = 1\n", "2:1", "a dotted key has more than 32 parts"),
        ("schema = 1\n[" + ".".join(["t"] * 40) + "]\n", "2:2", "a dotted key has more than 32 parts"),
    ],
    ids=["arrays", "inline-tables", "dotted-key", "table-header"],
)
def test_deep_nesting_is_refused_before_parsing_with_its_line(tmp_path, text, where, what):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    assert problems(path) == [
        f"{path}:{where}: NG100 {what}; the patch is not parsed "
        f"(a patch nests 5 levels at most; the limit is {MAX_NESTING})"
    ]


def test_brackets_and_dots_inside_strings_and_comments_do_not_count(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(
        "schema = 1\n# " + "[" * 100 + '\nname = "' + "a." * 100 + "[" * 100 + '"\n'
        '[nodes.out]\ntype = "io.output"\nin = 0.0\n'
    )
    assert problems(path) == []


def test_a_deep_dict_built_in_code_is_a_problem_not_a_recursion_error():
    data = {"schema": 1, "nodes": {"out": {"type": "io.output", "in": 0.0}}}
    inner = data["nodes"]["out"]["deep"] = {}
    for _ in range(40):
        inner["k"] = {}
        inner = inner["k"]
    assert any("NG103" in p and "values nest more than 32 deep" in p for p in problems(data))
    for _ in range(5000):
        inner["k"] = {}
        inner = inner["k"]
    assert problems(data) == ["<patch>: NG103 the patch nests more than 32 deep (a patch nests 5 levels at most)"]


# ---- item 8: an empty model with a connection, a folder as a model --------------------------------
def test_an_empty_model_with_a_downstream_connection_is_located(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(MODEL_PATCH.format(model=""))
    assert problems(path) == [
        f"{path}:7:6: NG121 nodes.out.in: `nn`: `nn` (onnx.model) has no outputs "
        "(its ports depend on its parameters: an onnx.model needs a `model` file)"
    ]
    assert main(["render", str(path), "-o", str(tmp_path / "x.wav")]) == 2


def test_a_folder_given_as_a_model_says_it_is_a_folder(tmp_path):
    (tmp_path / "models").mkdir()
    path = tmp_path / "p.toml"
    path.write_text(MODEL_PATCH.format(model="models"))
    assert problems(path) == [
        f"{path}:4:9: NG116 nodes.nn.model: 'models' is a directory, not a file "
        f"(name the file inside {tmp_path / 'models'})"
    ]


# ---- item 10: nonsense values --------------------------------------------------------------------
def test_a_complex_wavetable_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((2, 64), np.complex64))
    path = tmp_path / "p.toml"
    path.write_text(
        'schema = 1\n[nodes.osc]\ntype = "osc.wavetable"\ntable = "c.npy"\n'
        '[nodes.out]\ntype = "io.output"\nin = "osc"\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        with pytest.raises(ng.PatchError) as caught:
            ng.Engine(ng.load_patch(path))  # tables are read when the plan is built
    found = [p.format() for p in caught.value.problems]
    assert (
        len(found) == 1
        and "must be a 1-D or 2-D array of real numbers (float or int), got shape (2, 64) of complex64" in found[0]
    )


def test_an_overflowing_mixer_prints_no_warning_and_is_reported_by_the_guard(load):
    patch = load(
        {
            "osc": {"type": "osc.sine"},
            "mx": {
                "type": "mix",
                "count": 2,
                "in_1": "osc",
                "in_2": "osc",
                "gain_1": 1e30,
                "gain_2": 1e30,
                "level": 1e30,
            },
            "out": {"type": "io.output", "in": "mx"},
        }
    )
    engine = ng.Engine(patch)
    with warnings.catch_warnings(record=True) as caught:
        audio = engine.render(0.1)
    assert [str(w.message) for w in caught] == []
    assert np.all(np.isfinite(audio)) and engine.plan.guard.non_finite > 0
    assert any(b.node == "mx" and b.non_finite for b in engine.bad_values())
    # the filter is for node code only: the user's own numpy warnings still show
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.float32(1e30) * np.float32(1e30)
    assert any("overflow" in str(w.message) for w in caught)
