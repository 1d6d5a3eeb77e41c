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

Port names are the model's tensor names made snake_case (``input.1`` -> ``input_1``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import onnxruntime as ort

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl

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
    opts.log_severity_level = 3
    return opts


def open_session(path: str) -> ort.InferenceSession:
    """An onnxruntime session for ``path``; ValueError naming the file when it is not a usable model."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
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
    lanes in one call; a batch of 1 runs one call per lane.
    """

    type_name = "onnx.model"
    bypass = "thru"
    model = Param(init="", kind=str, path=True, live=False, doc="The .onnx file, relative to the patch.")
    rate = Param(init="block", kind=str, choices=RATES, live=False,
                 doc="block: control ports, one call per block; stream: audio, one call per block; "
                     "frame: audio in frames of frame_size (adds frame_size samples of latency).")
    frame_size = Param(init=0, kind=int, min=0, max=65536, live=False,
                       doc="Samples per frame for rate = frame (0: the model's static frame axis).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._session: ort.InferenceSession | None = None
        self.layout: Layout | None = None
        if self.model:
            sig, session = signature_of(self.model)
            self.layout = check_signature(sig, self.rate, self.frame_size, self.model)
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
        # One (lanes, ...) array per tensor; a per-lane call binds row l of each.
        self.arrays: dict[str, np.ndarray] = {}
        for t in layout.signal_in + layout.signal_out:
            cols = t.shape[1] if self.rate == "block" else width
            self.arrays[t.name] = np.zeros((lanes, cols), np.float32)
        self.states: list[tuple[np.ndarray, np.ndarray]] = []
        for tin, tout in layout.state_pairs:
            a = np.zeros((lanes, *tin.shape[1:]), np.float32)
            b = np.zeros((lanes, *tout.shape[1:]), np.float32)
            self.arrays[tin.name], self.arrays[tout.name] = a, b
            self.states.append((a, b))
        rows = [slice(0, lanes)] if layout.batch_dynamic else [slice(i, i + 1) for i in range(lanes)]
        self.bindings = []
        for rows_ in rows:
            binding = self._session.io_binding()
            for t in self._session.get_inputs():
                view = self.arrays[t.name][rows_]
                binding.bind_input(t.name, "cpu", 0, np.float32, list(view.shape), view.ctypes.data)
            for t in self._session.get_outputs():
                view = self.arrays[t.name][rows_]
                binding.bind_output(t.name, "cpu", 0, np.float32, list(view.shape), view.ctypes.data)
            self.bindings.append(binding)
        self._run = self._session.run_with_iobinding
        # Column views: what each port reads from or writes to, as (lanes, 1) or (lanes, width).
        if self.rate == "block":
            self.in_views = [(p, self.arrays[t][:, c:c + 1]) for p, t, c in layout.in_ports]
            self.out_views = [(p, self.arrays[t][:, c:c + 1]) for p, t, c in layout.out_ports]
        else:
            self.in_views = [(p, self.arrays[t]) for p, t, _ in layout.in_ports]
            self.out_views = [(p, self.arrays[t]) for p, t, _ in layout.out_ports]
        for i in range(PREWARM_CALLS):
            self._run(self.bindings[i % len(self.bindings)])
        self.reset()

    def _call(self) -> None:
        for binding in self.bindings:
            self._run(binding)
        for state_in, state_out in self.states:
            np.copyto(state_in, state_out)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if self.layout is None:
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

    def reset(self) -> None:
        if self.layout is None:
            return
        for arr in self.arrays.values():
            arr.fill(0.0)
        self.pos = 0


@hookimpl
def ng_register_nodes(register) -> None:
    register(OnnxModel)
