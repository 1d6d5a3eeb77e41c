"""Live edits: swap a running engine onto a new patch at a block boundary, keeping state.

When only values changed (same nodes, types, fixed parameters and wiring), :meth:`Engine.swap
<neuralgraph.Engine.swap>` builds nothing: each changed value goes through
:meth:`Engine.set`, so an input ramps over its ``ramp_ms`` and a parameter glides through the
node's own smoothing, and every node's state is untouched.

Otherwise it builds a complete engine for the new patch on the calling (control) thread:
compile, prepare, warm up kernels. It then works out, still off the audio thread, a
:class:`Transfer`: the table of array copies and attribute rebinds that carry every kept node's
state (phases, filter memories, envelope stages, model tensors, held voices) and every kept
compiler step's state (ramps, delay lines) from the old plan to the new one. A node is kept when
its name, type, fixed (not live) parameters and lane counts are unchanged.

The audio thread does the switch at the start of its next block (:meth:`Switch.process`): it
runs the transfer (one compiled byte copy plus dict rebinding: nothing is allocated), installs
the new plan, applies the new patch's changed values through the live-parameter paths, and
remaps commands still queued for the old plan onto the new plan's targets. Both plans then run
for ``fade`` seconds and the output crossfades linearly from the old to the new one; kept nodes
carry the same state in both, so they sound continuous through the fade. The old plan and
everything it owns stay referenced until the control thread releases them (the next ``swap``, or
:meth:`Engine.collect`), never by the audio thread; :meth:`Switch.release` frees it there at once.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from neuralgraph._compile.fusion import FusedStep
from neuralgraph._errors import ParameterError
from neuralgraph._io.backend import control_priority
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.state import _CODE, _SCALARS
from neuralgraph._patch.patch import Patch
from neuralgraph._runtime.statecopy import copy_kernel
from neuralgraph._runtime.tap import TapPoint, carry_taps
from neuralgraph._runtime.targets import InputRamp

#: Attributes of compiler steps that are wiring or per-block scratch, not state (a mix step's
#: terms, flags and basis; every ``scratch`` buffer is rewritten before it is read in a block).
_NOT_STATE = ("terms", "scratch", "identity", "copy_only", "constant", "ramp_basis")
#: How long ``swap`` waits for the audio thread to take a previous swap before giving up.
PENDING_TIMEOUT_S = 5.0


@attrs.frozen
class SwapReport:
    """What a swap did (returned by :meth:`Engine.swap`)."""

    kept: tuple[str, ...]  #: nodes whose state carried over
    added: tuple[str, ...]  #: nodes new in this patch (or rebuilt: type, fixed parameter or lanes changed)
    removed: tuple[str, ...]  #: nodes gone from the patch (or rebuilt)
    changed: tuple[str, ...]  #: ``node.param`` values that glide to the new patch's value
    fade_s: float  #: crossfade length (0 when only values changed)
    compile_s: float  #: time spent building the new plan on the calling thread

    def line(self) -> str:
        parts = [f"{len(self.kept)} kept"]
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.changed:
            parts.append("changed " + ", ".join(self.changed))
        parts.append(f"crossfade {self.fade_s * 1000:.0f} ms" if self.fade_s else "no crossfade")
        return "; ".join(parts)


class Transfer:
    """Copies prepared off the audio thread that carry running state from old objects to new ones.

    ``run`` (audio thread) copies arrays in place (the contiguous ones as bytes, all in one
    compiled call, :mod:`neuralgraph._runtime.statecopy`: ``np.copyto`` costs about a microsecond each
    from Python and a 1000-node patch has 2500 state arrays) and rebinds attributes and list items to the old objects' current values;
    it allocates nothing.
    """

    def __init__(self) -> None:
        self.arrays: list[tuple[np.ndarray, np.ndarray]] = []
        self.attrs: list[tuple[dict, dict, Any]] = []  # (old mapping, new mapping, key)
        self.items: list[tuple[list, list, int]] = []
        self._table: np.ndarray | None = None
        self._kept: list[tuple[np.ndarray, np.ndarray]] = []  # keeps the table's addresses valid
        self._kernel: Any = None

    def finish(self) -> None:
        """Put the contiguous array pairs into the address table of the compiled copy (control
        thread); the rest stay with ``np.copyto``."""
        rest = []
        for src, dst in self.arrays:
            if src.flags.c_contiguous and dst.flags.c_contiguous and src.size:
                self._kept.append((src, dst))
            else:
                rest.append((src, dst))
        copy_bytes = copy_kernel()  # loaded (or compiled) here, not in the callback
        copy_bytes(np.zeros((0, 3), np.int64))
        if self._kept:
            self._table = np.array(
                [(s.__array_interface__["data"][0], d.__array_interface__["data"][0], s.nbytes) for s, d in self._kept],
                np.int64,
            )
            self._kernel = copy_bytes
        self.arrays = rest

    def run(self) -> None:
        if self._table is not None:
            self._kernel(self._table)
        for src, dst in self.arrays:
            np.copyto(dst, src)
        for src, dst, key in self.attrs:
            dst[key] = src[key]
        for src, dst, i in self.items:
            dst[i] = src[i]

    def __len__(self) -> int:
        return len(self.arrays) + len(self._kept) + len(self.attrs) + len(self.items)

    # ---- building (control thread) --------------------------------------------------------------
    def add_object(self, old: Any, new: Any, skip: tuple[str, ...] = ()) -> None:
        """Every attribute of ``old`` that ``new`` also has, except ``skip``."""
        self.add_mapping(vars(old), vars(new), skip)

    def add_mapping(self, old: dict, new: dict, skip: tuple[str, ...] = ()) -> None:
        for key, value in old.items():
            if key in skip or key not in new:
                continue
            if _plain(value) and _plain(new[key]):
                self.attrs.append((old, new, key))
            else:
                self.add_value(value, new[key])

    def add_value(self, old: Any, new: Any) -> None:
        if isinstance(old, np.ndarray):
            if (
                isinstance(new, np.ndarray)
                and old.flags.writeable
                and new.flags.writeable
                and old.shape == new.shape
                and old.dtype == new.dtype
                and old is not new
            ):
                self.arrays.append((old, new))
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new)):
                if a is None and b is None:
                    continue  # an empty slot (a mix term without a ramp): nothing to carry
                if _plain(a) and _plain(b):
                    self.items.append((old, new, i))
                else:
                    self.add_value(a, b)
        elif isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
            for a, b in zip(old, new):
                self.add_value(a, b)
        elif isinstance(old, dict) and isinstance(new, dict):
            self.add_mapping(old, new)
        elif hasattr(type(old), "__slots__") and type(old) is type(new) and not isinstance(old, _CODE):
            for name in type(old).__slots__:  # e.g. EventBuffer: its arrays
                if hasattr(old, name):
                    self.add_value(getattr(old, name), getattr(new, name))
        # anything else (sessions, threads, generators, code) belongs to the new object as made


def _plain(value: Any) -> bool:
    """A value rebinding carries over: a scalar, or a tuple of scalars."""
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, tuple) and all(isinstance(v, _SCALARS) for v in value)


def step_owners(plan: Any) -> dict[str, Any]:
    """Each step's object by step name: nodes, mix, delay and copy steps (inside fused runs too)."""
    owners: dict[str, Any] = {}
    for name, (process, _, _) in zip(plan.step_names, plan.steps):
        owner = _unwrapped(process)
        if isinstance(owner, FusedStep):
            for member in owner.members:
                owners[member.name] = _unwrapped(member.process)
        elif owner is not None:
            owners[name] = owner
    return owners


def _unwrapped(process: Any) -> Any:
    """The object whose method ``process`` is; through a tap point, the step it wraps."""
    owner = getattr(process, "__self__", None)
    return owner.inner_owner if isinstance(owner, TapPoint) else owner


def _signature(patch: Patch, name: str) -> tuple[Any, ...]:
    """What must match for a node's state to carry over: type, fixed parameters, lanes."""
    spec = patch.spec.nodes[name]
    cls = patch.registry.node_class(spec.type)
    fixed = tuple(sorted((k, repr(v)) for k, v in spec.params.items() if not cls.params()[k].live))
    topo = patch.topology
    return (spec.type, fixed, topo.lanes[name], tuple(sorted(topo.output_lanes[name].items())))


def _wiring(patch: Patch) -> tuple[Any, ...]:
    """The patch's shape without values: node types and connections (with their mappings)."""
    edges = sorted(
        (e.src, e.src_port, e.dst, e.dst_port, e.source.range, e.source.curve, e.source.feedback)
        for e in patch.topology.edges
    )
    return (tuple(sorted((n, _signature(patch, n)) for n in patch.spec.nodes)), tuple(edges))


def _values(patch: Patch) -> dict[str, Any]:
    """Every live value by target name: ``node.param`` and unconnected ``node.port`` constants."""
    values: dict[str, Any] = {}
    for name, spec in patch.spec.nodes.items():
        cls = patch.registry.node_class(spec.type)
        for key, decl in cls.params().items():
            values[f"{name}.{key}"] = spec.params.get(key, decl.init)
        for port, inp in spec.inputs.items():
            if not inp.connected:
                values[f"{name}.{port}"] = inp.constant
    return values


def same_patch(a: Patch, b: Patch) -> bool:
    """True when the two patches would run identically (locations and comments aside)."""
    return _wiring(a) == _wiring(b) and _values(a) == _values(b) and a.spec.engine == b.spec.engine


class Switch:
    """A prepared swap; the audio thread performs it in :meth:`process` (via ``Engine.process``)."""

    def __init__(
        self,
        new: Any,
        transfer: Transfer,
        constants: list[tuple[InputRamp, InputRamp]],
        changes: list[tuple[Any, float]],
        fade_frames: int,
        remap: np.ndarray,
    ) -> None:
        self.new = new  # a complete engine for the new patch; the old engine takes over its parts
        self.transfer = transfer
        self.constants = constants
        self.changes = changes
        self.remap = remap
        self.fade_frames = fade_frames
        self.done_frames = 0
        self.old_plan: Any = None
        self.old_points: list[Any] = []  # the old plan's tap points, silenced at the switch
        self.old_parts: tuple[Any, ...] = ()
        self.switched = False
        self.finished = False
        block = new.block_size
        channels = new.channels
        self.mix = np.zeros((channels, block), np.float32)
        self.scratch = np.zeros((channels, block), np.float32)
        # the new plan's gain per frame of the fade, then 1.0 for the block that ends it
        self.gain = np.ones(fade_frames + block, np.float32)
        if fade_frames:
            self.gain[:fade_frames] = (np.arange(fade_frames, dtype=np.float32) + 1.0) / np.float32(fade_frames + 1)
        self.gain_views = [self.gain[k : k + block] for k in range(0, fade_frames + block, block)]
        self.one_minus = [1.0 - v for v in self.gain_views]

    def release(self) -> None:
        """Free the old plan now (control thread, once the audio thread has let it go).

        Its steps' bound methods and closures refer back to it, so dropping it would leave
        cyclic garbage (14 500 objects for a 1000-node plan, measured) for a full garbage
        collection, which holds the GIL the audio callback needs for 15 to 20 ms. Emptying its
        attributes breaks the cycles: reference counting frees it here, at once, a list item or
        a mapping entry at a time, so that the GIL can pass to the audio thread between them
        (freed in one piece, a 1000-node plan took 4 to 23 ms)."""
        plan, self.old_plan, self.old_parts = self.old_plan, None, ()
        attributes = getattr(plan, "__dict__", None)
        while attributes:
            _, value = attributes.popitem()
            _drain(value)

    # ---- audio thread ---------------------------------------------------------------------------
    def _switch(self, engine: Any) -> None:
        # commands still queued (tagged with the old generation) are remapped onto the new
        # plan's targets when the new plan drains them, right after this switch
        self.transfer.run()
        empty = ()
        for point in self.old_points:
            point.taps = empty
        for old_t, new_t in self.constants:
            new_t.take_over(old_t)
        old_plan = engine.plan
        new_plan = self.new.plan
        if new_plan.input is not None and old_plan.input is not None and new_plan.input.shape == old_plan.input.shape:
            np.copyto(new_plan.input, old_plan.input)
        src, dst = old_plan.midi, new_plan.midi  # events a backend queued for this block
        n = src.count
        if n:
            dst.frame[:n] = src.frame[:n]
            dst.status[:n] = src.status[:n]
            dst.data1[:n] = src.data1[:n]
            dst.data2[:n] = src.data2[:n]
            dst.count = n
            src.count = 0
        new = self.new
        # keep every old part referenced here: freeing them is the control thread's job (collect)
        self.old_parts = (engine._lookup, engine._ramping, engine._remap, engine.step_timer)
        engine._remap = self.remap
        engine.step_timer = new.step_timer  # times the plan that now runs
        engine._ramping = new._ramping
        engine._lookup = new._lookup
        engine.plan = new_plan
        for target, value in self.changes:
            target.apply(value)
        self.old_plan = old_plan
        self.switched = True

    def process(self, engine: Any) -> np.ndarray:
        if not self.switched:
            self._switch(engine)
        engine.apply_commands()
        out = engine.plan.run_block()
        if self.fade_frames and self.done_frames < self.fade_frames:
            old = self.old_plan
            if old.input is not None and engine.plan.input is not None and old.input.shape == engine.plan.input.shape:
                np.copyto(old.input, engine.plan.input)
            previous = old.run_block()
            k = self.done_frames // engine.block_size
            np.multiply(out, self.gain_views[k], out=self.mix)
            np.multiply(previous, self.one_minus[k], out=self.scratch)
            np.add(self.mix, self.scratch, out=self.mix)
            np.copyto(out, self.mix)
            self.done_frames += engine.block_size
        if not self.fade_frames or self.done_frames >= self.fade_frames:
            engine._retired = self  # the control thread releases the old plan
            engine._swap = None
        return out


def _drain(value: Any) -> None:
    """Drop the items of a list or the entries of a dict one by one (the last reference to
    each frees it): small steps the interpreter can hand the GIL over between."""
    if isinstance(value, list):
        while value:
            value.pop()
    elif isinstance(value, dict):
        while value:
            value.popitem()


def prepare_swap(engine: Any, patch: Patch, fade: float) -> tuple[Switch, SwapReport]:
    """Build the new engine and the state transfer for ``engine`` (control thread)."""
    if not (math.isfinite(fade) and 0.0 <= fade <= 10.0):
        raise ParameterError(f"fade must be between 0 and 10 seconds, got {fade!r}")
    old_patch = engine.patch
    new, compile_s = _new_engine(engine, patch)
    old_names, new_names = set(old_patch.spec.nodes), set(patch.spec.nodes)
    kept = sorted(
        n
        for n in old_names & new_names
        if _signature(old_patch, n) == _signature(patch, n) and not getattr(engine.plan.nodes[n], "worker", False)
    )
    structural = _wiring(old_patch) != _wiring(patch)
    transfer = _state_transfer(engine, new, kept, structural)
    constants, changes, changed = _carried_values(engine, new, patch, kept)
    # settings made with engine.set on nodes the new patch did not touch stay in force
    new_index = new._lookup[2]
    new.settings = {k: v for k, v in engine.settings.items() if k in new_index and k not in changed}
    remap = np.full(max(1, len(engine._lookup[1])), -1, np.int64)
    for key, index in engine._lookup[2].items():
        if key in new_index:
            remap[index] = new_index[key]
    fade_frames = int(round(fade * engine.sample_rate)) if structural else 0
    fade_frames = -(-fade_frames // engine.block_size) * engine.block_size
    report = SwapReport(
        tuple(kept),
        tuple(sorted(new_names - set(kept))),
        tuple(sorted(old_names - set(kept))),
        tuple(changed),
        fade_frames / engine.sample_rate,
        compile_s,
    )
    return Switch(new, transfer, constants, changes, fade_frames, remap), report


def _new_engine(engine: Any, patch: Patch) -> tuple[Any, float]:
    """The engine for ``patch`` at ``engine``'s settings, and the seconds its compile took."""
    import time

    t0 = time.perf_counter()
    # a fused run the patch did not have before is compiled here, once (numba caches it on disk)
    new = type(engine)(
        patch, engine.sample_rate, engine.block_size, ceiling=float(engine.plan.guard.ceiling), fuse=engine.fuse
    )
    compile_s = time.perf_counter() - t0
    new._lookup = (engine._lookup[0] + 1, new._lookup[1], new._lookup[2])  # sets tagged older are remapped
    if new.channels != engine.channels:
        raise ParameterError(
            f"the new patch has {new.channels} output channels and the playing one "
            f"{engine.channels}: a swap cannot change the channel count; restart instead"
        )
    return new, compile_s


def _state_transfer(engine: Any, new: Any, kept: list[str], structural: bool) -> Transfer:
    """What the handover copies: the kept nodes' state, the compiler steps of their inputs, and
    the whole buffer slab when the wiring did not change."""
    transfer = Transfer()
    old_owners, new_owners = step_owners(engine.plan), step_owners(new.plan)
    for name in kept:
        old_node, new_node = engine.plan.nodes[name], new.plan.nodes[name]
        transfer.add_object(old_node, new_node, skip=("latency", "scratch", *type(old_node).transient))
    for name, owner in old_owners.items():  # compiler steps of kept inputs: mix ramps, delay lines
        other = new_owners.get(name)
        node_of = name.split(".", 1)[0]
        if (
            owner is None
            or other is None
            or isinstance(owner, Node)
            or type(owner) is not type(other)
            or node_of not in kept
        ):
            continue
        transfer.add_object(owner, other, skip=(*_NOT_STATE, *getattr(owner, "transient", ())))
    old_slab, new_slab = engine.plan.slab, new.plan.slab
    if (
        not structural
        and old_slab is not None
        and new_slab is not None
        and old_slab.shape == new_slab.shape
        and engine.plan.step_names == new.plan.step_names
    ):
        transfer.arrays.append((old_slab, new_slab))  # wires, feedback buffers included
    transfer.finish()
    return transfer


def _carried_values(
    engine: Any, new: Any, patch: Patch, kept: list[str]
) -> tuple[list[tuple[InputRamp, InputRamp]], list[tuple[Any, float]], list[str]]:
    """Live values: the current ones carried over (pairs of input ramps), then the changes to
    the new patch's values where it changed them (target, value), and the keys changed."""
    old_values, new_values = _values(engine.patch), _values(patch)
    constants: list[tuple[InputRamp, InputRamp]] = []
    changes: list[tuple[Any, float]] = []
    changed: list[str] = []
    old_targets, old_index = engine._lookup[1], engine._lookup[2]
    new_targets, new_index = new._lookup[1], new._lookup[2]
    for key, index in new_index.items():
        node = key.split(".", 1)[0]
        if node not in kept or key not in old_index:
            continue
        old_t, new_t = old_targets[old_index[key]], new_targets[index]
        if isinstance(new_t, InputRamp):
            if not isinstance(old_t, InputRamp) or old_t.buffer.shape != new_t.buffer.shape:
                continue
            if old_t.ramping or old_t.value != new_t.value or key in engine.settings:
                constants.append((old_t, new_t))  # else the new buffer already holds the running value
            if old_values.get(key) != new_values.get(key):
                changes.append((new_t, float(new_values[key])))
                changed.append(key)
        elif old_values.get(key) != new_values.get(key):
            value = new_values[key]
            decl = new_t.decl
            changes.append((new_t, float(decl.choices.index(value)) if decl.kind is str else float(value)))
            changed.append(key)
    return constants, changes, changed


def _set_values(engine: Any, patch: Patch) -> SwapReport:
    """Only values changed: no new plan at all, each change goes through ``Engine.set``, which
    ramps inputs and lets parameters glide, with every node's state untouched."""
    old, new = _values(engine.patch), _values(patch)
    changed = tuple(sorted(k for k in new if old.get(k) != new[k]))
    for key in changed:
        engine.set(key, new[key])
    engine.patch = patch
    return SwapReport(tuple(sorted(patch.spec.nodes)), (), (), changed, 0.0, 0.0)


def swap_engine(engine: Any, patch: Patch, fade: float = 0.05) -> SwapReport:
    """``Engine.swap``: prepare off the audio thread, hand over, return at once. While a backend
    plays, the calling thread does it at real-time priority below the audio thread's
    (:func:`~neuralgraph._io.backend.control_priority`: it holds the GIL the callback needs)."""
    with control_priority():
        return _prepare_and_hand_over(engine, patch, fade)


def _prepare_and_hand_over(engine: Any, patch: Patch, fade: float) -> SwapReport:
    import time

    if same_patch(engine.patch, patch):  # the playing (or already handed over) patch
        return SwapReport((), (), (), (), 0.0, 0.0)
    deadline = time.monotonic() + PENDING_TIMEOUT_S
    while engine._swap is not None:  # the previous swap (or its fade) is still running
        if time.monotonic() > deadline:
            raise ParameterError("the previous swap has not been taken up: is the engine running blocks?")
        time.sleep(0.002)
    engine.collect()
    if _wiring(engine.patch) == _wiring(patch) and engine.patch.spec.engine == patch.spec.engine:
        return _set_values(engine, patch)
    switch, report = prepare_swap(engine, patch, fade)
    switch.old_points = carry_taps(engine, switch.new, swap=True)
    engine.patch = patch
    engine.settings = switch.new.settings
    engine._faults_seen = 0
    engine._swap = switch  # the audio thread takes it at its next block
    return report
