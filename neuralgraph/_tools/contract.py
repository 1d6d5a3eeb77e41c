"""The node contract suite: what every node type, built-in or third-party, must survive.

Run it on a node class with one call::

    from neuralgraph.testing import check_node
    check_node(MyNode)                 # raises ContractError listing every failed check

or get the report without raising with :func:`run_contract_suite`. The checks drive the node
directly, as the compiled plan does: instantiate, ``prepare`` with a :class:`PrepareContext`, then
``process`` with :class:`Ports` of numpy arrays of the shapes the engine uses (audio inputs
``(lanes, block)`` read-only, control inputs ``(lanes, 1)``, events inputs an
:class:`EventBuffer` filled with random MIDI). One check, the thread-safety one, runs the node
inside a small patch on a real :class:`~neuralgraph.Engine`.

A node class may define these hooks (all optional; docs/reliability.md has the details):

- ``contract_params()`` classmethod: a list of parameter dicts to test with (default ``[{}]``,
  the defaults), for nodes that need a file (a model, a table) to have any ports at all.
- ``contract_recovery_s`` (float, default 1.0): how long, in seconds of normal input after a NaN
  or Inf input ends, the node's output may stay non-finite. ``None`` declares that the node only
  recovers through ``reset()``; the suite then resets it and requires finite output at once.
- ``contract_latency_input`` (str, default ``"in"``): the audio input the latency check pulses.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from neuralgraph._nodes.events import CONTROL_CHANGE, NOTE_OFF, NOTE_ON, PITCH_BEND, EventBuffer
from neuralgraph._nodes.node import Node, Ports, PrepareContext
from neuralgraph._nodes.ports import Input, Output, Param, Rate

#: Every check the suite runs, in order.
CHECKS: tuple[str, ...] = (
    "construct",
    "metadata",
    "param_extremes",
    "prepare_grid",
    "hostile_inputs",
    "fp_warnings",
    "nonfinite_recovery",
    "no_subnormals",
    "automation",
    "thread_safety",
    "reset_determinism",
    "state",
    "zero_frames",
    "inputs_unchanged",
    "latency",
    "allocations",
    "kernel",
)
"""Every check the suite runs, in order (names for ``run_contract_suite(checks=...)``)."""

SAMPLE_RATES: tuple[int, ...] = (22050, 44100, 48000, 96000, 192000)
"""Sample rates of the full grid (``NEURALGRAPH_CONTRACT_FULL=1``)."""
BLOCK_SIZES: tuple[int, ...] = (1, 16, 64, 65, 128, 1024, 4096)
"""Block sizes of the full grid."""
#: The trimmed grid of ``quick=True``: both ends of each axis plus an odd size (the other checks
#: run at 48 kHz).
QUICK_SAMPLE_RATES: tuple[int, ...] = (22050, 192000)
"""Sample rates of the trimmed grid (``quick=True``)."""
QUICK_BLOCK_SIZES: tuple[int, ...] = (1, 65, 4096)
"""Block sizes of the trimmed grid."""

#: Lanes a node runs with when it does not fix its own count: more than one, to catch lane bugs.
DEFAULT_LANES = 2
#: Lane counts the prepare grid cycles through.
GRID_LANES = (1, 2, 3)
#: Inputs of the hostile-input check, in order.
STIMULI: tuple[str, ...] = ("silence", "noise", "dc", "dc_negative", "impulse", "spikes", "subnormal", "nan", "inf")
NON_FINITE_STIMULI = ("nan", "inf")
#: Stimuli whose output must also be free of subnormals (a node's own tails included).
CLEAN_STIMULI = ("silence", "noise", "dc", "dc_negative", "impulse")
SPIKE = 1.0e6
SUBNORMAL_INPUT = np.float32(1e-40)
TINY = np.finfo(np.float32).tiny  # smallest normal float32
DEFAULT_RECOVERY_S = 1.0
AUTOMATION_FRAMES = 32
EVENT_CAPACITY = 64
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@attrs.frozen
class ContractFailure:
    """One failed check: the node type, the check, the parameters used and what was observed."""

    node_type: str
    check: str
    message: str
    params: Mapping[str, Any] = attrs.field(factory=dict)

    def __str__(self) -> str:
        given = f" (params {dict(self.params)})" if self.params else ""
        return f"{self.node_type} [{self.check}]{given}: {self.message}"


@attrs.define
class ContractReport:
    """What :func:`run_contract_suite` found for one node class."""

    node_type: str
    checks: list[str] = attrs.field(factory=list)  # the checks run
    failures: list[ContractFailure] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)  # checks that did not apply, and why
    configurations: int = 0  # parameter sets tested

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed(self, check: str) -> list[ContractFailure]:
        """The failures of one check."""
        return [f for f in self.failures if f.check == check]

    def __str__(self) -> str:
        head = (
            f"{self.node_type}: {len(self.checks)} checks x {self.configurations} parameter set(s), "
            f"{len(self.failures)} failure(s)"
        )
        return "\n".join([head, *(f"  {f}" for f in self.failures), *(f"  note: {n}" for n in self.notes)])

    def raise_for_failures(self) -> None:
        """Raise :class:`ContractError` when any check failed."""
        if self.failures:
            raise ContractError(self)


class ContractError(AssertionError):
    """A node class broke its contract; ``report`` lists every failed check."""

    def __init__(self, report: ContractReport) -> None:
        self.report = report
        super().__init__(str(report))


class _CheckFailed(Exception):
    """Raised inside a check to record one observation and end that check."""


# ---- the harness: one prepared node and its ports ------------------------------------------
class Harness:
    """A prepared node with input and output buffers of the shapes the compiled plan uses.

    ``fill(kind, block)`` writes a stimulus into the inputs; ``run()`` processes one block and
    returns the list of output arrays. Inputs are handed to the node as read-only views of
    buffers the harness owns, so the harness can also see writes that bypass the flag.
    """

    def __init__(
        self,
        node_cls: type[Node],
        params: Mapping[str, Any],
        sample_rate: float,
        block_size: int,
        seed: int = 0,
        lanes: int | None = None,
    ) -> None:
        self.node = node = node_cls(**params)
        self.sample_rate, self.block_size = float(sample_rate), int(block_size)
        self.lanes = lanes = node.fixed_lanes() or lanes or DEFAULT_LANES
        self.in_decls: dict[str, Input] = dict(node.inputs())
        self.out_decls: dict[str, Output] = dict(node.outputs())
        out_lanes = dict(node.output_lanes(lanes))
        ctx = PrepareContext(
            sample_rate=self.sample_rate,
            block_size=self.block_size,
            lanes=lanes,
            input_lanes={p: lanes for p in self.in_decls},
            output_lanes=out_lanes,
            node_name="under_test",
            patch_dir=Path.cwd(),
        )
        node.prepare(ctx)
        self.rng = np.random.default_rng(seed)
        self.buffers: dict[str, np.ndarray] = {}
        self.events: dict[str, EventBuffer] = {}
        views: dict[str, Any] = {}
        for name, decl in self.in_decls.items():
            if decl.rate is Rate.EVENTS:
                self.events[name] = views[name] = EventBuffer(EVENT_CAPACITY)
                continue
            width = 1 if decl.rate is Rate.CONTROL else self.block_size
            buf = np.full((lanes, width), decl.init, np.float32)
            self.buffers[name] = buf
            view = buf.view()
            view.flags.writeable = False
            views[name] = view
        outs: dict[str, Any] = {}
        self.outputs: dict[str, np.ndarray] = {}
        for name, decl in self.out_decls.items():
            if decl.rate is Rate.EVENTS:
                outs[name] = EventBuffer(EVENT_CAPACITY)
                continue
            width = 1 if decl.rate is Rate.CONTROL else self.block_size
            outs[name] = self.outputs[name] = np.zeros((out_lanes.get(name, lanes), width), np.float32)
        self.ins, self.outs = Ports(views), Ports(outs)
        self.notes_on: list[int] = []

    # ---- stimuli ---------------------------------------------------------------------------
    def fill(self, kind: str, block: int = 0, only: str | None = None) -> None:
        """Write stimulus ``kind`` for block number ``block`` into every signal input (or ``only``).

        ``normal`` is each input's init plus full-scale noise, held within its declared range: what a
        sensible patch delivers. The other kinds write raw values, in or out of range, because a
        connected input can carry anything the source node emits.
        """
        rng = self.rng
        for name, buf in self.buffers.items():
            if only is not None and name != only:
                continue
            decl = self.in_decls[name]
            w = buf.shape[1]
            if kind == "normal":
                buf[...] = decl.init + rng.uniform(-1.0, 1.0, buf.shape)
                if decl.min is not None or decl.max is not None:
                    np.clip(buf, decl.min, decl.max, out=buf)
            elif kind == "init":
                buf.fill(decl.init)
            elif kind == "silence":
                buf.fill(0.0)
            elif kind == "noise":
                buf[...] = rng.uniform(-1.0, 1.0, buf.shape)
            elif kind == "dc":
                buf.fill(1.0)
            elif kind == "dc_negative":
                buf.fill(-1.0)
            elif kind == "impulse":
                buf.fill(0.0)
                if block == 0:
                    buf[:, 0] = 1.0
            elif kind == "spikes":
                buf.fill(0.0)
                buf[:, 0] = SPIKE
                buf[:, w // 2] = -SPIKE
            elif kind == "subnormal":
                buf.fill(SUBNORMAL_INPUT)
                buf[:, ::2] = -SUBNORMAL_INPUT
            elif kind == "nan":
                buf[...] = rng.uniform(-1.0, 1.0, buf.shape)
                buf[:, w // 2] = np.nan
            elif kind == "inf":
                buf[...] = rng.uniform(-1.0, 1.0, buf.shape)
                buf[:, 0] = np.inf
                buf[:, w - 1] = -np.inf
            else:  # pragma: no cover - a programming error in the suite
                raise ValueError(f"unknown stimulus {kind!r}")
        self.fill_events()

    def fill_events(self) -> None:
        """Random MIDI for every events input: notes on and off, a controller, a pitch bend."""
        if not self.events:
            return
        rng = self.rng
        frames = np.sort(rng.integers(0, self.block_size, 6))
        for buf in self.events.values():
            buf.clear()
        for k, frame in enumerate(frames):
            roll = rng.random()
            if roll < 0.4 or not self.notes_on:
                note = int(rng.integers(24, 100))
                self.notes_on.append(note)
                msg = (NOTE_ON, note, int(rng.integers(1, 128)))
            elif roll < 0.75:
                msg = (NOTE_OFF, self.notes_on.pop(0), 0)
            elif roll < 0.9:
                msg = (CONTROL_CHANGE, int(rng.integers(0, 128)), int(rng.integers(0, 128)))
            else:
                msg = (PITCH_BEND, int(rng.integers(0, 128)), int(rng.integers(0, 128)))
            for buf in self.events.values():
                buf.push(int(frame), *msg)

    # ---- running ---------------------------------------------------------------------------
    def run(self) -> list[np.ndarray]:
        """Process one block of ``block_size`` frames; the output arrays (reused)."""
        self.node.process(self.ins, self.outs, self.block_size)
        return list(self.outputs.values())

    def snapshot(self) -> list[np.ndarray]:
        return [a.copy() for a in self.outputs.values()]


def _bad_values(arrays: Iterable[np.ndarray], names: Sequence[str]) -> str | None:
    """A description of the first non-finite value in ``arrays``, or None."""
    for name, a in zip(names, arrays):
        finite = np.isfinite(a)
        if not finite.all():
            lane, frame = np.argwhere(~finite)[0]
            return f"output `{name}` is {a[lane, frame]} at lane {lane}, frame {frame}"
    return None


def _subnormals(arrays: Iterable[np.ndarray], names: Sequence[str]) -> str | None:
    for name, a in zip(names, arrays):
        mag = np.abs(a)
        sub = (mag < TINY) & (mag > 0)
        if sub.any():
            lane, frame = np.argwhere(sub)[0]
            return f"output `{name}` holds {int(sub.sum())} subnormal(s), e.g. {a[lane, frame]:.3g} at lane {lane}, frame {frame}"
    return None


def _process(h: Harness, where: str) -> list[np.ndarray]:
    try:
        return h.run()
    except Exception as exc:
        raise _CheckFailed(f"process raised {type(exc).__name__}: {exc} ({where})") from exc


# ---- the checks --------------------------------------------------------------------------------
@attrs.define
class _Context:
    node_cls: type[Node]
    params: dict[str, Any]
    quick: bool
    seed: int
    report: ContractReport
    failures: list[tuple[str, str]] = attrs.field(factory=list)

    def fail(self, check: str, message: str) -> None:
        if all(check != done for done, _ in self.failures):  # the first observation per check says enough
            self.failures.append((check, message))

    def harness(
        self,
        sample_rate: float = 48000,
        block_size: int = 256,
        seed: int | None = None,
        params: Mapping[str, Any] | None = None,
        lanes: int | None = None,
    ) -> Harness:
        return Harness(
            self.node_cls,
            self.params if params is None else params,
            sample_rate,
            block_size,
            self.seed if seed is None else seed,
            lanes,
        )


def _check_construct(c: _Context) -> None:
    try:
        node = c.node_cls(**c.params)
    except Exception as exc:
        raise _CheckFailed(f"construction raised {type(exc).__name__}: {exc}") from exc
    try:
        repr(node)
        text = node.describe()
    except Exception as exc:
        raise _CheckFailed(f"repr/describe raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(text, str):
        raise _CheckFailed(f"describe() returned {type(text).__name__}, not a string")
    if not TYPE_NAME.match(getattr(c.node_cls, "type_name", "") or ""):
        raise _CheckFailed(f"type_name {c.node_cls.type_name!r} is not `namespace.kind` in snake_case")
    outs = node.outputs()
    if outs and node.main_output not in outs:
        raise _CheckFailed(f"main_output {node.main_output!r} is not one of the outputs {list(outs)}")


def _check_port_naming(where: str, name: str, unit: object, problems: list[str]) -> None:
    if not NAME.match(name):
        problems.append(f"{where}: name is not snake_case")
    if not isinstance(unit, str):
        problems.append(f"{where}: unit {unit!r} is not a string")


def _check_metadata(c: _Context) -> None:
    node = c.node_cls(**c.params)
    problems: list[str] = []
    for name, p in c.node_cls.params().items():
        where = f"param `{name}`"
        if not NAME.match(name):
            problems.append(f"{where}: name is not snake_case")
        if p.kind not in (float, int, str, bool, dict):
            problems.append(f"{where}: kind {p.kind!r} is not float, int, str, bool or dict")
        if not isinstance(p.unit, str):
            problems.append(f"{where}: unit {p.unit!r} is not a string")
        if p.min is not None and p.max is not None and not p.min <= p.max:
            problems.append(f"{where}: min {p.min} > max {p.max}")
        if p.choices is not None:
            if not all(isinstance(x, str) for x in p.choices):
                problems.append(f"{where}: choices {p.choices!r} are not all strings")
            if p.init not in p.choices:
                problems.append(f"{where}: init {p.init!r} is not one of the choices {p.choices!r}")
        try:
            p.coerce(p.init)
        except ValueError as exc:
            problems.append(f"{where}: init {p.init!r} {exc}")
    for name, i in node.inputs().items():
        where = f"input `{name}`"
        _check_port_naming(where, name, i.unit, problems)
        if not isinstance(i.rate, Rate):
            problems.append(f"{where}: rate {i.rate!r} is not a Rate")
        if not math.isfinite(i.init):
            problems.append(f"{where}: init {i.init} is not finite")
        elif i.rate is not Rate.EVENTS and (reason := i.check(i.init)):
            problems.append(f"{where}: init {i.init:g} {reason}")
        if i.min is not None and i.max is not None and not i.min <= i.max:
            problems.append(f"{where}: min {i.min} > max {i.max}")
        if not (math.isfinite(i.ramp_ms) and i.ramp_ms >= 0):
            problems.append(f"{where}: ramp_ms {i.ramp_ms} is not a finite number >= 0")
    for name, o in node.outputs().items():
        where = f"output `{name}`"
        _check_port_naming(where, name, o.unit, problems)
        lo, hi = o.span
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            problems.append(f"{where}: span {o.span} is not two finite numbers lo < hi")
    clash = set(node.inputs()) & set(c.node_cls.params())
    if clash:
        problems.append(f"names used both as input and parameter: {sorted(clash)}")
    if problems:
        raise _CheckFailed("; ".join(problems))


def _check_param_extremes(c: _Context) -> None:
    """Each parameter that cannot change while running, at each end of its range (each choice, the
    other boolean), builds, prepares and runs with finite output; a ValueError refusing the value
    is a clear error for the user (the loader reports it as NG117) and is only noted."""
    variants: list[tuple[str, Any]] = []
    for name, p in c.node_cls.params().items():
        if p.live or p.path or name in c.params:
            continue  # live ones are covered by automation; configured ones stay as configured
        if p.kind is bool:
            values: list[Any] = [not p.init]
        elif p.kind is str:
            values = [x for x in (p.choices or ()) if x != p.init]
        else:
            values = [v for v in (p.min, p.max) if v is not None and v != p.init]
        variants.extend((name, p.kind(v) if p.kind is int else v) for v in values)
    for name, value in variants:
        where = f"{name} = {value!r} (48000 Hz, block 256)"
        try:
            h = c.harness(48000, 256, params={**c.params, name: value})
        except ValueError as exc:
            c.report.notes.append(f"param_extremes: {c.report.node_type} refuses {name} = {value!r}: {exc}")
            continue
        except Exception as exc:
            raise _CheckFailed(f"building or preparing with {where} raised {type(exc).__name__}: {exc}") from exc
        names = list(h.outputs)
        for b in range(3):
            h.fill("normal", b)
            bad = _bad_values(_process(h, where), names)
            if bad:
                raise _CheckFailed(f"{bad} in block {b} of normal input with {where}")


def _grid(quick: bool) -> list[tuple[int, int]]:
    rates, blocks = (QUICK_SAMPLE_RATES, QUICK_BLOCK_SIZES) if quick else (SAMPLE_RATES, BLOCK_SIZES)
    return [(sr, bs) for sr in rates for bs in blocks]


def _check_prepare_grid(c: _Context) -> None:
    for k, (sr, bs) in enumerate(_grid(c.quick)):
        lanes = GRID_LANES[k % len(GRID_LANES)]  # lane counts vary too (unless the node fixes its own)
        where = f"{sr} Hz, block {bs}, {lanes} lane(s) asked"
        try:
            h = c.harness(sr, bs, lanes=lanes)
        except Exception as exc:
            raise _CheckFailed(f"prepare raised {type(exc).__name__}: {exc} ({where})") from exc
        names = list(h.outputs)
        for b in range(max(2, -(-256 // bs))):  # at least two blocks and 256 frames
            h.fill("normal", b)
            bad = _bad_values(_process(h, where), names)
            if bad:
                raise _CheckFailed(f"{bad} in block {b} of normal input ({where})")


def _recovery_blocks(c: _Context, h: Harness) -> int | None:
    seconds = getattr(c.node_cls, "contract_recovery_s", DEFAULT_RECOVERY_S)
    if seconds is None:
        return None
    return max(1, math.ceil(float(seconds) * h.sample_rate / h.block_size))


def _check_hostile_inputs(c: _Context) -> None:
    """Finite inputs of any size give finite outputs; subnormal checks go to no_subnormals."""
    for kind in STIMULI:
        if kind in NON_FINITE_STIMULI:
            continue
        h = c.harness()
        names = list(h.outputs)
        for b in range(6):  # 2 blocks of normal input, 3 of the stimulus, 1 normal again
            stim = kind if 2 <= b < 5 else "normal"
            h.fill(stim, b - 2)
            where = f"{kind} input, block {b} (48000 Hz, block 256)"
            out = _process(h, where)
            bad = _bad_values(out, names)
            if bad:
                raise _CheckFailed(f"{bad} with {where}")
            if kind in CLEAN_STIMULI:
                sub = _subnormals(out, names)
                if sub:
                    c.fail("no_subnormals", f"{sub} with {where}")


def _check_fp_warnings(c: _Context) -> None:
    """Finite inputs never make numpy warn (overflow, invalid value, division by zero): in the
    audio thread a warning is I/O, written to stderr, even when the output ends up finite."""
    import warnings

    for kind in ("normal", *(k for k in STIMULI if k not in NON_FINITE_STIMULI)):
        h = c.harness()
        for b in range(3):
            h.fill(kind, b)
            with (
                warnings.catch_warnings(record=True) as caught,
                np.errstate(over="warn", invalid="warn", divide="warn"),
            ):
                warnings.simplefilter("always")
                _process(h, f"{kind} input, block {b}")
            fp = [w for w in caught if issubclass(w.category, RuntimeWarning)]
            if fp:
                w = fp[0]
                raise _CheckFailed(
                    f'numpy warned "{w.message}" ({Path(w.filename).name}:{w.lineno}) with {kind} '
                    f"input, block {b}: in the audio thread that is a write to stderr"
                )


def _check_nonfinite_recovery(c: _Context) -> None:
    """After NaN or Inf on the inputs, normal input brings finite output back (state not poisoned)."""
    for kind in NON_FINITE_STIMULI:
        h = c.harness()
        names = list(h.outputs)
        for b in range(2):
            h.fill("normal", b)
            _process(h, f"normal input before {kind}")
        h.fill(kind)
        with np.errstate(all="ignore"):  # numpy's "invalid value" warnings are expected here
            _process(h, f"{kind} input")  # the output may be non-finite while the input is
        limit = _recovery_blocks(c, h)
        if limit is None:
            try:
                h.node.reset()
            except Exception as exc:
                raise _CheckFailed(f"reset() raised {type(exc).__name__}: {exc}") from exc
            limit = 1
        recovered_at = None
        for b in range(limit + 4):
            h.fill("normal", b)
            bad = _bad_values(_process(h, f"normal input after {kind}"), names)
            if bad is None and recovered_at is None:
                recovered_at = b
            elif bad is not None and recovered_at is not None:
                raise _CheckFailed(
                    f"after {kind} input the output was finite at block {recovered_at} but then {bad} at block {b}"
                )
            if recovered_at is None and b + 1 >= limit:
                seconds = getattr(c.node_cls, "contract_recovery_s", DEFAULT_RECOVERY_S)
                allowed = "right after reset()" if seconds is None else f"within {seconds} s"
                raise _CheckFailed(
                    f"{kind} on the inputs poisons the state: {bad} {b + 1} blocks "
                    f"({(b + 1) * h.block_size} frames) after the input became normal "
                    f"(recovery allowed {allowed}; 48000 Hz, block 256)"
                )
            if recovered_at is not None and b >= recovered_at + 4:
                break


def _check_no_subnormals(c: _Context) -> None:
    """An impulse, then 2 s of silence: the decaying tail never turns subnormal."""
    h = c.harness(48000, 4096)
    names = list(h.outputs)
    for b in range(24):
        h.fill("impulse", b)
        sub = _subnormals(_process(h, "impulse then silence"), names)
        if sub:
            raise _CheckFailed(f"{sub} in block {b} after an impulse into silence (48000 Hz, block 4096)")


def _random_value(p: Param, rng: np.random.Generator) -> Any:
    if p.kind is bool:
        return bool(rng.integers(0, 2))
    if p.kind is str:
        return p.choices[int(rng.integers(0, len(p.choices)))]
    lo, hi = p.min, p.max
    if p.kind is int:
        lo = math.ceil(lo) if lo is not None else int(p.init) - 16
        hi = math.floor(hi) if hi is not None else int(p.init) + 16
        return int(rng.integers(lo, hi + 1))
    init = float(p.init)
    if lo is None and hi is None:
        return init + float(rng.normal()) * max(1.0, abs(init))
    if lo is None:
        lo = hi - max(1.0, abs(hi - init) * 2)
    if hi is None:
        hi = lo + max(1.0, abs(init - lo) * 2)
    roll = rng.random()
    if roll < 0.1:
        return float(lo)
    if roll < 0.2:
        return float(hi)
    if lo > 0 and hi / lo > 1000:  # wide positive ranges: log-uniform, so every decade is visited
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def _automatable(node_cls: type[Node]) -> dict[str, Param]:
    return {n: p for n, p in node_cls.params().items() if p.live and not p.path and (p.kind is not str or p.choices)}


def _set_param(node: Node, name: str, decl: Param, value: Any) -> None:
    """What the engine does for a live parameter: store the coerced value, call on_param."""
    node.__dict__[name] = decl.coerce(value)
    node.on_param(name)


def _check_automation(c: _Context) -> None:
    params = _automatable(c.node_cls)
    if not params:
        c.report.notes.append(f"automation: {c.report.node_type} has no live parameters")
        return
    h = c.harness(48000, AUTOMATION_FRAMES)
    names = list(h.outputs)
    items = list(params.items())
    for b in range(256):
        for _ in range(int(h.rng.integers(1, min(10, len(items)) + 1))):
            name, decl = items[int(h.rng.integers(0, len(items)))]
            value = _random_value(decl, h.rng)
            try:
                _set_param(h.node, name, decl, value)
            except Exception as exc:
                raise _CheckFailed(f"setting {name} = {value!r} raised {type(exc).__name__}: {exc}") from exc
        h.fill("normal", b)
        current = {n: h.node.__dict__.get(n) for n in params}
        out = _process(h, f"block {b} of automation")
        bad = _bad_values(out, names)
        if bad:
            raise _CheckFailed(
                f"{bad} in block {b} of automation every {AUTOMATION_FRAMES} frames, parameters {current}"
            )
        sub = _subnormals(out, names)
        if sub:
            c.fail("no_subnormals", f"{sub} in block {b} of automation, parameters {current}")


# ---- thread safety: the node inside a real engine -------------------------------------------
class _ContractSource(Node):
    """Deterministic full-scale noise (the suite's own source node)."""

    type_name = "contract.source"
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.noise = np.random.default_rng(1).uniform(-1, 1, (64, ctx.block_size)).astype(np.float32)
        self.k = 0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.copyto(outs.out, self.noise[self.k % 64])
        self.k += 1


class _ContractSink(Node):
    """The patch output of the thread-safety check; counts non-finite values it is fed."""

    type_name = "contract.sink"
    role = "output"
    in_ = Input()
    out = Output()

    def prepare(self, ctx: PrepareContext) -> None:
        self.non_finite = 0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if not np.isfinite(ins.in_).all():  # allocates: this test node is not held to the contract
            self.non_finite += 1
        np.copyto(outs.out, ins.in_)


def _check_thread_safety(c: _Context) -> None:
    """The node in an engine keeps playing clean while a second thread sets its parameters and
    inputs: build a patch around it, pick what is settable, hammer it while playing, judge."""
    node = c.node_cls(**c.params)
    signal_outs = [n for n, o in node.outputs().items() if o.rate is not Rate.EVENTS]
    if not signal_outs:
        c.report.notes.append(f"thread_safety: {c.report.node_type} has no signal output to play")
        return
    engine = _engine_around(c, node, signal_outs)
    targets = _settable(c, node, engine)
    if not targets:
        c.report.notes.append(f"thread_safety: {c.report.node_type} has nothing settable while running")
        return
    blocks, sets, errors = _play_while_setting(c, engine, targets)
    if errors:
        raise _CheckFailed(f"engine.set from a second thread raised {type(errors[0]).__name__}: {errors[0]}")
    faults = engine.faults()
    if faults:
        raise _CheckFailed(
            f"the node faulted in the engine while a second thread set parameters "
            f"({sets} sets, {blocks} blocks): {type(faults[0].error).__name__}: {faults[0].error}"
        )
    sink = engine.plan.nodes.get("sink") or engine.plan.nodes["dut"]
    if getattr(sink, "non_finite", 0):
        raise _CheckFailed(
            f"{sink.non_finite} of {blocks} blocks carried NaN or Inf while a second thread "
            f"set parameters ({sets} sets)"
        )


def _engine_around(c: _Context, node: Node, signal_outs: list[str]) -> Any:
    """An engine of ``source -> node -> sink`` (the node as ``dut``), ceiling off."""
    from neuralgraph._errors import NeuralgraphError
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._plugins.registry import Registry
    from neuralgraph._runtime.engine import Engine

    registry = Registry()
    for cls in (_ContractSource, _ContractSink):
        registry.register_node(cls)
    registry.register_node(c.node_cls, c.node_cls.type_name, plugin="<contract>")
    table: dict[str, Any] = {"type": c.node_cls.type_name, **c.params}
    if "in" in node.inputs() and node.inputs()["in"].rate is Rate.AUDIO:
        table["in"] = "src"
    nodes: dict[str, Any] = {"src": {"type": "contract.source"}, "dut": table}
    main = signal_outs[0] if node.main_output not in signal_outs else node.main_output
    if c.node_cls.role != "output":
        nodes["sink"] = {"type": "contract.sink", "in": f"dut.{main}"}
    try:
        # the parameters come from the test's author, not from a shared patch: files may be anywhere
        patch = load_patch({"schema": 1, "nodes": nodes}, registry=registry, allow_outside=True)
        return Engine(patch, sample_rate=48000, block_size=AUTOMATION_FRAMES, ceiling=math.inf)
    except NeuralgraphError as exc:
        raise _CheckFailed(f"a patch of the node does not build: {exc}") from exc


def _settable(c: _Context, node: Node, engine: Any) -> list[tuple[str, Callable[[np.random.Generator], Any]]]:
    """``(target, random value maker)`` for the node's live parameters and unconnected inputs."""
    targets: list[tuple[str, Callable[[np.random.Generator], Any]]] = []
    for name, decl in _automatable(c.node_cls).items():
        targets.append((f"dut.{name}", lambda rng, d=decl: _random_value(d, rng)))
    for key in engine.targets:
        if key.startswith("dut.") and key not in dict(targets):
            decl = node.inputs().get(key[4:])
            if decl is not None:
                lo = decl.min if decl.min is not None else decl.init - 1.0
                hi = decl.max if decl.max is not None else decl.init + 1.0
                targets.append((key, lambda rng, lo=lo, hi=hi: float(rng.uniform(lo, hi))))
    return targets


def _play_while_setting(
    c: _Context, engine: Any, targets: list[tuple[str, Callable[[np.random.Generator], Any]]]
) -> tuple[int, int, list[BaseException]]:
    """Play blocks (with notes) while a second thread calls ``engine.set`` at random; returns
    ``(blocks played, sets made, errors the setter raised)``."""
    from neuralgraph._errors import ParameterError

    stop = threading.Event()
    errors: list[BaseException] = []
    sets = [0]

    def hammer() -> None:
        rng = np.random.default_rng(c.seed + 7)
        try:
            while not stop.is_set():
                key, make = targets[int(rng.integers(0, len(targets)))]
                try:
                    engine.set(key, make(rng))
                    sets[0] += 1
                except ParameterError as exc:
                    if "pending" not in str(exc):
                        raise
                    time.sleep(0.0005)  # the ring is full: let the audio loop drain it
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the two threads finely
    thread = threading.Thread(target=hammer, name="contract-setter", daemon=True)
    thread.start()
    blocks = 0
    try:
        quota_at = None
        while blocks < 5000 and not errors:
            if blocks % 8 == 0:
                engine.note_on(48 + blocks % 24, 100)
            elif blocks % 8 == 5:
                engine.note_off(48 + (blocks - 5) % 24)
            engine.process()
            blocks += 1
            if quota_at is None and blocks >= 300 and sets[0] >= 200:
                quota_at = blocks
            if quota_at is not None and blocks >= quota_at + 64:  # the last changes land (and ramp)
                break
    finally:
        stop.set()
        thread.join(10.0)
        sys.setswitchinterval(previous)
    return blocks, sets[0], errors


def _run_sequence(h: Harness, blocks: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for b in range(blocks):
        h.fill("normal", b)
        _process(h, f"block {b}")
        out.extend(h.snapshot())
    return out


def _check_reset_determinism(c: _Context) -> None:
    h = c.harness(48000, 256)
    first = _run_sequence(h, 8)
    try:
        h.node.reset()
    except Exception as exc:
        raise _CheckFailed(f"reset() raised {type(exc).__name__}: {exc}") from exc
    h.rng = np.random.default_rng(c.seed)
    h.notes_on.clear()
    second = _run_sequence(h, 8)
    per_block = max(1, len(h.outputs))
    for k, (a, b) in enumerate(zip(first, second)):
        if not np.array_equal(a, b, equal_nan=True):
            diff = np.abs(a.astype(np.float64) - b)
            raise _CheckFailed(
                f"after reset() the same input gave different output: block {k // per_block}, "
                f"output `{list(h.outputs)[k % per_block]}`, largest difference {np.nanmax(diff):.3g}"
            )


def _compare_runs(first: list[np.ndarray], second: list[np.ndarray], outputs: Sequence[str]) -> str | None:
    """Where two runs' outputs first differ (bit-exact, NaN equals NaN), or None."""
    per_block = max(1, len(outputs))
    for k, (a, b) in enumerate(zip(first, second)):
        if not np.array_equal(a, b, equal_nan=True):
            with np.errstate(invalid="ignore"):
                diff = np.abs(a.astype(np.float64) - b)
            return (
                f"block {k // per_block}, output `{list(outputs)[k % per_block]}`, largest difference "
                f"{np.nanmax(diff) if np.isfinite(diff).any() else np.inf:.3g}"
            )
    return None


def _save(h: Harness, when: str) -> dict[str, Any]:
    try:
        return h.node.save_state()
    except Exception as exc:
        raise _CheckFailed(f"save_state() raised {type(exc).__name__}: {exc} ({when})") from exc


def _check_state(c: _Context) -> None:
    """save_state after k blocks; m more blocks give A; load_state, the same m blocks give B:
    A == B bit for bit. Two saves in a row are identical, and a save right after load_state
    equals the state loaded."""
    from neuralgraph._nodes.state import state_difference

    h = c.harness(48000, 256)
    _run_sequence(h, 4)
    saved = _save(h, "after 4 blocks")
    again = _save(h, "a second save in a row")
    diff = state_difference(saved, again)
    if diff:
        raise _CheckFailed(f"two saves in a row differ at {diff}")
    notes = list(h.notes_on)
    h.rng = np.random.default_rng(c.seed + 101)
    first = _run_sequence(h, 4)
    try:
        h.node.load_state(saved)
    except Exception as exc:
        raise _CheckFailed(f"load_state() raised {type(exc).__name__}: {exc}") from exc
    restored = _save(h, "right after load_state")
    diff = state_difference(saved, restored)
    if diff:
        raise _CheckFailed(f"load_state did not restore what save_state saved: {diff}")
    h.rng = np.random.default_rng(c.seed + 101)
    h.notes_on[:] = notes
    second = _run_sequence(h, 4)
    where = _compare_runs(first, second, list(h.outputs))
    if where:
        raise _CheckFailed(
            f"after load_state the same input gave different output: {where} (state saved after "
            f"4 blocks; 48000 Hz, block 256): state the snapshot misses, or a load that does "
            f"not restore"
        )


def _check_zero_frames(c: _Context) -> None:
    """process(ins, outs, 0) neither raises nor changes state: the blocks after it match a run
    without it, bit for bit. (The engine never calls a node with 0 frames; this is the rule
    for everyone else who drives a node.)"""
    from neuralgraph._nodes.state import state_difference

    called, plain = c.harness(48000, 256), c.harness(48000, 256)
    _run_sequence(called, 3)
    _run_sequence(plain, 3)
    for events in called.events.values():
        events.clear()  # a 0-frame block has no frame for an event to sit on
    try:
        before: dict[str, Any] | None = called.node.save_state()
    except Exception:  # noqa: BLE001 - a save that fails is the state check's finding
        before = None
    try:
        called.node.process(called.ins, called.outs, 0)
    except Exception as exc:
        raise _CheckFailed(f"process(ins, outs, 0) raised {type(exc).__name__}: {exc}") from exc
    if before is not None:
        diff = state_difference(before, called.node.save_state())
        if diff:
            raise _CheckFailed(f"a block of 0 frames changed the node's state: {diff}")
    a = _run_sequence(called, 4)
    b = _run_sequence(plain, 4)
    where = _compare_runs(b, a, list(called.outputs))
    if where:
        raise _CheckFailed(
            f"a block of 0 frames changed the node's state: the following blocks differ from a run "
            f"without it at {where} (48000 Hz, block 256)"
        )


def _check_inputs_unchanged(c: _Context) -> None:
    h = c.harness(48000, 256)
    for b in range(4):
        h.fill("normal", b)
        before = {n: buf.copy() for n, buf in h.buffers.items()}
        events = {
            n: (e.count, e.frame.copy(), e.status.copy(), e.data1.copy(), e.data2.copy()) for n, e in h.events.items()
        }
        try:
            h.run()
        except ValueError as exc:
            if "read-only" in str(exc):
                raise _CheckFailed(f"process tried to write into an input: {exc}") from exc
            raise _CheckFailed(f"process raised ValueError: {exc}") from exc
        except Exception as exc:
            raise _CheckFailed(f"process raised {type(exc).__name__}: {exc}") from exc
        for name, buf in h.buffers.items():
            if not np.array_equal(buf, before[name], equal_nan=True):
                raise _CheckFailed(f"process wrote into its input `{name}` (block {b})")
        for name, e in h.events.items():
            count, *arrays = events[name]
            now = (e.frame, e.status, e.data1, e.data2)
            if e.count != count or not all(np.array_equal(x[:count], y[:count]) for x, y in zip(arrays, now)):
                raise _CheckFailed(f"process changed its events input `{name}` (block {b})")


def _check_latency(c: _Context) -> None:
    port = getattr(c.node_cls, "contract_latency_input", "in")
    probe = c.node_cls(**c.params)
    decl = probe.inputs().get(port)
    audio_outs = [n for n, o in probe.outputs().items() if o.rate is Rate.AUDIO]
    if decl is None or decl.rate is not Rate.AUDIO or not audio_outs:
        c.report.notes.append(f"latency: {c.report.node_type} has no audio input `{port}` and audio output")
        return
    bs = 64
    pulsed, still = c.harness(48000, bs), c.harness(48000, bs)
    declared = int(pulsed.node.latency)
    blocks = -(-(declared + 512) // bs)
    onset = None
    for b in range(blocks):
        for h in (pulsed, still):
            h.fill("init", b)
        pulsed.fill("impulse", b, only=port)
        still.fill("silence", b, only=port)
        a = [x.copy() for x in _process(pulsed, "impulse")]
        z = _process(still, "silence")
        for x, y in zip(a, z):
            differs = np.flatnonzero((x != y).any(axis=0))
            if differs.size:
                first = b * bs + int(differs[0])
                onset = first if onset is None else min(onset, first)
        if onset is not None:
            break
    if onset is None:
        c.report.notes.append(
            f"latency: {c.report.node_type} did not respond to an impulse on `{port}` within {blocks * bs} samples"
        )
        return
    if onset != declared:
        raise _CheckFailed(
            f"declared latency {declared} samples but an impulse on `{port}` reaches the output "
            f"after {onset} samples (48000 Hz, block {bs})"
        )


def _check_allocations(c: _Context) -> None:
    from neuralgraph._tools.allocations import DEFAULT_TOLERANCE, array_allocations, measure_allocations

    h = c.harness(48000, 4096)
    h.fill("normal", 0)
    node, ins, outs, frames = h.node, h.ins, h.outs, h.block_size

    def run() -> None:
        node.process(ins, outs, frames)

    calls, warmup = (10, 5) if c.quick else (20, 10)
    try:
        worst, net = measure_allocations(run, calls=calls, warmup=warmup)
        arrays = array_allocations(run, calls=calls)
    except Exception as exc:
        raise _CheckFailed(f"process raised {type(exc).__name__}: {exc}") from exc
    if arrays:
        raise _CheckFailed(
            f"process made a numpy array of {max(arrays)} bytes in {len(arrays)} of {calls} blocks "
            f"after warm-up (48000 Hz, block 4096, {h.lanes} lanes)"
        )
    if worst > DEFAULT_TOLERANCE:
        raise _CheckFailed(
            f"process allocated up to {worst} bytes within one block after warm-up "
            f"(tolerance {DEFAULT_TOLERANCE}; 48000 Hz, block 4096, {h.lanes} lanes)"
        )
    if net > DEFAULT_TOLERANCE:
        raise _CheckFailed(f"memory grew by {net} bytes over {calls} blocks (tolerance {DEFAULT_TOLERANCE})")


def _check_kernel(c: _Context) -> None:
    """A node that offers ``kernel()`` (fusion): ``dispatcher(*args, frames)`` (or its source
    lines compiled alone, escapes answered) gives what ``process`` gives, block after block, and
    ``reset()`` keeps the bound arrays."""
    from neuralgraph._compile.fusion import _args, kernel_of

    ref, h = c.harness(48000, 256), c.harness(48000, 256)
    try:
        offered = h.node.kernel(h.ins, h.outs)
    except Exception as exc:
        raise _CheckFailed(f"kernel() raised {type(exc).__name__}: {exc}") from exc
    if offered is None:
        return
    usable = kernel_of(h.node, h.ins, h.outs)
    if usable is None:
        raise _CheckFailed(
            "kernel() offers something the compiler cannot fuse: it must return (a module-level "
            "numba @njit function, a tuple of C-contiguous numeric arrays and finite scalars)"
        )
    run = _kernel_runner(usable)
    args = _args(usable)
    for b in range(8):
        ref.fill("normal", b)
        h.fill("normal", b)
        expected = _process(ref, f"block {b}")
        try:
            run(h.block_size)
        except Exception as exc:
            raise _CheckFailed(f"the kernel raised {type(exc).__name__}: {exc} (block {b})") from exc
        for name, want in zip(h.outputs, expected):
            got = h.outputs[name]
            if not np.allclose(want, got, rtol=1e-5, atol=1e-6, equal_nan=True):
                diff = np.nanmax(np.abs(want.astype(np.float64) - got))
                raise _CheckFailed(
                    f"the kernel's output `{name}` differs from process(): block {b}, largest difference {diff:.3g}"
                )
    h.node.reset()
    again = kernel_of(h.node, h.ins, h.outs)
    if again is None or [id(a) for a in _args(again) if isinstance(a, np.ndarray)] != [
        id(a) for a in args if isinstance(a, np.ndarray)
    ]:
        raise _CheckFailed(
            "after reset() kernel() binds other arrays: reset must fill state arrays, not replace "
            "them (a fused kernel holds their addresses)"
        )


def _kernel_runner(member: Any) -> Callable[[int], None]:
    """``run(frames)``: a ``(dispatcher, args)`` kernel called, or source lines (an
    ``EscapeKernel``) compiled alone as the fusion pass would and run, each escape's call made."""
    from neuralgraph._compile.fusion import PROGRESS, _build
    from neuralgraph._nodes.escape import EscapeKernel

    if not isinstance(member, EscapeKernel):
        dispatcher, args = member
        return lambda frames: dispatcher(*args, frames)
    progress = np.zeros(PROGRESS, np.int64)
    function, addresses, _, _ = _build([member], progress)

    def run(frames: int) -> None:
        function(addresses, frames)
        while progress[1]:
            member.call()
            function(addresses, frames)

    return run


_RUNNERS: dict[str, Callable[[_Context], None]] = {
    "construct": _check_construct,
    "metadata": _check_metadata,
    "param_extremes": _check_param_extremes,
    "prepare_grid": _check_prepare_grid,
    "hostile_inputs": _check_hostile_inputs,
    "fp_warnings": _check_fp_warnings,
    "nonfinite_recovery": _check_nonfinite_recovery,
    "no_subnormals": _check_no_subnormals,
    "automation": _check_automation,
    "thread_safety": _check_thread_safety,
    "reset_determinism": _check_reset_determinism,
    "state": _check_state,
    "zero_frames": _check_zero_frames,
    "inputs_unchanged": _check_inputs_unchanged,
    "latency": _check_latency,
    "allocations": _check_allocations,
    "kernel": _check_kernel,
}


def _configurations(
    node_cls: type[Node], params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    if params is None:
        hook = getattr(node_cls, "contract_params", None)
        params = hook() if callable(hook) else [{}]
    if isinstance(params, Mapping):
        params = [params]
    return [dict(p) for p in params] or [{}]


def full_grid_requested() -> bool:
    """True when ``NEURALGRAPH_CONTRACT_FULL=1``: run the whole sample-rate x block-size grid."""
    return os.environ.get("NEURALGRAPH_CONTRACT_FULL", "") not in ("", "0")


def run_contract_suite(
    node_cls: type[Node],
    *,
    quick: bool = False,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    checks: Iterable[str] | None = None,
    seed: int = 0,
) -> ContractReport:
    """Run every contract check on ``node_cls``; return a :class:`ContractReport` (never raises
    for a failing node).

    ``quick`` trims the sample-rate x block-size grid to :data:`QUICK_SAMPLE_RATES` x
    :data:`QUICK_BLOCK_SIZES`. ``params`` (one dict or a list) replaces the node's
    ``contract_params()``. ``checks`` runs a subset of :data:`CHECKS`. ``seed`` fixes every random
    input, so a failure reproduces.
    """
    selected = list(CHECKS if checks is None else checks)
    unknown = [name for name in selected if name not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown contract checks {unknown}; valid: {', '.join(CHECKS)}")
    type_name = getattr(node_cls, "type_name", "") or node_cls.__qualname__
    report = ContractReport(type_name, checks=selected)
    configs = _configurations(node_cls, params)
    report.configurations = len(configs)
    for config in configs:
        ctx = _Context(node_cls, config, quick, seed, report)
        for name in selected:
            try:
                _RUNNERS[name](ctx)
            except _CheckFailed as exc:
                ctx.fail(name, str(exc))
            except Exception as exc:  # noqa: BLE001 - a check's own setup hit the node's bug: still a failure
                ctx.fail(name, f"{type(exc).__name__}: {exc}")
            if name == "construct" and ctx.failures:
                break  # nothing else can run on a class that does not construct
        seen: set[tuple[str, str]] = set()
        for check, message in ctx.failures:
            if check in selected and (check, message) not in seen:
                seen.add((check, message))
                report.failures.append(ContractFailure(type_name, check, message, config))
    return report


def check_node(node_cls: type[Node], **kwargs: Any) -> ContractReport:
    """Like :func:`run_contract_suite`, but raises :class:`ContractError` when a check fails."""
    report = run_contract_suite(node_cls, **kwargs)
    report.raise_for_failures()
    return report


def contract_cases(registry: Any = None, types: Iterable[str] | None = None) -> list[Any]:
    """``pytest.param(node_cls, id=type_name)`` for every node type in ``registry`` (default: the
    installed plugins), or only ``types``; for ``@pytest.mark.parametrize``."""
    import pytest

    if registry is None:
        from neuralgraph._plugins.registry import default_registry

        registry = default_registry()
    names = sorted(registry.node_types) if types is None else list(types)
    return [pytest.param(registry.node_class(name), id=name) for name in names]
