"""``onnx.model``: run any ONNX model as a node, its ports read from the model's signature.

Signature conventions (see docs/neural.md for the full text):

- Every tensor is float32 and axis 0 is the batch axis. A *dynamic* batch axis (a name or ``?``)
  puts all lanes in one call (lanes are the batch); a static batch of 1 means one call per lane.
- ``rate = "block"``: each non-state tensor is ``[batch, K]`` with K static; it becomes K
  control-rate ports (``name`` when K = 1, else ``name_1`` … ``name_K``). One call per block.
- ``rate = "stream"``: each non-state tensor is ``[batch, T]`` (T dynamic or equal to the block
  size); it becomes one audio port. One call per block over the block's samples.
- ``rate = "frame"``: each non-state tensor is ``[batch, F]`` with F = ``frame_size`` (or the
  model's static F); audio ports. Samples are buffered into frames of F, the model runs once per
  full frame, and the output is delayed by F samples (declared as ``latency``).
- Recurrent state: an input named ``state_in<suffix>`` and an output ``state_out<suffix>`` with the
  same shape ``[batch, ...]`` form a pair. The node keeps that tensor per lane, feeds the last
  ``state_out`` back as the next ``state_in``, and zeroes it on ``reset``. State tensors get no port.
- ``worker = true`` (block and stream rates): calls run on a worker thread, double buffered, one
  block of declared latency; a late result holds the last control values or plays silence.

Port names are the model's tensor names made snake_case (``input.1`` -> ``input_1``).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import onnxruntime as ort

from neuralgraph.plugin import (
    Input,
    Node,
    Output,
    Param,
    ParamValueError,
    Ports,
    PrepareContext,
    Rate,
    check_model_memory,
    hookimpl,
)

STATE_IN = "state_in"
STATE_OUT = "state_out"
RATES = ("block", "frame", "stream")
#: Calls made in ``prepare`` so that onnxruntime's first-run setup (arena allocation, kernel
#: selection) happens there and not in the first block.
PREWARM_CALLS = 8


@attrs.frozen
class Tensor:
    """One model input or output: its ONNX name and shape (None for a dynamic axis)."""

    name: str
    shape: tuple[int | None, ...]
    type: str

    def text(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.type.replace('tensor(', '').rstrip(')')} [{dims}]"


@attrs.frozen
class Signature:
    """A model's inputs and outputs, in the model's order."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    def text(self) -> str:
        ins = "; ".join(t.text() for t in self.inputs) or "none"
        outs = "; ".join(t.text() for t in self.outputs) or "none"
        return f"inputs ({ins}), outputs ({outs})"


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d >= 0 else None


def session_options() -> ort.SessionOptions:
    """Options for the audio path: one thread, sequential (measured: more threads only add p99 spikes)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 4  # failures reach the user as located errors, not coloured log lines
    return opts


def open_session(path: str) -> ort.InferenceSession:
    """An onnxruntime session for ``path``; ValueError naming the file when it is not a usable model."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    check_model_memory(path)  # one probe inference under the memory budget, before the real session
    try:
        return ort.InferenceSession(path, sess_options=session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path!r} is not a loadable ONNX model ({first})") from None


def read_signature(session: ort.InferenceSession) -> Signature:
    """The signature of an open session."""
    def tensors(args: list[Any]) -> tuple[Tensor, ...]:
        return tuple(Tensor(a.name, tuple(_dim(d) for d in a.shape), a.type) for a in args)

    return Signature(tensors(session.get_inputs()), tensors(session.get_outputs()))


_cache_lock = threading.Lock()
_signatures: dict[tuple[str, int, int], Signature] = {}


def signature_of(path: str) -> tuple[Signature, ort.InferenceSession | None]:
    """The signature of the model file at ``path``, cached per (path, mtime, size).

    On a cache miss the session opened to read it is returned too, so the caller can keep it
    instead of loading the model twice.
    """
    try:
        st = os.stat(path)
    except OSError:
        raise ValueError(f"model file {path!r} does not exist") from None
    check_model_memory(path)  # cached per budget: a patch with a smaller budget is probed again
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        sig = _signatures.get(key)
    if sig is not None:
        return sig, None
    session = open_session(path)
    sig = read_signature(session)
    with _cache_lock:
        _signatures[key] = sig
    return sig, session


def port_name(tensor_name: str) -> str:
    """A snake_case port name for an ONNX tensor name."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", tensor_name).strip("_").lower() or "x"
    return name if name[0].isalpha() else "t_" + name


@attrs.frozen
class Layout:
    """How a checked signature maps onto ports: which tensors are signals, which are state."""

    batch_dynamic: bool
    width: int | None  # K (block), F (frame) or None (stream)
    signal_in: tuple[Tensor, ...]
    signal_out: tuple[Tensor, ...]
    state_pairs: tuple[tuple[Tensor, Tensor], ...]
    in_ports: tuple[tuple[str, str, int], ...]  # (port, tensor, column)
    out_ports: tuple[tuple[str, str, int], ...]


def check_signature(sig: Signature, rate: str, frame_size: int, path: str) -> Layout:
    """Check ``sig`` against the conventions of ``rate``; ValueError with expected vs actual."""

    def fail(problem: str, expected: str) -> None:
        raise ValueError(f"model {path!r}: {problem}; rate {rate!r} expects {expected}; the model has {sig.text()}")

    if not sig.outputs:
        fail("it has no outputs", "at least one float32 output")
    for t in sig.inputs + sig.outputs:
        if t.type != "tensor(float)":
            fail(f"tensor {t.name!r} is {t.type}", "float32 tensors only")
        if len(t.shape) < 1:
            fail(f"tensor {t.name!r} is a scalar", "a batch axis first on every tensor")
    states_in = {t.name[len(STATE_IN):]: t for t in sig.inputs if t.name.startswith(STATE_IN)}
    states_out = {t.name[len(STATE_OUT):]: t for t in sig.outputs if t.name.startswith(STATE_OUT)}
    if set(states_in) != set(states_out):
        unpaired = sorted({STATE_IN + s for s in set(states_in) - set(states_out)}
                          | {STATE_OUT + s for s in set(states_out) - set(states_in)})
        fail(f"unpaired state tensor(s) {', '.join(unpaired)}",
             "each state_in<suffix> input to have a state_out<suffix> output of the same shape")
    pairs = []
    for suffix, tin in states_in.items():
        tout = states_out[suffix]
        if tin.shape[1:] != tout.shape[1:] or any(d is None for d in tin.shape[1:]):
            fail(f"state {tin.name!r} {list(tin.shape)} and {tout.name!r} {list(tout.shape)} differ or are not static",
                 "state_in/state_out pairs with equal static shapes after the batch axis")
        pairs.append((tin, tout))
    signal_in = tuple(t for t in sig.inputs if not t.name.startswith(STATE_IN))
    signal_out = tuple(t for t in sig.outputs if not t.name.startswith(STATE_OUT))
    if not signal_out:
        fail("every output is a state tensor", "at least one signal output")
    batches = {t.shape[0] for t in sig.inputs + sig.outputs}
    if batches == {None}:
        batch_dynamic = True
    elif batches == {1}:
        batch_dynamic = False
    else:
        fail(f"batch axes (axis 0) are {sorted(batches, key=str)}",
             "axis 0 dynamic on every tensor (lanes as batch) or 1 on every tensor (one call per lane)")
    for t in signal_in + signal_out:
        if len(t.shape) != 2:
            shape = "[batch, K] with K static" if rate == "block" else (
                "[batch, frames]" if rate == "stream" else "[batch, frame_size]")
            fail(f"{t.name!r} has rank {len(t.shape)}", f"signal tensors shaped {shape}")
    width: int | None = None
    if rate == "block":
        for t in signal_in + signal_out:
            if t.shape[1] is None:
                fail(f"{t.name!r} has a dynamic feature axis", "[batch, K] with K static")
    elif rate == "frame":
        sizes = {t.shape[1] for t in signal_in + signal_out}
        static = {s for s in sizes if s is not None}
        if len(static) > 1:
            fail(f"frame axes differ ({sorted(static)})", "one frame size on every signal tensor")
        model_f = next(iter(static), None)
        if frame_size and model_f is not None and model_f != frame_size:
            fail(f"its frame axis is {model_f} but frame_size = {frame_size}", f"[batch, {frame_size}]")
        width = frame_size or model_f
        if not width:
            fail("its frame axis is dynamic and frame_size is 0", "a frame_size parameter or a static frame axis")
    else:  # stream: the time axis may be static, then it is checked against the block size in prepare
        sizes = {t.shape[1] for t in signal_in + signal_out if t.shape[1] is not None}
        if len(sizes) > 1:
            fail(f"time axes differ ({sorted(sizes)})", "[batch, frames] with one frame count")
        width = next(iter(sizes), None)
    in_ports: list[tuple[str, str, int]] = []
    out_ports: list[tuple[str, str, int]] = []
    for tensors, ports in ((signal_in, in_ports), (signal_out, out_ports)):
        for t in tensors:
            base = port_name(t.name)
            k = t.shape[1] if rate == "block" else 1
            if k == 1:
                ports.append((base, t.name, 0))
            else:
                ports.extend((f"{base}_{i + 1}", t.name, i) for i in range(k))
    names = [p for p, _, _ in in_ports]
    if len(set(names)) != len(names):
        fail("two inputs map to the same port name", "distinct snake_case names")
    names = [p for p, _, _ in out_ports]
    if len(set(names)) != len(names):
        fail("two outputs map to the same port name", "distinct snake_case names")
    return Layout(batch_dynamic, width, signal_in, signal_out, tuple(pairs), tuple(in_ports), tuple(out_ports))


class OnnxModel(Node):
    """Runs an ONNX model (onnxruntime, one thread); ports come from the model's signature.

    ``rate`` says how the model is called: ``block`` (control ports, once per block), ``stream``
    (audio ports, the block's samples as ``[batch, frames]``) or ``frame`` (audio ports, frames of
    ``frame_size`` samples, ``frame_size`` samples of latency). Tensors named ``state_in*`` /
    ``state_out*`` are recurrent state the node keeps per lane. A dynamic batch axis runs all
    lanes in one call; a batch of 1 runs one call per lane. ``worker = true`` runs the model on
    its own thread with one block of latency, so a slow model never stalls the audio thread.
    """

    type_name = "onnx.model"
    bypass = "thru"
    model = Param(init="", kind=str, path=True, live=False, doc="The .onnx file, relative to the patch.")
    rate = Param(init="block", kind=str, choices=RATES, live=False,
                 doc="block: control ports, one call per block; stream: audio, one call per block; "
                     "frame: audio in frames of frame_size (adds frame_size samples of latency).")
    frame_size = Param(init=0, kind=int, min=0, max=65536, live=False,
                       doc="Samples per frame for rate = frame (0: the model's static frame axis).")
    worker = Param(init=False, kind=bool, live=False,
                   doc="Run the model on a worker thread (block and stream rates): one block of latency; "
                       "a late result holds the last control values (block) or plays silence (stream).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._session: ort.InferenceSession | None = None
        self.layout: Layout | None = None
        if self.worker and self.rate == "frame":
            raise ValueError("worker = true works with rate 'block' or 'stream', not 'frame'")
        if self.model:
            try:
                sig, session = signature_of(self.model)
                self.layout = check_signature(sig, self.rate, self.frame_size, self.model)
            except ParamValueError:
                raise
            except ValueError as exc:  # reported at the `model` key of the patch
                raise ParamValueError("model", str(exc)) from None
            self._session = session
            self._in_decls = {p: Input(init=0.0, rate=self._port_rate, doc=f"Model input {t}[{c}].")
                              for p, t, c in self.layout.in_ports}
            self._out_decls = {p: Output(rate=self._port_rate, doc=f"Model output {t}[{c}].")
                               for p, t, c in self.layout.out_ports}
        else:
            self._in_decls, self._out_decls = {}, {}

    @property
    def _port_rate(self) -> Rate:
        return Rate.CONTROL if self.rate == "block" else Rate.AUDIO

    def inputs(self) -> Mapping[str, Input]:
        return self._in_decls

    def outputs(self) -> Mapping[str, Output]:
        return self._out_decls

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """The float32 tensors bound to the model per lane (twice with a worker), and the state."""
        layout = self.layout
        if layout is None:
            return 0
        width = block_size if self.rate == "stream" else (layout.width or 1)
        cols = sum((t.shape[1] or 1) if self.rate == "block" else width
                   for t in layout.signal_in + layout.signal_out)
        state = sum(math.prod(d or 1 for d in tin.shape[1:]) + math.prod(d or 1 for d in tout.shape[1:])
                    for tin, tout in layout.state_pairs)
        slots = 2 if self.worker else 1
        return 4 * lanes * (slots * cols + state)

    # ---- prepare: arrays and bindings, made once ----------------------------------------------
    def prepare(self, ctx: PrepareContext) -> None:
        self.lanes = lanes = ctx.lanes
        self.frames = ctx.block_size
        if self.layout is None:
            return
        layout = self.layout
        if self._session is None:
            self._session = open_session(self.model)
        if self.rate == "stream" and layout.width is not None and layout.width != ctx.block_size:
            raise ValueError(f"model {self.model!r} has a static time axis of {layout.width} samples "
                             f"but the block size is {ctx.block_size}; export it with a dynamic time axis")
        width = ctx.block_size if self.rate == "stream" else layout.width
        self.width = width or 1
        self.latency = self.width if self.rate == "frame" else 0
        if self.worker:
            self.latency = ctx.block_size  # results arrive one block later
        # One (lanes, ...) array per tensor; a per-lane call binds row l of each. State arrays
        # are shared by both slots of a worker (only the worker thread touches them then).
        self.states: list[tuple[np.ndarray, np.ndarray]] = []
        state_arrays: dict[str, np.ndarray] = {}
        for tin, tout in layout.state_pairs:
            a = np.zeros((lanes, *tin.shape[1:]), np.float32)
            b = np.zeros((lanes, *tout.shape[1:]), np.float32)
            state_arrays[tin.name], state_arrays[tout.name] = a, b
            self.states.append((a, b))
        self._run = self._session.run_with_iobinding
        self.slots = [self._make_slot(lanes, state_arrays) for _ in range(2 if self.worker else 1)]
        self.arrays, self.bindings, self.in_views, self.out_views = self.slots[0]
        for i in range(PREWARM_CALLS):
            self._run(self.bindings[i % len(self.bindings)])
        if self.worker:
            self.held = [np.zeros_like(view) for _, view in self.out_views]
            self.late_blocks = 0
            self.dropped_blocks = 0
            self._worker = _Worker(self._run, [slot[1] for slot in self.slots], self.states,
                                   poll=0.25 * ctx.block_size / ctx.sample_rate)
        self.reset()

    def _make_slot(self, lanes: int, state_arrays: dict[str, np.ndarray]) -> tuple:
        """Arrays, bindings and port views for one set of model inputs/outputs."""
        layout, session = self.layout, self._session
        arrays: dict[str, np.ndarray] = {}
        for t in layout.signal_in + layout.signal_out:
            cols = t.shape[1] if self.rate == "block" else self.width
            arrays[t.name] = np.zeros((lanes, cols), np.float32)
        arrays.update(state_arrays)
        rows = [slice(0, lanes)] if layout.batch_dynamic else [slice(i, i + 1) for i in range(lanes)]
        bindings = []
        for rows_ in rows:
            binding = session.io_binding()
            for t in session.get_inputs():
                view = arrays[t.name][rows_]
                binding.bind_input(t.name, "cpu", 0, np.float32, list(view.shape), view.ctypes.data)
            for t in session.get_outputs():
                view = arrays[t.name][rows_]
                binding.bind_output(t.name, "cpu", 0, np.float32, list(view.shape), view.ctypes.data)
            bindings.append(binding)
        # What each port reads from or writes to, as (lanes, 1) or (lanes, width).
        if self.rate == "block":
            in_views = [(p, arrays[t][:, c:c + 1]) for p, t, c in layout.in_ports]
            out_views = [(p, arrays[t][:, c:c + 1]) for p, t, c in layout.out_ports]
        else:
            in_views = [(p, arrays[t]) for p, t, _ in layout.in_ports]
            out_views = [(p, arrays[t]) for p, t, _ in layout.out_ports]
        return arrays, bindings, in_views, out_views

    def _call(self) -> None:
        for binding in self.bindings:
            self._run(binding)
        for state_in, state_out in self.states:
            np.copyto(state_in, state_out)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if self.layout is None:
            return
        if self.worker:
            self._process_worker(ins, outs)
            return
        if self.rate != "frame":
            for port, view in self.in_views:
                np.copyto(view, ins[port])
            self._call()
            for port, view in self.out_views:
                np.copyto(outs[port], view)
            return
        # frame rate: fill the current frame; the output plays the previous frame's result
        width, pos, done = self.width, self.pos, 0
        while done < frames:
            n = min(width - pos, frames - done)
            for port, arr in self.in_views:
                arr[:, pos:pos + n] = ins[port][:, done:done + n]
            for port, arr in self.out_views:
                outs[port][:, done:done + n] = arr[:, pos:pos + n]
            pos += n
            done += n
            if pos == width:
                self._call()
                pos = 0
        self.pos = pos

    def _process_worker(self, ins: Ports, outs: Ports) -> None:
        """Deliver the previous block's result if the worker has it, then hand it this block."""
        w = self._worker
        k = w.submitted
        if k > self.delivered and w.completed >= k:  # request k - 1 is done and not yet played
            views = self.slots[(k - 1) % 2][3]
            for (port, view), held in zip(views, self.held):
                np.copyto(outs[port], view)
                np.copyto(held, view)
            self.delivered = k
        else:  # late (or the first block): hold the last control values; audio falls silent
            if k > 0:
                self.late_blocks += 1
            for (port, _), held in zip(self.out_views, self.held):
                if self.rate == "block":
                    np.copyto(outs[port], held)
                else:
                    outs[port].fill(0.0)
        if w.error is not None:
            raise w.error  # the plan bypasses this node and reports the fault
        if w.completed >= k - 1:  # the slot of request k - 2 is free again
            for port, view in self.slots[k % 2][2]:
                np.copyto(view, ins[port])
            w.submitted = k + 1
        else:
            self.dropped_blocks += 1

    def reset(self) -> None:
        if self.layout is None:
            return
        if self.worker:
            self._worker.wait_idle()
            for held in self.held:
                held.fill(0.0)
            self._worker.submitted = self._worker.completed = 0
            self.delivered = 0
        for slot in self.slots:
            for arr in slot[0].values():
                arr.fill(0.0)
        self.pos = 0

    def save_state(self) -> dict[str, Any]:
        """Parameters, the model's tensors (recurrent state included) and the frame/worker
        position. A worker is first let finish what it was handed, so the copy is consistent."""
        state: dict[str, Any] = {name: self.__dict__[name] for name in self.params()}
        if self.layout is None:
            return state
        if self.worker:
            self._worker.wait_idle()
            state["held"] = [held.copy() for held in self.held]
            state["counters"] = (self.delivered, self._worker.submitted, self._worker.completed,
                                 self.late_blocks, self.dropped_blocks)
        state["pos"] = self.pos
        state["slots"] = [{name: arr.copy() for name, arr in slot[0].items()} for slot in self.slots]
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Write a :meth:`save_state` snapshot back into the bound tensors (in place: the
        onnxruntime bindings point at these arrays)."""
        for name in self.params():
            if name in state and state[name] != self.__dict__[name]:
                if not self.params()[name].live:
                    raise ValueError(f"the state was saved with {name} = {state[name]!r}, this node has "
                                     f"{name} = {self.__dict__[name]!r}")
                self.__dict__[name] = state[name]
        if self.layout is None:
            return
        slots = state.get("slots")
        if slots is None or len(slots) != len(self.slots):
            raise ValueError(f"the state has {0 if slots is None else len(slots)} tensor slot(s), this node "
                             f"{len(self.slots)}")
        if self.worker:
            self._worker.wait_idle()
            for held, saved in zip(self.held, state["held"]):
                np.copyto(held, saved)
            (self.delivered, self._worker.submitted, self._worker.completed, self.late_blocks,
             self.dropped_blocks) = state["counters"]
        for slot, saved in zip(self.slots, slots):
            for name, arr in slot[0].items():
                np.copyto(arr, saved[name])
        self.pos = state["pos"]

    def __del__(self) -> None:
        worker = self.__dict__.get("_worker")
        if worker is not None:
            worker.stop = True


class _Worker:
    """Runs a node's model calls on a daemon thread, two requests deep.

    The audio thread and the worker share only two counters (plain int attributes, written by
    one side each, so no lock): ``submitted`` (requests the audio thread handed over; request i
    uses slot i % 2) and ``completed`` (requests the worker finished, in order). The worker
    polls every quarter of a block period while idle.
    """

    def __init__(self, run: Any, slots: list[list[Any]], states: list[tuple[np.ndarray, np.ndarray]],
                 poll: float) -> None:
        self.run, self.slots, self.states = run, slots, states
        self.poll = max(poll, 1e-4)
        self.submitted = 0
        self.completed = 0
        self.error: BaseException | None = None
        self.stop = False
        self.thread = threading.Thread(target=self._loop, name="neuralgraph-onnx-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop:
            done = self.completed
            if done < self.submitted:
                try:
                    for binding in self.slots[done % 2]:
                        self.run(binding)
                    for state_in, state_out in self.states:
                        np.copyto(state_in, state_out)
                except Exception as exc:  # noqa: BLE001 - handed to the audio thread, which faults the node
                    self.error = exc
                    return
                self.completed = done + 1
            else:
                time.sleep(self.poll)

    def wait_idle(self) -> None:
        """Block (control thread only) until every submitted request is done."""
        while self.completed < self.submitted and self.error is None and self.thread.is_alive():
            time.sleep(self.poll)


@hookimpl
def ng_register_nodes(register) -> None:
    register(OnnxModel)
