"""The stages hand each other one thing each: nodes are instantiated once per patch, the ramp of
an input is runtime state, and every compiled step is one record that all readers share."""

from __future__ import annotations

import numpy as np

import neuralgraph as ng
from neuralgraph._tools.drawing import patch_to_dot
from neuralgraph.plugin import Input, Node, Output, Ports


class Counted(Node):
    """A gain that counts its instances (as an onnx.model would count its sessions)."""

    type_name = "test.counted"
    made = 0
    in_ = Input(init=0.0)
    out = Output()

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        Counted.made += 1

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, 0.5, out=outs.out)


def _patch() -> ng.Patch:
    registry = ng.Registry.load()
    registry.register_node(Counted)  # constructs one to check it (registration, not the patch)
    Counted.made = 0
    return ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "a": {"type": "test.counted", "in": 1.0},
                "b": {"type": "test.counted", "in": "a"},
                "out": {"type": "io.output", "channels": 1, "in": "b"},
            },
        },
        registry=registry,
    )


def test_loading_compiling_and_drawing_make_each_node_once():
    patch = _patch()
    assert Counted.made == 2  # the loader's two instances
    engine = ng.Engine(patch, sample_rate=48000, block_size=64)
    assert "a" in patch_to_dot(patch)
    assert Counted.made == 2  # the engine runs those very instances; the drawing reads them
    assert engine.plan.nodes["a"] is patch.instances["a"]
    assert np.allclose(engine.process(), 0.25)


def test_a_second_engine_of_the_same_patch_gets_its_own_nodes():
    patch = _patch()
    first = ng.Engine(patch, sample_rate=48000, block_size=64)
    second = ng.Engine(patch, sample_rate=44100, block_size=32)
    assert Counted.made == 4
    assert second.plan.nodes["a"] is not first.plan.nodes["a"]
    assert np.allclose(first.process(), 0.25) and np.allclose(second.process(), 0.25)


def test_an_input_ramp_is_engine_state_not_the_compilers():
    patch = _patch()
    engine = ng.Engine(patch, sample_rate=48000, block_size=64)
    plan_constants = ng.build_plan(patch, 48000, 64)[1]
    assert set(plan_constants) == {"a.in"}
    constant = plan_constants["a.in"]
    assert not hasattr(constant, "target") and not hasattr(constant, "remaining")
    engine.set("a.in", 0.0)  # ramps to 0 over the input's ramp_ms
    engine.process()
    saved = engine.save_state()
    assert saved["constants"][0][2] == 0.0  # the target, kept by the engine's ramp
    assert engine.targets == ("a.in",)


def test_one_record_per_step_is_what_the_plan_runs_and_the_profiler_names():
    from neuralgraph._tools.profiling import GUARD, profile

    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "osc": {"type": "osc.sine", "freq": 220.0},
                "lpf": {"type": "filter.lowpass", "in": "osc", "cutoff": 2000.0},
                "amp": {"type": "math.mul", "in": ["lpf", "osc"]},  # two sources: a mix step
                "out": {"type": "io.output", "channels": 1, "in": "amp"},
            },
        }
    )
    plain = ng.Engine(patch, sample_rate=48000, block_size=64, fuse=False).plan
    assert [(r.name, r.kind, r.label) for r in plain.records] == [
        ("osc", "node", "osc.sine"),
        ("lpf", "node", "filter.lowpass"),
        ("amp.in (mix)", "mix", "compiler"),
        ("amp", "node", "math.mul"),
        ("out", "node", "io.output"),
    ]
    assert plain.steps == [(r.process, r.ins, r.outs) for r in plain.records]
    assert plain.stateful_steps == (plain.records[2].state,)

    fused = ng.Engine(patch, sample_rate=48000, block_size=64).plan
    (run,) = [r for r in fused.records if r.kind == "fused"]
    assert [m.name for m in run.members] == ["osc", "lpf", "amp.in (mix)", "amp", "out"]
    assert fused.step_names == [run.name] and fused.fused_indices == {0}
    assert fused.stateful_steps == (run.members[2].state, run.state)  # members reset before the run checks them

    costs = profile(ng.Engine(patch, sample_rate=48000, block_size=64), blocks=4, warmup=1)
    # the fused run is reported member by member (its profile build clocks each one)
    assert sorted((c.name, c.kind) for c in costs.steps) == sorted(
        [(m.name, m.label + "*") for m in run.members] + [(GUARD, "compiler")]
    )
