"""The ``Node`` base class that every node type derives from, and what it is handed."""

from __future__ import annotations

import keyword
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from neuralgraph._nodes.lazyjit import compile_for
from neuralgraph._nodes.ports import Input, Output, Param, Rate


def attr_name(port: str) -> str:
    """The attribute a port is reached by on :class:`Ports`: ``in`` becomes ``in_``."""
    return port + "_" if keyword.iskeyword(port) else port


class Ports:
    """The arrays of a node's inputs or outputs, by port name: ``ins.freq``, ``outs.out``.

    A port whose name is a Python keyword is reached with a trailing underscore (``ins.in_``)
    or by item (``ins["in"]``). Built once when the plan is made; reading it never allocates.
    """

    def __init__(self, arrays: Mapping[str, Any]) -> None:
        self._names = tuple(arrays)
        for name, array in arrays.items():
            setattr(self, attr_name(name), array)

    def __getitem__(self, name: str) -> Any:
        return getattr(self, attr_name(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def items(self) -> Iterator[tuple[str, Any]]:
        for name in self._names:
            yield name, self[name]


@attrs.frozen(kw_only=True)
class PrepareContext:
    """What a node knows when it prepares: rates, sizes, its lanes and where the patch lives."""

    sample_rate: float
    block_size: int
    lanes: int
    input_lanes: Mapping[str, int]
    output_lanes: Mapping[str, int]
    node_name: str = ""
    patch_dir: Path = attrs.field(factory=Path.cwd)
    #: Which of this node's lanes sound (1) or are silent (0), updated by the lane's source (e.g.
    #: ``midi.voices``) before this node runs in each block; None when every lane always runs.
    #: A node may skip the work of a silent lane; it must then write silence (zeros) to that
    #: lane of every output. Read-only.
    active_lanes: np.ndarray | None = None
    #: The outputs some connection of the patch reads; None when not known (read them all). A
    #: node's fused kernel may leave the others unwritten if it says so (``EscapeKernel.unwritten``);
    #: its ``process`` must write every output, since a tap on an unread one runs ``process``.
    read_outputs: frozenset[str] | None = None

    def zeros(self, *shape: int, dtype: Any = np.float32) -> np.ndarray:
        """A zeroed array, for state and scratch buffers (call it only from ``prepare``)."""
        return np.zeros(shape, dtype=dtype)


class KernelCall:
    """A node's compiled kernel and its arguments, bound to one pair of :class:`Ports`. Code,
    not state: a snapshot skips it (it is callable) and a swap binds the new node's own."""

    __slots__ = ("args", "function", "ins", "outs")

    def __init__(self, ins: Ports, outs: Ports, function: Any, args: tuple[Any, ...]) -> None:
        self.ins, self.outs, self.function, self.args = ins, outs, function, args

    def __call__(self, frames: int) -> None:
        self.function(*self.args, frames)


class Node:
    """Base class of every node type.

    Subclasses set ``type_name`` (``"namespace.kind"``), declare :class:`Input`, :class:`Output`
    and :class:`Param` class attributes, and implement:

    - ``prepare(ctx)``: allocate every buffer and state array; the only place that allocates.
    - ``process(ins, outs, frames)``: read ``ins``, write every output in ``outs``; never allocate,
      lock, do I/O, or write an input.
    - ``reset()``: return to the state right after ``prepare``.
    - optionally ``memory_bytes(sample_rate, block_size, lanes)``: what ``prepare`` will allocate,
      so that the compiler checks the memory budget before anything is allocated.

    ``frames`` is ``ctx.block_size`` whenever the engine calls ``process``: the plan runs whole
    blocks only, and runs no node at all for a 0-frame request. Other callers (a host driving a
    node directly, the contract suite) may pass ``frames == 0``: no time passes, so ``process``
    must return at once without changing any state (its outputs need not be written). Partial
    blocks (0 < frames < block_size) are not part of the contract.

    ``save_state()`` / ``load_state()`` snapshot and restore the running state (presets, undo,
    tests); the default covers state kept in numpy arrays, numbers, lists, dicts and
    ``numpy.random.Generator`` attributes. Override both for state kept elsewhere.

    A node must be constructible with no arguments (every parameter has an ``init``). Ports that
    depend on parameters come from overriding :meth:`inputs` / :meth:`outputs`.
    """

    type_name: ClassVar[str] = ""
    #: "output" for the node whose output is the patch's audio, "input" for the one fed by the
    #: backend or ``--input``; None for everything else.
    role: ClassVar[str | None] = None
    #: What a node that faulted emits from then on: "silence", or "thru" (its first audio input).
    bypass: ClassVar[str] = "silence"

    #: True for a type whose :meth:`kernel` may offer a lanes form (several one-lane calls run side
    #: by side, docs/plugins.md): a fused plan then asks its ``kernel()`` with placeholder arrays
    #: before buffers exist, to put such nodes next to each other. ``kernel()`` must then keep
    #: nothing of what it is handed.
    side_by_side: ClassVar[bool] = False
    #: Attribute names the default :meth:`save_state` leaves out: caches and handles that are
    #: not running state (e.g. a session object or scratch buffers rebuilt on every block).
    transient: ClassVar[tuple[str, ...]] = ()
    #: The kernel the default ``process`` runs, bound by the plan (see :meth:`process`).
    _kernel_call: KernelCall | None = None

    _input_decls: ClassVar[dict[str, Input]] = {}
    _output_decls: ClassVar[dict[str, Output]] = {}
    _param_decls: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ins: dict[str, Input] = {}
        outs: dict[str, Output] = {}
        params: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Input):
                    ins[value.name or name] = value
                elif isinstance(value, Output):
                    outs[value.name or name] = value
                elif isinstance(value, Param):
                    params[name] = value
        for name in (*ins, *outs, *params):
            if name in _RESERVED:
                raise TypeError(
                    f"{cls.__qualname__}: a port or parameter cannot be called `{name}`: it would hide "
                    f"Node.{name}; choose another name (e.g. `sync` for a phase reset)"
                )
        cls._input_decls, cls._output_decls, cls._param_decls = ins, outs, params

    def __init__(self, **params: Any) -> None:
        """Set parameters; unknown names raise TypeError, bad values ValueError naming them."""
        unknown = set(params) - set(self._param_decls)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no parameter {', '.join(sorted(unknown))}")
        for name, decl in self._param_decls.items():
            value = params.get(name, decl.init)
            try:
                self.__dict__[name] = decl.coerce(value)
            except ValueError as exc:
                raise ValueError(f"parameter {name} {exc}") from None
        #: Samples of delay between input and output, set in ``prepare`` when not zero.
        self.latency: int = 0

    # ---- declarations -----------------------------------------------------------------------
    @classmethod
    def params(cls) -> Mapping[str, Param]:
        """The parameter declarations, by name."""
        return cls._param_decls

    def inputs(self) -> Mapping[str, Input]:
        """The signal inputs of this instance (override when they depend on parameters)."""
        return self._input_decls

    def outputs(self) -> Mapping[str, Output]:
        """The signal outputs of this instance (override when they depend on parameters)."""
        return self._output_decls

    @property
    def main_output(self) -> str:
        """The output a bare ``"node"`` connection means: ``out`` if present, else the first."""
        outs = self.outputs()
        return "out" if "out" in outs else next(iter(outs))

    # ---- lanes --------------------------------------------------------------------------------
    def fixed_lanes(self) -> int | None:
        """A lane count this node imposes on its inputs (e.g. an output's channel count)."""
        return None

    def output_lanes(self, lanes: int) -> Mapping[str, int]:
        """Lanes of each output, given the node's lane count (default: all the same)."""
        return {name: (lanes if out.rate is not Rate.EVENTS else 1) for name, out in self.outputs().items()}

    def lane_activity(self) -> np.ndarray | None:
        """For a node that creates lanes (voices): a uint8 array, one flag per lane, that ``process``
        keeps at 1 while the lane sounds and 0 once it is silent; made in ``prepare``.

        The compiler hands it, as ``ctx.active_lanes``, to every node whose lanes come from this
        one, so those nodes can skip silent voices. Default: None (no such information).
        """
        return None

    # ---- lifecycle ----------------------------------------------------------------------------
    def prepare(self, ctx: PrepareContext) -> None:
        """Allocate buffers and state for ``ctx.sample_rate``, ``ctx.block_size`` and lanes."""

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """An estimate of the bytes ``prepare`` will allocate for these settings (default 0).

        Called before any node is prepared, so that the compiler can refuse a patch whose
        buffers and state exceed the memory budget (NG127) instead of running out of memory.
        Override it in nodes whose state grows with a parameter, the sample rate or the lanes
        (delay lines, tables, model buffers); small fixed state may be left out. Must not allocate
        what it measures.
        """
        return 0

    def output_buffers(self) -> Mapping[str, np.ndarray] | None:
        """Optionally, arrays made in ``prepare`` that the plan uses as these outputs' buffers
        (float32, shaped (lanes, frames or 1)), e.g. memory a model writes its results into, so
        that no copy per port is needed. ``process`` must still fill whatever ``outs`` it is
        given (a host may pass its own arrays). Default: None (the plan's buffers)."""
        return None

    def bind(self, ins: Ports, outs: Ports) -> None:
        """Called once when the plan is built (control thread, after ``prepare``) with the
        ``ins``/``outs`` that ``process`` will then be handed for the plan's life. Their arrays
        stay at the same addresses, so a node may point external code (a model's bound inputs)
        at them here. ``process`` must still work with any other Ports it is given. Default: nothing."""

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        """Compute one block. Must fill every output; must not allocate.

        Default: run what :meth:`kernel` offers, bound once per ``ins``/``outs`` (the plan binds
        it when it is built), so a node with a compiled kernel writes its argument list once and
        runs the same code fused and unfused. A node without a kernel must override this.
        """
        call = self._kernel_call
        if call is None or call.ins is not ins or call.outs is not outs:
            call = self._bind_kernel(ins, outs)
        call(frames)

    def _bind_kernel(self, ins: Ports, outs: Ports) -> KernelCall:
        """Bind :meth:`kernel` to these Ports for the default :meth:`process` (control thread)."""
        offered = self.kernel(ins, outs)
        if offered is None:
            raise NotImplementedError(f"{type(self).__name__}.process (it offers no kernel() to run instead)")
        self._kernel_call = KernelCall(ins, outs, *offered)
        return self._kernel_call

    def ready(self, ins: Ports, outs: Ports) -> None:
        """Compile now (control thread) whatever :meth:`process` on these Ports would compile
        the first time it runs, so that it does not compile on the audio thread.

        A node that runs inside a fused run never calls its own ``process`` until the run falls
        back to running its members one by one while playing (a tap on a port the run does not
        keep); the plan calls this on every member first. Default: compile (or load from numba's
        disk cache) what :meth:`kernel` offers, for these arguments (``process`` runs the same
        kernel on the same arguments). A node whose ``process`` needs other compiled helpers
        overrides it.
        """
        offered = self.kernel(ins, outs)
        if isinstance(offered, tuple) and len(offered) == 2:
            compile_for(offered[0], (*offered[1], 0))

    def _runs_kernel(self) -> bool:
        """True when this node's type uses the default :meth:`process` (it runs its kernel)."""
        return type(self).process is Node.process

    def reset(self) -> None:
        """Clear state (phases, filter memories, envelopes) as if just prepared."""

    def save_state(self) -> dict[str, Any]:
        """A snapshot of this node's parameters and running state (control thread only).

        The default copies every instance attribute except ``latency`` and those in
        :attr:`transient`: writeable numpy arrays (phases, filter memories, delay lines, envelope
        stages) are copied, numbers and strings kept, lists, tuples and dicts walked, a
        ``numpy.random.Generator`` keeps its bit-generator state; code and read-only arrays are
        skipped. An attribute it cannot copy (a thread, a session, a jitclass) raises
        ``TypeError``: override this method and :meth:`load_state` then. Call it while no block
        runs (the snapshot allocates); the result is independent of the node.
        """
        from neuralgraph._nodes.state import snapshot

        return snapshot(self, skip=("latency", *self.transient))

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from :meth:`save_state` of a node prepared the same way.

        Arrays are written back in place with ``np.copyto``, never rebound, so the compiled
        plan's references stay valid. Control thread only, while no block runs. Raises
        ``ValueError`` when the state does not fit (another node type, other buffer shapes, or
        a parameter that shapes the buffers differs).
        """
        from neuralgraph._nodes.state import restore

        for name, decl in self.params().items():
            if not decl.live and name in state and state[name] != self.__dict__.get(name):
                raise ValueError(
                    f"the state was saved with {name} = {state[name]!r}, this node has "
                    f"{name} = {self.__dict__.get(name)!r} (it cannot change while running)"
                )
        restore(self, state)

    def kernel(self, ins: Ports, outs: Ports) -> tuple[Any, tuple[Any, ...]] | None:
        """Optionally, this node's compiled kernel, so the compiler can fuse it with its neighbours.

        Return ``(dispatcher, args)``: a module-level numba ``@njit`` function (importable as
        ``module.name``) and its arguments bound now (called once when the plan is built, after
        ``prepare``, with the bound ``ins``/``outs``). ``dispatcher(*args, frames)`` must do exactly
        what ``process(ins, outs, frames)`` does. Arrays (C-contiguous, numeric) are bound by
        address: they must stay the same objects for the plan's life (``reset`` fills them, never
        replaces them). Scalars are frozen into the fused code: anything a live parameter changes
        (``on_param``) must reach the kernel through an array. Return None (the default) to be run
        by ``process`` alone. A node whose block needs Python now and then (a model's run) may
        return an :class:`~neuralgraph._nodes.escape.EscapeKernel` instead: source lines that
        stop the fused function for that call and resume after it. See docs/plugins.md.
        """
        return None

    def notices(self) -> list[str]:
        """Messages for the user about what ``process`` met but could only count (a note outside
        the range a model was trained on, ...): each one returned once, then never again until
        :meth:`reset`. Called from the control thread, which names the node (``Engine.notices``).
        Default: none."""
        return []

    def on_param(self, name: str) -> None:
        """Called in the audio thread after a live parameter changed; recompute, don't allocate."""

    def describe(self) -> str:
        """The node's one-line summary (the first line of its docstring)."""
        doc = (type(self).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


#: Names a port or parameter may not take, because the Node API uses them.
_RESERVED = frozenset(name for name in vars(Node) if not name.startswith("_")) | {"latency"}
