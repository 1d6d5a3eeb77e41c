"""Every contract check is proven: a planted bad node makes exactly that check fail.

pluginval's strict subnormal check once counted infinities instead (design-anchors C.1): a
check that cannot fail is a defect. Each test below plants one bug and asserts the check named
for it reports it, with the node type and what was observed; a clean node passes them all.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext
from neuralgraph.testing import CHECKS, ContractError, check_node, run_contract_suite


class Clean(Node):
    """A well-behaved effect: gain with a live parameter, stateless, allocation-free."""

    type_name = "planted.clean"
    in_ = Input(doc="Signal.")
    out = Output()
    gain = Param(init=0.5, min=0.0, max=1.0, unit="", doc="Gain.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, self.gain, out=outs.out)


class BadConstruct(Clean):
    type_name = "planted.bad_construct"

    def __init__(self, **params):
        raise RuntimeError("needs a license key")


class BadMetadata(Clean):
    type_name = "planted.bad_metadata"
    depth = Input(init=5.0, min=0.0, max=1.0, doc="init outside its own range")


class BadExtreme(Clean):
    """Divides by a buffer-shaping parameter whose declared range reaches 0."""

    type_name = "planted.bad_extreme"
    width = Param(init=0.5, min=0.0, max=1.0, live=False, doc="Width.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.k = np.float32(np.inf) if self.width == 0.0 else np.float32(1.0 / self.width)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, self.k, out=outs.out)


class BadGrid(Clean):
    """Assumes it never runs above 96 kHz."""

    type_name = "planted.bad_grid"

    def prepare(self, ctx: PrepareContext) -> None:
        if ctx.sample_rate > 96000:
            raise ValueError("sample rate not supported")


class BadHostile(Clean):
    """1 / input: silence (a finite input) gives infinity."""

    type_name = "planted.bad_hostile"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        with np.errstate(divide="ignore"):
            np.divide(1.0, ins.in_, out=outs.out)
        np.multiply(outs.out, 1e-6, out=outs.out)


class NaiveSigmoid(Clean):
    """1 / (1 + exp(-k x)): finite output, but exp overflows (and numpy warns) for x << 0."""

    type_name = "planted.naive_sigmoid"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.multiply(ins.in_, -1000.0, out=out)
        np.exp(out, out=out)
        np.add(out, 1.0, out=out)
        np.reciprocal(out, out=out)


class BadRecovery(Clean):
    """Accumulates its input into a state that a NaN poisons for good."""

    type_name = "planted.bad_recovery"

    def prepare(self, ctx: PrepareContext) -> None:
        self.acc = np.zeros((ctx.lanes, 1), np.float32)
        self.tmp = np.zeros((ctx.lanes, 1), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.add(self.acc, ins.in_[:, -1:], out=self.acc)
        with np.errstate(invalid="ignore"):
            np.multiply(self.acc, 0.0, out=self.tmp)  # 0 * NaN stays NaN
        np.add(ins.in_, self.tmp, out=outs.out)

    def reset(self) -> None:
        self.acc.fill(0.0)


class BadSubnormal(Clean):
    """Adds a subnormal offset: silence in, subnormals out."""

    type_name = "planted.bad_subnormal"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.add(ins.in_, np.float32(1e-40), out=outs.out)


class BadAutomation(Clean):
    """Divides by its gain parameter: at the range's low end (0) the output is infinite."""

    type_name = "planted.bad_automation"

    def prepare(self, ctx: PrepareContext) -> None:
        self.on_param("gain")

    def on_param(self, name: str) -> None:
        self.inverse = np.float32(np.inf) if self.gain == 0.0 else np.float32(1.0 / self.gain)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, self.inverse, out=outs.out)


class BadThreads(Clean):
    """Assumes its `amount` input never moves from its init: raises once the engine ramps it."""

    type_name = "planted.bad_threads"
    amount = Input(init=0.5, min=0.0, max=1.0, doc="Amount.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if abs(ins.amount[0, 0] - 0.5) > 0.01:
            raise ValueError("amount changed while running")
        np.copyto(outs.out, ins.in_)


class BadReset(Clean):
    """reset() forgets to clear a block counter that shifts the output."""

    type_name = "planted.bad_reset"

    def prepare(self, ctx: PrepareContext) -> None:
        self.count = 0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:
            return
        self.count += 1
        np.add(ins.in_, np.float32(1e-3 * (self.count % 100)), out=outs.out)


class ForgetfulLoad(Clean):
    """A one-sample delay whose load_state restores the parameters but forgets the memory."""

    type_name = "planted.forgetful_load"

    def prepare(self, ctx: PrepareContext) -> None:
        self.memory = np.zeros((ctx.lanes, 1), np.float32)
        self.latency = 1

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:
            return
        np.copyto(outs.out[:, :1], self.memory)
        np.copyto(outs.out[:, 1:frames], ins.in_[:, : frames - 1])
        np.copyto(self.memory, ins.in_[:, frames - 1 : frames])

    def reset(self) -> None:
        self.memory.fill(0.0)

    def load_state(self, state: dict) -> None:
        self.gain = state["gain"]  # the memory is not written back


class IgnoresFrames(Clean):
    """A ramp that advances by the block size whatever ``frames`` says: 0 frames moves it."""

    type_name = "planted.ignores_frames"

    def prepare(self, ctx: PrepareContext) -> None:
        self.position = 0
        self.ramp = np.tile(np.arange(ctx.block_size, dtype=np.float32) / np.float32(ctx.block_size), (ctx.lanes, 1))

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, self.gain, out=outs.out)
        np.add(outs.out, self.ramp, out=outs.out)
        np.add(outs.out, np.float32(1e-3 * (self.position % 97)), out=outs.out)
        self.position += 1

    def reset(self) -> None:
        self.position = 0


class SneakyInputWriter(Clean):
    """Turns its read-only input writeable and scales it in place."""

    type_name = "planted.input_writer"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        x = ins.in_
        x.flags.writeable = True
        np.multiply(x, 0.5, out=x)
        np.copyto(outs.out, x)


class BadLatency(Clean):
    """Delays its input by 3 samples but declares no latency."""

    type_name = "planted.bad_latency"
    DELAY = 3

    def prepare(self, ctx: PrepareContext) -> None:
        self.line = np.zeros((ctx.lanes, ctx.block_size + self.DELAY), np.float32)
        self.tail = np.zeros((ctx.lanes, self.DELAY), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:  # no time passes (the zero_frames rule)
            return
        d, line = self.DELAY, self.line
        line[:, d:] = ins.in_
        np.copyto(outs.out, line[:, :frames])
        # two views of one array: numpy copies the source to a temporary first, so go through a buffer
        np.copyto(self.tail, line[:, frames : frames + d])
        np.copyto(line[:, :d], self.tail)

    def reset(self) -> None:
        self.line.fill(0.0)


class BadAllocation(Clean):
    """Multiplies without out=: a new array every block."""

    type_name = "planted.bad_allocation"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        outs.out[...] = ins.in_ * self.gain


@njit(cache=True, nogil=True)
def _double_kernel(x, out, frames):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        for i in range(frames):
            out[lane, i] = 2.0 * x[lane, i]


class BadKernel(Clean):
    """Offers a kernel that does not do what ``process`` does (2x instead of 1x)."""

    type_name = "planted.bad_kernel"

    def kernel(self, ins, outs):
        return _double_kernel, (ins.in_, outs.out)


PLANTED = {
    "construct": BadConstruct,
    "metadata": BadMetadata,
    "param_extremes": BadExtreme,
    "prepare_grid": BadGrid,
    "hostile_inputs": BadHostile,
    "fp_warnings": NaiveSigmoid,
    "nonfinite_recovery": BadRecovery,
    "no_subnormals": BadSubnormal,
    "automation": BadAutomation,
    "thread_safety": BadThreads,
    "reset_determinism": BadReset,
    "state": ForgetfulLoad,
    "zero_frames": IgnoresFrames,
    "inputs_unchanged": SneakyInputWriter,
    "latency": BadLatency,
    "allocations": BadAllocation,
    "kernel": BadKernel,
}


def test_every_check_has_a_planted_bad_node():
    assert set(PLANTED) == set(CHECKS)


def test_a_clean_node_passes_every_check():
    report = run_contract_suite(Clean, quick=True)
    assert report.ok, str(report)
    assert report.checks == list(CHECKS)


@pytest.mark.parametrize("check", CHECKS)
def test_the_planted_bug_fails_its_check(check):
    node_cls = PLANTED[check]
    report = run_contract_suite(node_cls, quick=True, checks=[check])
    failures = report.failed(check)
    assert failures, f"{check} did not trip on {node_cls.type_name}: {report}"
    assert failures[0].node_type == node_cls.type_name
    assert node_cls.type_name in str(report) and f"[{check}]" in str(report)


@pytest.mark.parametrize(
    "check, expected",
    [
        ("construct", "needs a license key"),
        ("metadata", "input `depth`: init 5 must be <= 1"),
        ("param_extremes", "with width = 0.0"),
        ("prepare_grid", "sample rate not supported (192000 Hz"),
        ("hostile_inputs", "is inf"),
        ("fp_warnings", 'numpy warned "overflow encountered in exp"'),
        ("nonfinite_recovery", "poisons the state"),
        ("no_subnormals", "subnormal"),
        ("automation", "gain"),
        ("thread_safety", "amount changed while running"),
        ("reset_determinism", "after reset() the same input gave different output"),
        ("state", "load_state did not restore what save_state saved: state.memory: array values differ"),
        ("zero_frames", "a block of 0 frames changed the node's state: state.position: 3 vs 4"),
        ("inputs_unchanged", "wrote into its input `in`"),
        ("latency", "declared latency 0 samples but an impulse on `in` reaches the output after 3 samples"),
        ("allocations", "process made a numpy array of 32768 bytes in 10 of 10 blocks"),
        ("kernel", "the kernel's output `out` differs from process()"),
    ],
)
def test_the_failure_says_what_was_observed(check, expected):
    report = run_contract_suite(PLANTED[check], quick=True, checks=[check])
    assert expected in report.failed(check)[0].message


def test_the_planted_bugs_stay_local():
    """Bugs that only one check can see fail only that check in a full run."""
    for check in (
        "prepare_grid",
        "latency",
        "inputs_unchanged",
        "reset_determinism",
        "metadata",
        "param_extremes",
        "state",
        "zero_frames",
    ):
        report = run_contract_suite(PLANTED[check], quick=True)
        assert {f.check for f in report.failures} == {check}, str(report)


def test_check_node_raises_with_the_report():
    with pytest.raises(ContractError) as info:
        check_node(BadLatency, quick=True, checks=["latency", "construct"])
    assert info.value.report.failed("latency") and not info.value.report.failed("construct")
    assert check_node(Clean, quick=True, checks=["construct", "latency"]).ok


def test_a_node_that_needs_reset_declares_it():
    class ResetToRecover(BadRecovery):
        type_name = "planted.reset_to_recover"
        contract_recovery_s = None  # documented: recovers only through reset()

    report = run_contract_suite(ResetToRecover, quick=True, checks=["nonfinite_recovery"])
    assert report.ok, str(report)


def test_contract_params_hook_chooses_the_configurations():
    class Configured(Clean):
        type_name = "planted.configured"

        @classmethod
        def contract_params(cls):
            return [{"gain": 0.25}, {"gain": 1.0}]

    report = run_contract_suite(Configured, quick=True, checks=["construct"])
    assert report.configurations == 2 and report.ok
    bad = run_contract_suite(Configured, quick=True, checks=["construct"], params={"gain": 2.0})
    assert "must be <= 1" in bad.failed("construct")[0].message


def test_unknown_check_names_are_refused():
    with pytest.raises(ValueError, match="unknown contract checks"):
        run_contract_suite(Clean, checks=["latencyy"])


def test_the_pytest_fixture_runs_the_suite(node_contract):
    assert node_contract(Clean).ok
    with pytest.raises(pytest.fail.Exception, match=r"planted.bad_latency \[latency\]"):
        node_contract(BadLatency, checks=["latency"])


def test_contract_cases_parametrise_over_a_registry():
    from neuralgraph import Registry
    from neuralgraph.testing import contract_cases

    registry = Registry()
    registry.register_node(Clean)
    registry.register_node(BadLatency)
    cases = contract_cases(registry)
    assert [c.id for c in cases] == ["planted.bad_latency", "planted.clean"]
    assert [c.values for c in cases] == [(BadLatency,), (Clean,)]
    assert [c.id for c in contract_cases(registry, types=["planted.clean"])] == ["planted.clean"]


def test_the_latency_check_pulses_the_input_a_node_names():
    class SideDelay(BadLatency):
        """The delayed signal comes in on `side`, not `in`."""

        type_name = "planted.side_delay"
        side = Input(doc="Delayed input.")
        contract_latency_input = "side"

        def process(self, ins: Ports, outs: Ports, frames: int) -> None:
            d, line = self.DELAY, self.line
            line[:, d:] = ins.side
            np.copyto(outs.out, line[:, :frames])
            line[:, :d] = line[:, frames : frames + d]

    report = run_contract_suite(SideDelay, quick=True, checks=["latency"])
    assert "an impulse on `side` reaches the output after 3 samples" in report.failed("latency")[0].message


class HiddenInObject(Clean):
    """Keeps its running sum in a plain object the default snapshot cannot copy."""

    type_name = "planted.hidden_in_object"

    class _Accumulator:
        __slots__ = ("total",)

    def prepare(self, ctx: PrepareContext) -> None:
        self.acc = self._Accumulator()
        self.acc.total = 0.0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        self.acc.total = 0.9 * self.acc.total + float(ins.in_[0, 0])
        outs.out.fill(np.float32(self.acc.total))

    def reset(self) -> None:
        self.acc.total = 0.0


class AliasingSave(ForgetfulLoad):
    """save_state hands out the live array instead of a copy: a later load restores nothing."""

    type_name = "planted.aliasing_save"

    def save_state(self) -> dict:
        return {"memory": self.memory}

    def load_state(self, state: dict) -> None:
        np.copyto(self.memory, state["memory"])


class RaisesOnZero(Clean):
    """Reads the last frame of the block: with 0 frames that is an index error."""

    type_name = "planted.raises_on_zero"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, ins.in_[:, frames - 1 : frames], out=outs.out)


@pytest.mark.parametrize(
    "node_cls, expected",
    [
        (HiddenInObject, "save_state() raised TypeError: `acc` holds a _Accumulator"),
        (AliasingSave, "after load_state the same input gave different output: block 0"),
    ],
)
def test_the_state_check_sees_state_the_snapshot_misses(node_cls, expected):
    report = run_contract_suite(node_cls, quick=True, checks=["state"])
    assert expected in report.failed("state")[0].message, str(report)


def test_the_zero_frames_check_sees_a_raise():
    report = run_contract_suite(RaisesOnZero, quick=True, checks=["zero_frames"])
    assert "process(ins, outs, 0) raised ValueError" in report.failed("zero_frames")[0].message, str(report)


def test_default_state_round_trip_restores_arrays_in_place():
    """The compiled plan holds references to a node's arrays: load_state must not rebind them."""
    from neuralgraph.testing import Harness

    h = Harness(ForgetfulLoad, {}, 48000, 64)
    memory = h.node.memory
    h.fill("normal")
    h.run()
    saved = Node.save_state(h.node)
    h.run()
    Node.load_state(h.node, saved)
    assert h.node.memory is memory and np.array_equal(memory, saved["memory"])
    saved["memory"][...] = 7.0  # the snapshot is a copy, not a view of the node
    assert not np.array_equal(memory, saved["memory"])


def test_load_state_refuses_a_state_of_another_shape():
    from neuralgraph.testing import Harness

    small = Harness(ForgetfulLoad, {}, 48000, 64, lanes=1).node
    big = Harness(ForgetfulLoad, {}, 48000, 64, lanes=3).node
    with pytest.raises(ValueError, match="does not fit the array of shape"):
        Node.load_state(big, Node.save_state(small))


def test_the_default_state_skips_code_and_constants_and_keeps_generators():
    import functools

    from neuralgraph._nodes.state import state_difference
    from neuralgraph.testing import Harness

    class Mixed(Clean):
        type_name = "planted.mixed_state"

        def prepare(self, ctx: PrepareContext) -> None:
            self.op = functools.partial(np.multiply, out=None)  # code
            self.table = np.linspace(0.0, 1.0, 8, dtype=np.float32)
            self.table.flags.writeable = False  # a constant
            self.rng = np.random.default_rng(3)
            self.held = [60, 64]

    node = Harness(Mixed, {}, 48000, 64).node
    saved = node.save_state()
    assert {"op", "table", "latency"}.isdisjoint(saved) and {"rng", "held", "gain"} <= set(saved)
    expected = node.rng.random()
    node.held.append(67)
    node.load_state(saved)
    assert node.rng.random() == expected and node.held == [60, 64]
    assert state_difference(saved, node.save_state()) is not None  # the generator moved on
