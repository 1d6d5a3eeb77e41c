"""Bad patches get errors with the right code, line, column, path and a useful hint."""

from __future__ import annotations

import subprocess
import sys

import pytest

import neuralgraph as ng

GOOD = """\
schema = 1
name = "ok"

[nodes.osc]
type = "osc.sine"
freq = 440.0

[nodes.out]
type = "io.output"
in = "osc"
"""


def problems_of(path, registry=None):
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(path, registry=registry)
    return info.value


def only(error, code):
    found = [p for p in error.problems if p.code == code]
    assert found, f"no {code} in:\n{error}"
    return found[0]


def test_good_patch_loads(write_patch):
    patch = ng.load_patch(write_patch(GOOD))
    assert patch.name == "ok"
    assert patch.topology.order == ("osc", "out")
    assert patch.channels == 2


def test_syntax_error_has_line_and_column(write_patch):
    err = problems_of(write_patch(GOOD.replace("freq = 440.0", "freq = = 440.0")))
    assert isinstance(err, ng.PatchSyntaxError)
    p = only(err, "NG100")
    assert (p.line, p.col) == (6, 8)
    assert "patch.toml:6:8" in p.format()


def test_unknown_type_suggests_the_closest(write_patch):
    err = problems_of(write_patch(GOOD.replace('"osc.sine"', '"osc.sinus"')))
    p = only(err, "NG110")
    assert (p.line, p.col, p.path) == (5, 8, "nodes.osc.type")
    assert "osc.sinus" in p.message and p.hint == "did you mean `osc.sine`?"


def test_unknown_parameter_suggests_the_closest(write_patch):
    err = problems_of(write_patch(GOOD.replace("freq = 440.0", "frequency = 440.0")))
    p = only(err, "NG111")
    assert (p.line, p.col, p.path) == (6, 1, "nodes.osc.frequency")
    assert p.hint == "did you mean `freq`?"


def test_unknown_port_in_connection(write_patch):
    err = problems_of(write_patch(GOOD.replace('in = "osc"', 'in = "osc.output"')))
    p = only(err, "NG121")
    assert (p.line, p.col, p.path) == (10, 6, "nodes.out.in")
    assert "`osc` (osc.sine) has no output `output`" in p.message
    assert p.hint == "did you mean `out`?"


def test_unknown_node_in_connection(write_patch):
    err = problems_of(write_patch(GOOD.replace('in = "osc"', 'in = "oss"')))
    p = only(err, "NG120")
    assert p.line == 10 and p.hint == "did you mean `osc`?"


def test_wrong_type_and_range(write_patch):
    text = GOOD.replace("freq = 440.0", "freq = true") + "channels = 100\n"
    err = problems_of(write_patch(text))
    wrong = only(err, "NG112")
    assert (wrong.line, wrong.path) == (6, "nodes.osc.freq")
    out_of_range = only(err, "NG113")
    assert (out_of_range.line, out_of_range.path) == (11, "nodes.out.channels")
    assert "must be <= 64" in out_of_range.message and "[1, 64]" in out_of_range.hint


def test_nan_and_inf_rejected(write_patch):
    err = problems_of(write_patch(GOOD.replace("freq = 440.0", "freq = nan")))
    p = only(err, "NG114")
    assert (p.line, p.path) == (6, "nodes.osc.freq")


def test_cycle_without_feedback_names_its_path(write_patch):
    text = GOOD + '\n[nodes.a]\ntype = "math.add"\na = "b"\n\n[nodes.b]\ntype = "math.mul"\nin = "a"\n'
    err = problems_of(write_patch(text))
    assert isinstance(err, ng.CompileError)
    p = only(err, "NG124")
    assert "a -> b -> a" in p.message or "b -> a -> b" in p.message
    assert "feedback = true" in p.hint
    assert p.line in (14, 18)


def test_feedback_edge_allows_the_cycle(write_patch):
    text = (
        GOOD
        + '\n[nodes.a]\ntype = "math.add"\na = { from = "b", feedback = true }\n\n[nodes.b]\ntype = "math.mul"\nin = "a"\n'
    )
    assert ng.load_patch(write_patch(text)).topology.order.index("a") < ng.load_patch(
        write_patch(text)
    ).topology.order.index("b")


def test_lane_mismatch_names_both_ends(registry, write_patch):
    text = """\
schema = 1
[nodes.three]
type = "test.lanes"
count = 3

[nodes.out]
type = "io.output"
channels = 2
in = "three"
"""
    err = problems_of(write_patch(text), registry)
    p = only(err, "NG123")
    assert (p.line, p.path) == (9, "nodes.out.in")
    assert "`three` has 3 lanes" in p.message and "`out` has 2 lanes" in p.message


def test_missing_schema_and_output(write_patch):
    err = problems_of(write_patch('[nodes.osc]\ntype = "osc.sine"\n'))
    assert {"NG102", "NG125"} <= set(err.codes)


def test_mapping_errors(write_patch):
    text = GOOD.replace("freq = 440.0", 'freq = { from = "osc", range = [0.0, 100.0], curve = "log", feedbak = true }')
    err = problems_of(write_patch(text))
    curve = [p for p in err.problems if p.path == "nodes.osc.freq.curve"][0]
    assert curve.code == "NG115" and 'valid: "lin", "exp"' in curve.hint
    typo = [p for p in err.problems if p.path == "nodes.osc.freq.feedbak"][0]
    assert typo.hint == "did you mean `feedback`?"


def test_several_problems_reported_at_once(write_patch):
    text = """\
schema = 1

[nodes.osc]
type = "osc.saw"
fre = 220.0

[nodes.lfo]
type = "osc.sinus"

[nodes.vca]
type = "math.mul"
in = "osc"
gain = "lfo.out"
bogus = 1

[nodes.loop1]
type = "math.add"
a = "loop2"

[nodes.loop2]
type = "math.add"
a = "loop1"

[nodes.out]
type = "io.output"
in = "vca"
"""
    err = problems_of(write_patch(text))
    assert [p.code for p in err.problems] == ["NG111", "NG110", "NG111", "NG124"]
    assert [p.line for p in err.problems] == [5, 8, 14, 22]  # the cycle at its first edge, loop1 -> loop2


def test_missing_model_file_is_relative_to_the_patch(tmp_path, registry):
    # a path parameter names the file as the patch wrote it and where it looked
    from neuralgraph.plugin import Node, Output, Param

    class Sampler(Node):
        type_name = "test.sampler"
        sample = Param(init="", kind=str, path=True)
        out = Output()

    reg = ng.Registry.load(entry_points=True)
    reg.register_node(Sampler, plugin="tests")
    path = tmp_path / "p.toml"
    path.write_text(
        'schema = 1\n[nodes.s]\ntype = "test.sampler"\nsample = "kick.wav"\n[nodes.out]\ntype = "io.output"\nin = "s"\n'
    )
    err = problems_of(path, reg)
    p = only(err, "NG116")
    assert (p.line, p.path) == (4, "nodes.s.sample") and "kick.wav" in p.message
    (tmp_path / "kick.wav").write_bytes(b"")
    patch = ng.load_patch(path, registry=reg)
    assert patch.spec.nodes["s"].params["sample"] == str(tmp_path / "kick.wav")


def test_check_command_prints_every_problem_and_exits_2(write_patch):
    path = write_patch(GOOD.replace("freq = 440.0", "fre = 440.0").replace('"io.output"', '"io.outptu"'))
    run = subprocess.run([sys.executable, "-m", "neuralgraph", "check", str(path)], capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[0].endswith(
        "patch.toml:6:1: NG111 nodes.osc.fre: `osc.sine` has no parameter or input `fre` (did you mean `freq`?)"
    )
    assert "patch.toml:9:8: NG110 nodes.out.type: unknown node type `io.outptu` (did you mean `io.output`?)" in lines[1]
    assert lines[-1] == "2 problems found"
    assert "Traceback" not in run.stderr


def test_render_bad_patch_exits_2_without_traceback(write_patch, tmp_path):
    path = write_patch(GOOD.replace('in = "osc"', 'in = "nowhere"'))
    run = subprocess.run(
        [sys.executable, "-m", "neuralgraph", "render", str(path), "-o", str(tmp_path / "x.wav")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "NG120" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "x.wav").exists()


def test_set_override_is_validated(write_patch):
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(write_patch(GOOD), overrides={"osc.freq": "nope.out"})
    assert only(info.value, "NG120").path == "nodes.osc.freq"
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(write_patch(GOOD), overrides={"osx.freq": 3.0})
    assert only(info.value, "NG130").hint == "did you mean `osc`?"
