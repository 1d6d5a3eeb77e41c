"""``onnx.model``: run any ONNX model as a node; a per-tensor table maps its signature onto ports.

Without a ``tensors`` table the conventions hold (see docs/neural.md): batch on axis 0 (dynamic:
lanes are the batch of one call; 1: one call per lane), state named ``state_in*``/``state_out*``,
``rate = "block"`` tensors ``[batch, K]`` as K control ports, ``stream`` and ``frame`` tensors
``[batch, T]`` as audio ports. The table ``[nodes.X.tensors.NAME]`` overrides any of it per
tensor (role, batch/time/feature axes, state pairs, constants, selection, scaling); see
:mod:`neuralgraph_plugins.onnx_mapping`. Buffers and bindings: :mod:`neuralgraph_plugins.onnx_buffers`.

- ``rate = "block"``: one call per block; control ports.
- ``rate = "stream"``: one call per block over the block's samples (plus ``context`` earlier ones).
- ``rate = "frame"``: one call per ``frame_size`` samples (the hop), each window the hop plus
  ``context`` earlier samples; ``frame_size`` samples of declared latency, aligned by the compiler.
- An output with F frames per call other than the hop is held (or linearly interpolated) over
  ``hop / F`` samples; a control output (one value per call) is held over the hop.
- ``worker = true`` (block and stream rates, no context): calls run on a worker thread, double
  buffered, one block of declared latency; a late result holds the last control values or plays silence.

Port names are the model's tensor names made snake_case (``input.1`` -> ``input_1``); a feature
axis of size K gives ``name_1`` ... ``name_K``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from neuralgraph.plugin import (
    Input,
    Node,
    Output,
    Param,
    ParamValueError,
    Ports,
    PrepareContext,
    Rate,
    hookimpl,
)

from .onnx_buffers import (
    Slot,
    TensorOut,
    canonical,
    copy_program,
    fill,
    gather,
    lane_axes,
    lane_first,
    load_value,
    per_call_shape,
    probe_output_shapes,
    run_copies,
    shift_back,
    write_scaled,
)
from .onnx_mapping import MappingError, ModelMap, TensorMap, build_map, port_name  # noqa: F401 - re-exported
from .onnx_signature import (  # noqa: F401 - re-exported
    Signature,
    Tensor,
    fast_runner,
    open_session,
    quiet_run_options,
    read_signature,
    session_options,
    signature_of,
)

if TYPE_CHECKING:
    import onnxruntime as ort

RATES = ("block", "frame", "stream")
#: Calls made in ``prepare`` so that onnxruntime's first-run setup (arena allocation, kernel
#: selection) happens there and not in the first block.
PREWARM_CALLS = 8
#: At frame rate, the most block positions within a hop that get ready copies (see _bind_phases):
#: a block size that does not divide the hop evenly would need one table per sample of the hop.
MAX_PHASES = 64


class OnnxModel(Node):
    """Runs an ONNX model (onnxruntime, one thread); ports come from the model's signature.

    ``rate`` says how the model is called: ``block`` (control ports, once per block), ``stream``
    (audio ports, the block's samples) or ``frame`` (audio in windows of ``context`` +
    ``frame_size`` samples, one call per ``frame_size``, that many samples of latency). The
    ``tensors`` table maps each model tensor: role (audio, control, state, constant, ignore),
    batch, time and feature axes, state pairs, constants, feature selection, scale and offset.
    ``worker = true`` runs the model on its own thread with one block of latency.
    """

    type_name = "onnx.model"
    _phase_ins: Ports | None = None  # the plan's Ports at frame rate, once bound (see _bind_phases)
    _runs_only: list | None = None  # set by bind(): a plan's block is these runs, nothing else
    _warmed = False  # whether warm() compiled the Python path's helpers (in this prepare)
    _gather: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _gather_outputs (no worker)
    bypass = "thru"
    model = Param(init="", kind=str, path=True, live=False, doc="The .onnx file, relative to the patch.")
    rate = Param(
        init="block",
        kind=str,
        choices=RATES,
        live=False,
        doc="block: control ports, one call per block; stream: audio, one call per block; "
        "frame: audio in frames of frame_size (adds frame_size samples of latency).",
    )
    frame_size = Param(
        init=0,
        kind=int,
        min=0,
        max=65536,
        live=False,
        doc="Samples per call for rate = frame, the hop (0: the model's static window - context).",
    )
    context = Param(
        init=0,
        kind=int,
        min=0,
        max=1 << 20,
        live=False,
        doc="Look-behind samples from earlier calls, prepended to each audio window (frame, stream).",
    )
    tensors = Param(
        init={},
        kind=dict,
        live=False,
        doc="Per-tensor mapping, [nodes.X.tensors.NAME]: role, batch_axis, time_axis, feature_axis, "
        "select, output, init, value, interpolate, scale, offset (docs/neural.md).",
    )
    worker = Param(
        init=False,
        kind=bool,
        live=False,
        doc="Run the model on a worker thread (block and stream rates): one block of latency; "
        "a late result holds the last control values (block) or plays silence (stream).",
    )

    @staticmethod
    def inspector() -> Any:
        """The model inspector (:mod:`onnx_inspect`), for ``neuralgraph model inspect``.

        The command reaches it through the registry, since the core imports no plugin.
        """
        from . import onnx_inspect

        return onnx_inspect

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: [pos, wp, done, called, stale]: shared by ``process`` and the fused lines (onnx_fused.py)
        self.cursor = np.zeros(5, np.int64)
        self._session: ort.InferenceSession | None = None
        self.capi: Any = None  # the C API session the fused lines run (onnx_capi.CSession)
        self.capi_reason: str | None = None  # why there is none
        self.map: ModelMap | None = None
        self.signature: Signature | None = None
        if self.worker and (self.rate == "frame" or self.context):
            raise ValueError("worker = true works with rate 'block' or 'stream' and no context")
        self._in_decls: dict[str, Input] = {}
        self._out_decls: dict[str, Output] = {}
        if not self.model:
            return
        try:
            sig, session = signature_of(self.model)
            self.map = build_map(sig, self.rate, self.frame_size, self.context, self.tensors, self.model)
        except ParamValueError:
            raise
        except ValueError as exc:  # reported at the `model` key of the patch
            raise ParamValueError("model", str(exc)) from None
        self.signature, self._session = sig, session
        block = self.rate == "block"
        for port, tm, k in self.map.in_ports():
            rate = Rate.CONTROL if tm.role == "control" else Rate.AUDIO
            self._in_decls[port] = Input(init=0.0, rate=rate, doc=f"Model input {tm.name}[{k}] ({tm.role}).")
        for port, tm, k in self.map.out_ports():
            self._out_decls[port] = Output(
                rate=Rate.CONTROL if block else Rate.AUDIO, doc=f"Model output {tm.name}[{k}] ({tm.role})."
            )

    def inputs(self) -> Mapping[str, Input]:
        return self._in_decls

    def outputs(self) -> Mapping[str, Output]:
        return self._out_decls

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """The tensors bound to the model (twice with a worker), rings and hop buffers, and the
        model's sessions, estimated: each holds the model's weights, about the file's size (a
        16.8 MB MatMul measured 17-50 MB per session). The node keeps its Python session, and
        where its fused lines may run the model through the C API (:meth:`c_session`) a second
        one over the same file."""
        if self.map is None:
            return 0
        sessions = 2 if self.c_session_possible() else 1
        total = sessions * os.path.getsize(self.model)
        hop = self.map.hop or (block_size if self.rate == "stream" else 1)
        window = hop + self.context
        for tm in self.map.inputs + self.map.outputs:
            size = math.prod(d or (window if a == tm.time_axis else 1) for a, d in enumerate(tm.tensor.shape))
            total += 8 * size * lanes * (2 if self.worker else 1) + (
                8 * lanes * window * tm.features if tm.role == "audio" else 0
            )
        return total

    # ---- prepare: arrays and bindings, made once ----------------------------------------------
    def prepare(self, ctx: PrepareContext) -> None:
        self.lanes = lanes = ctx.lanes
        self.frames = ctx.block_size
        self.read_outputs = ctx.read_outputs  # the fused lines write only these (None: all)
        self.owned: np.ndarray | None = None
        if self.map is None:
            return
        mm = self.map
        if self._session is None:
            self._session = open_session(self.model)
        session = self._session
        window = self._timing(ctx)
        shapes, values = self._shapes(ctx, window)
        # State is shared by both slots of a worker (only the worker thread touches it then).
        lead = [] if mm.batched else [lanes]
        shared = {
            tm.name: np.zeros(lead + shapes[tm.name], tm.tensor.dtype)
            for tm in mm.inputs + mm.outputs
            if tm.role == "state"
        }
        self.states = [(shared[tm.name], shared[tm.partner]) for tm in mm.inputs if tm.role == "state"]
        self.values = [(tm, values[tm.name]) for tm in mm.inputs if tm.role in ("constant", "state")]
        outs = {
            tm.name: self._out_plan(tm, shapes[tm.name], lanes) for tm in mm.outputs if tm.role in ("audio", "control")
        }
        alias = self._own_outputs(outs, shapes, lanes) if not self.worker else {}
        self.outs = list(outs.values())
        self._run, self._handle = fast_runner(session)
        self.slots = [Slot(session, mm, lanes, shapes, shared, alias) for _ in range(2 if self.worker else 1)]
        slot = self.slots[0]
        self.io_bindings = slot.bindings  # the onnxruntime objects, kept alive; the calls use handles
        self.bindings = [self._handle(b) for b in slot.bindings]
        self._audio_inputs(slot, lanes, window)
        self.control_in = [
            (port, slot.views[tm.name][:, k, :], tm.scale, tm.offset)
            for port, tm, k in mm.in_ports()
            if tm.role == "control"
        ]
        self.unpacks = [(o, slot.views[o.tm.name]) for o in self.outs if not o.direct]
        self._plan_ins = self._plan_outs = self._phase_ins = None  # set by bind()
        self._phases: dict[int, tuple[np.ndarray | None, list[tuple[np.ndarray, np.ndarray]], int]] = {}
        self.out_srcs = [(port, outs[tm.name].source(slot.views[tm.name])[:, k, :]) for port, tm, k in mm.out_ports()]
        #: frame rate, outputs whose frames are held or interpolated over the hop: the fused lines
        #: make each block's samples from the frames and leave the hop buffer stale (cursor[4])
        self.lazy = [(o, v) for o, v in self.unpacks if self.rate == "frame" and o.resample]
        if self.owned is not None:
            self.owned_outs = [(dst, outs[name], slot.views[name], k) for dst, name, k in self.owned_copies]
            self.owned_copies = [
                (
                    dst,
                    outs[name].source(slot.views[name]) if k is None else outs[name].source(slot.views[name])[:, k, :],
                )
                for dst, name, k in self.owned_copies
            ]
        self._warmed = False  # the Python path's compiled helpers: see warm()
        self.capi = None  # bound to the arrays of a previous prepare: opened again when needed
        self.capi_reason = "a worker's calls are made on its thread" if self.worker else None
        for i in range(PREWARM_CALLS):
            self._run(self.bindings[i % len(self.bindings)], None)
        if self.worker:
            self._start_worker(ctx)
        self.reset()

    def warm(self) -> None:
        """Compile (or load from numba's cache) the helpers the Python path runs (``process``, and
        an escape's Python unpacks): the context shift, interpolation, the block copies, the
        gather. Not in ``prepare``: that would import numba (0.3 s, 100 MB) in every process,
        and with numba imported the plan's fused runs are compiled by its JIT instead of loaded
        from their cached modules (a dispatcher's type checks, about 0.1 us a block). It runs
        at the first ``process`` (in an unfused plan, the engine's warm-up block) or when
        escaping lines need it (:mod:`onnx_fused`); a fused plan that never falls back to
        ``process`` never compiles them, as any node's kernel."""
        if self._warmed or self.map is None:
            return
        for out in self.outs:
            out.warm()
        for ring in self.rings.values() if self.context else ():
            shift_back(ring, 0, 0)
        if any(program is not None for program, _, _ in self._phases.values()):
            run_copies(np.zeros((0, 11), np.int64))
        if self._gather is not None:
            gather(*self._gather)
        self._warmed = True

    def ready(self, ins: Ports, outs: Ports) -> None:
        """Before a fused run falls back to this node's ``process`` while playing: its helpers
        compiled here (:meth:`warm`), not in the audio thread's next block."""
        self.warm()

    def c_session_possible(self) -> bool:
        """Whether :meth:`c_session` may open a second session (not a worker's model, nor with
        ``NEURALGRAPH_ONNX_CAPI=0``); a plan decides whether it does."""
        return not self.worker and os.environ.get("NEURALGRAPH_ONNX_CAPI", "1") != "0"

    def c_session(self) -> Any:
        """The model opened again through onnxruntime's C API over the same arrays, so that the
        fused lines run it from compiled code (:mod:`onnx_capi`). Opened when the lines first ask
        for it (at compile, so an unfused plan or a model run by ``process`` opens none) and kept
        until the next ``prepare`` (at block rate, the next ``bind``: it binds the plan's own port
        arrays). None, with ``capi_reason``, where it does not apply (a worker, a block-rate model
        with copies around its run, ``NEURALGRAPH_ONNX_CAPI=0``) or cannot be opened: the lines
        then escape to Python for each call (block rate: ``process`` runs the Python session)."""
        if self.capi is not None or self.capi_reason is not None or self.map is None:
            return self.capi
        from . import onnx_capi

        if os.environ.get("NEURALGRAPH_ONNX_CAPI", "1") == "0":
            self.capi_reason = "NEURALGRAPH_ONNX_CAPI=0"
            return None
        specs = self._plan_specs if self.rate == "block" else self.slots[0].specs
        try:
            capi = onnx_capi.CSession(self.model, specs)
        except onnx_capi.CApiError as exc:
            self.capi_reason = str(exc)
            return None
        # onnxruntime's first-run setup here, not in a block; the outputs are left as they were
        kept = [(arr, arr.copy()) for spec in specs for _, is_input, arr in spec if not is_input]
        for i in range(PREWARM_CALLS):
            capi.run(i % len(self.bindings))
        for arr, was in kept:
            np.copyto(arr, was)
        self.capi = capi
        return capi

    def _start_worker(self, ctx: PrepareContext) -> None:
        """The thread that runs the model one block behind, over the two slots."""
        self.late_blocks = 0
        self.dropped_blocks = 0
        self._worker = _Worker(
            self._run,
            [[self._handle(b) for b in s.bindings] for s in self.slots],
            self.states,
            poll=0.25 * ctx.block_size / ctx.sample_rate,
        )

    def _timing(self, ctx: PrepareContext) -> int:
        """Samples per call (``hop``), the window a call sees (hop + context, returned) and the
        latency they make; a static time axis must fit the window at stream rate."""
        mm = self.map
        hop = self.hop = {"frame": mm.hop, "stream": ctx.block_size, "block": 1}[self.rate]
        window = self.window = hop + self.context
        if self.rate == "stream" and mm.window is not None and mm.window != window:
            what = f"the block size is {ctx.block_size}" + (f" (+ context {self.context})" if self.context else "")
            raise ValueError(
                f"model {self.model!r} has a static time axis of {mm.window} samples but {what}; "
                f"export it with a dynamic time axis"
            )
        self.latency = hop if self.rate == "frame" else (ctx.block_size if self.worker else 0)
        return window

    def _shapes(self, ctx: PrepareContext, window: int) -> tuple[dict[str, list[int]], dict[str, np.ndarray]]:
        """Every tensor's shape per call (outputs by one probe run) and the constants' and states'
        initial values."""
        mm = self.map
        calls = ctx.lanes if mm.batched else 1
        shapes = {tm.name: per_call_shape(tm, calls, mm.batched, window) for tm in mm.inputs}
        values = {
            tm.name: load_value(tm.value if tm.role == "constant" else tm.init, ctx.patch_dir, tm)
            for tm in mm.inputs
            if tm.role in ("constant", "state")
        }
        shapes.update(probe_output_shapes(self._session, mm, shapes, values, self.model, self.signature))
        return shapes, values

    def _audio_inputs(self, slot: Slot, lanes: int, window: int) -> None:
        """Where audio inputs go: samples are written (and cast) straight into the bound tensor,
        which holds context + hop and is shifted after each call; a float16 tensor with context
        (numba cannot shift it) and a worker's two slots use a float32 window copied into the
        tensor per call."""
        mm = self.map
        audio = [tm for tm in mm.inputs if tm.role == "audio"]
        self.direct_in = not self.worker and (
            not self.context or all(slot.views[tm.name].dtype != np.float16 for tm in audio)
        )
        self.rings = {
            tm.name: (slot.views[tm.name] if self.direct_in else np.zeros((lanes, tm.features, window), np.float32))
            for tm in audio
        }
        self.ring_len = window
        self.ring_in = [
            (port, self.rings[tm.name][:, k, :], tm.scale, tm.offset)
            for port, tm, k in mm.in_ports()
            if tm.role == "audio"
        ]
        self.ring_copies = [] if self.direct_in else [(self.rings[tm.name], slot.views[tm.name]) for tm in audio]

    def _out_plan(self, tm: TensorMap, shape: list[int], lanes: int) -> TensorOut:
        frames = 1 if tm.time_axis is None else shape[tm.time_axis]
        if self.rate == "block" and frames != 1:
            raise ValueError(
                f"model {self.model!r}: output {tm.name!r} has {frames} frames per call; rate "
                f"'block' takes one (use rate 'stream' or 'frame')"
            )
        start = self.context if self.context and frames == self.window else 0
        return TensorOut(tm, frames, self.hop, start, lanes, direct=not self.worker)

    def _own_outputs(
        self, outs: dict[str, TensorOut], shapes: dict[str, list[int]], lanes: int
    ) -> dict[str, np.ndarray]:
        """The port buffers, (ports, lanes, block width) in one array the plan uses directly
        (:meth:`output_buffers`). At block and stream rates a float32 output whose memory order
        matches is bound onto it, so the call writes the ports with no copy; others (and every
        frame-rate output) are copied one tensor at a time rather than one port at a time."""
        mm = self.map
        ports = mm.out_ports()
        width = 1 if self.rate == "block" else self.frames
        self.owned = np.zeros((len(ports), lanes, width), np.float32)
        self._owned_views = {port: self.owned[j] for j, (port, _, _) in enumerate(ports)}
        alias: dict[str, np.ndarray] = {}
        self.owned_copies = []
        bulk: list[tuple[TensorMap, int, bool]] = []
        j = 0
        for tm in mm.outputs:
            if tm.role not in ("audio", "control"):
                continue
            n = len(tm.ports())
            block = self.owned[j : j + n]
            out = outs[tm.name]
            if (
                self.rate != "frame"
                and n == tm.features
                and out.direct
                and out.start == 0
                and self._same_order(tm, shapes[tm.name], lanes)
            ):
                alias[tm.name] = block
            elif n == tm.features and self.rate != "frame" and not out.direct and not out.resample and not out.held:
                out.hop = block.transpose(1, 0, 2)  # the cast (and scale) writes the ports themselves
            elif n == tm.features:
                self.owned_copies.append((block.transpose(1, 0, 2), tm.name, None))
                bulk.append((tm, j, out.direct))
            else:
                self.owned_copies.extend((block[i], tm.name, k) for i, k in enumerate(tm.select))
            j += n
        self._gather = None
        if (
            self.rate != "frame"
            and len(bulk) > 1
            and len(bulk) == len(self.owned_copies)
            and not alias
            and all(direct for _, _, direct in bulk)
        ):
            alias = self._gather_outputs(bulk, shapes, lanes)
        return alias

    def _gather_outputs(
        self, bulk: list[tuple[TensorMap, int, bool]], shapes: dict[str, list[int]], lanes: int
    ) -> dict[str, np.ndarray]:
        """Several float32 outputs that each need a transposed copy (lanes as the batch, K > 1)
        are bound side by side in one flat array, and one compiled gather with a permutation made
        here fills every port: one call per block instead of one transposed copy per tensor."""
        lead = [] if self.map.batched else [lanes]
        sizes = [math.prod(lead + shapes[tm.name]) for tm, _, _ in bulk]
        flat = np.zeros(sum(sizes), np.float32)
        index = np.arange(flat.size, dtype=np.intp)
        perm = np.empty(self.owned.shape, np.intp)
        alias, offset = {}, 0
        for (tm, j, _), size in zip(bulk, sizes):
            alias[tm.name] = flat[offset : offset + size]
            ids = index[offset : offset + size].reshape(lead + shapes[tm.name])
            feat, time = lane_axes(tm, self.map.batched)
            np.copyto(
                perm[j : j + tm.features].transpose(1, 0, 2),
                canonical(lane_first(ids, tm, self.map.batched), feat, time),
            )
            offset += size
        self._gather = (flat, perm.reshape(-1), self.owned.reshape(-1))
        self.owned_copies = []
        return alias

    def _same_order(self, tm: TensorMap, shape: list[int], lanes: int) -> bool:
        labels = [
            (
                "L"
                if a == tm.batch_axis and self.map.batched
                else "K"
                if a == tm.feature_axis
                else "T"
                if a == tm.time_axis
                else "1",
                d,
            )
            for a, d in enumerate(shape)
        ]
        if not self.map.batched:
            labels = [("L", lanes)] + labels
        ours = [name for name, d in labels if d > 1]
        theirs = [name for name, d in (("K", tm.features), ("L", lanes), ("T", self.hop)) if d > 1]
        return ours == theirs

    def output_buffers(self) -> dict[str, np.ndarray] | None:
        """The arrays this node's outputs live in (block and stream rates, no worker); the plan
        uses them as the outputs' buffers, so results reach readers without a copy per port."""
        return None if self.owned is None else self._owned_views

    @property
    def pos(self) -> int:
        """Samples of the current hop already taken (frame rate)."""
        return int(self.cursor[0])

    @pos.setter
    def pos(self, value: int) -> None:
        self.cursor[0] = value

    @property
    def wp(self) -> int:
        """Where the next sample goes in the window (after the context)."""
        return int(self.cursor[1])

    @wp.setter
    def wp(self, value: int) -> None:
        self.cursor[1] = value

    def kernel(self, ins: Ports, outs: Ports) -> Any:
        """At frame and stream rates, the block as compiled lines that make each model call
        through the C API, or stop for it where that does not apply (:mod:`onnx_fused`). At block
        rate, a block that is the model's runs alone, as lines that make them."""
        from .onnx_fused import escape_kernel, runs_kernel

        return runs_kernel(self, ins, outs) if self.rate == "block" else escape_kernel(self, ins, outs)

    # ---- the audio thread -----------------------------------------------------------------------
    def bind(self, ins: Ports, outs: Ports) -> None:
        """The plan's Ports: a float32 input tensor that is exactly one port's array (C-contiguous,
        lanes by samples) gets a second set of bindings that read that array in place, so the
        plan's calls copy nothing in; outputs living in :meth:`output_buffers` copy nothing out."""
        self._runs_only = None
        if self.rate == "block" and not self.worker:  # its C session binds this plan's arrays (c_session)
            self.capi, self.capi_reason = None, "a block-rate model with copies around its run is run by process()"
        if self.map is None:
            return
        if self.owned is not None and all(outs[p] is a for p, a in self._owned_views.items()):
            self._plan_outs = outs
        if self.rate == "frame" and not self.worker:
            self._bind_phases(ins, outs)
        if self.rate == "frame" or self.worker or self.context:
            return
        mm, session = self.map, self._session
        direct: dict[str, np.ndarray] = {}
        for port, tm, _ in mm.in_ports():
            arr = ins[port]
            if (
                tm.features == 1
                and tm.tensor.dtype == np.float32
                and tm.scale == 1.0
                and tm.offset == 0.0
                and arr.dtype == np.float32
                and arr.flags.c_contiguous
                and arr.shape == (self.lanes, self.hop if tm.role == "audio" else 1)
            ):
                direct[tm.name] = arr
        if not direct:
            return
        bindings, specs = [], []
        for lane in range(len(self.bindings)):
            ours = session.io_binding()
            specs.append([])
            for tm in mm.inputs + mm.outputs:
                arr = direct.get(tm.name)
                if arr is None:
                    arr = self.slots[0].storage[tm.name]
                    if not mm.batched and tm.role != "constant":
                        arr = arr[lane]
                elif not mm.batched:
                    arr = arr[lane : lane + 1].reshape(self.slots[0].storage[tm.name][lane].shape)
                else:
                    arr = arr.reshape(self.slots[0].storage[tm.name].shape)
                bind = ours.bind_input if tm.is_input else ours.bind_output
                bind(tm.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
                specs[-1].append((tm.name, tm.is_input, arr))
            bindings.append(ours)
        self._plan_io = bindings
        self._plan_bindings = [self._handle(b) for b in bindings]
        self._plan_control = [
            c
            for c, (port, tm, _) in zip(self.control_in, [x for x in mm.in_ports() if x[1].role == "control"])
            if tm.name not in direct
        ]
        self._plan_ring = [
            r
            for r, (port, tm, _) in zip(self.ring_in, [x for x in mm.in_ports() if x[1].role == "audio"])
            if tm.name not in direct
        ]
        self._plan_ins = ins
        if (
            self.rate == "block"
            and outs is self._plan_outs
            and not (self._plan_control or self._plan_ring or self.states or self.unpacks or self.owned_copies)
            and self._gather is None
        ):
            self._runs_only = self._plan_bindings
            self._plan_specs, self.capi_reason = specs, None

    def _bind_phases(self, ins: Ports, outs: Ports) -> None:
        """Frame rate with the plan's Ports: for every position a whole block can start at within
        the hop and end by the call, the block's copies (its samples into the window, the held
        outputs into the node's port buffers) as ready views, so such a block is one copy per
        tensor with no slicing (one compiled call for all of them when all are float32); a block
        that a call splits takes the general loop."""
        self._phases = {}
        self._phase_ins = None
        if outs is not self._plan_outs or any(scale != 1.0 or offset != 0.0 for _, _, scale, offset in self.ring_in):
            return
        hop, block, c = self.hop, self.frames, self.context
        if hop // math.gcd(hop, block) > MAX_PHASES:  # e.g. a block of 37 against a hop of 2048
            return
        for pos in sorted({(k * block) % hop for k in range(hop // math.gcd(hop, block))}):
            if pos + block > hop:
                continue
            copies = [(ring[:, c + pos : c + pos + block], ins[port]) for port, ring, _, _ in self.ring_in]
            copies += [(dst, src[..., pos : pos + block]) for dst, src in self.owned_copies]
            program = copy_program(copies)  # the views' arrays live as long as the node and the plan
            self._phases[pos] = (program, copies, pos + block)
        self._phase_ins = ins

    def _call(self, ins: Ports, control_in: list | None = None, bindings: list | None = None) -> None:
        for port, view, scale, offset in self.control_in if control_in is None else control_in:
            write_scaled(view, ins[port], scale, offset)
        wp = self.wp
        if self.ring_copies:
            start = wp - self.window
            for ring, view in self.ring_copies:
                np.copyto(view, ring[:, :, start:wp], casting="unsafe")
        run = self._run
        for binding in self.bindings if bindings is None else bindings:
            run(binding, None)
        for state_in, state_out in self.states:
            np.copyto(state_in, state_out)
        for out, view in self.unpacks:
            out.unpack(view)
        if self.rings and wp + self.hop > self.ring_len:  # move the context to the front of the ring
            c = self.context
            if c:
                for ring in self.rings.values():
                    shift_back(ring, wp - c, c)
            self.wp = c

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        runs = self._runs_only
        if runs is not None and ins is self._plan_ins and outs is self._plan_outs:
            run = self._run  # every tensor is a port's array: the block is the model's run
            for binding in runs:
                run(binding, None)
            return
        if not self._warmed:
            self.warm()
        if self.cursor[4]:  # the fused lines ran the last call: the hop buffers from its frames
            self._fill_hops()
        if ins is self._phase_ins and outs is self._plan_outs and frames == self.frames:
            phase = self._phases.get(self.pos)
            if phase is not None:  # frame rate, a whole block before (or up to) the call
                program, copies, after = phase
                if program is not None:
                    run_copies(program)
                else:
                    for dst, src in copies:
                        np.copyto(dst, src, casting="unsafe")
                self.wp += frames
                if after == self.hop:
                    self._call(ins)
                    after = 0
                self.pos = after
                return
        if self.map is None or frames == 0:
            return
        if self.worker:
            self._process_worker(ins, outs)
            return
        if self.rate == "frame":
            self._process_frames(ins, outs, frames)
            return
        plan = ins is self._plan_ins
        if self.ring_in:  # stream: the block's samples after the context
            wp = self.wp
            for port, ring, scale, offset in self._plan_ring if plan else self.ring_in:
                write_scaled(ring[:, wp : wp + frames], ins[port], scale, offset)
            self.wp = wp + frames
        if plan:
            self._call(ins, self._plan_control, self._plan_bindings)
        else:
            self._call(ins)
        if outs is self._plan_outs:
            if self._gather is not None:
                gather(*self._gather)
            for dst, src in self.owned_copies:
                np.copyto(dst, src)
            return
        for port, src in self.out_srcs:
            np.copyto(outs[port], src)

    def _fill_hops(self) -> None:
        for out, view in self.lazy:
            out.fill(view)
        self.cursor[4] = 0

    def _process_frames(self, ins: Ports, outs: Ports, frames: int) -> None:
        """Fill the current hop; the outputs play the previous call's result."""
        hop, pos, done = self.hop, self.pos, 0
        while done < frames:
            n = min(hop - pos, frames - done)
            wp = self.wp
            for port, ring, scale, offset in self.ring_in:
                write_scaled(ring[:, wp : wp + n], ins[port][:, done : done + n], scale, offset)
            if outs is self._plan_outs:  # one copy per tensor into the node's own port buffers
                for dst, src in self.owned_copies:
                    dst[..., done : done + n] = src[..., pos : pos + n]
            else:
                for port, src in self.out_srcs:
                    outs[port][:, done : done + n] = src[:, pos : pos + n]
            pos += n
            done += n
            self.wp = wp + n
            if pos == hop:
                self._call(ins)
                pos = 0
        self.pos = pos

    def _process_worker(self, ins: Ports, outs: Ports) -> None:
        """Deliver the previous block's result if the worker has it, then hand it this block."""
        w = self._worker
        k = w.submitted
        if k > self.delivered and w.completed >= k:  # request k - 1 is done and not yet played
            views = self.slots[(k - 1) % 2].views
            for out in self.outs:
                out.unpack(views[out.tm.name])
            for port, src in self.out_srcs:
                np.copyto(outs[port], src)
            self.delivered = k
        else:  # late (or the first block): hold the last control values; audio falls silent
            if k > 0:
                self.late_blocks += 1
            for port, src in self.out_srcs:
                if self.rate == "block":
                    np.copyto(outs[port], src)
                else:
                    outs[port].fill(0.0)
        if w.error is not None:
            raise w.error  # the plan bypasses this node and reports the fault
        if w.completed >= k - 1:  # the slot of request k - 2 is free again
            views = self.slots[k % 2].views
            for port, tm, c in self.map.in_ports():
                write_scaled(views[tm.name][:, c, :], ins[port], tm.scale, tm.offset)
            w.submitted = k + 1
        else:
            self.dropped_blocks += 1

    # ---- state ----------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        """Every array that holds running state, by a stable name (bound tensors, rings, hops)."""
        arrays: dict[str, np.ndarray] = {}
        for i, slot in enumerate(self.slots):
            for name, arr in slot.storage.items():
                arrays[f"slot{i}:{name}"] = arr
        for name, ring in self.rings.items():
            arrays[f"ring:{name}"] = ring
        for out in self.outs:
            if out.hop is not None:
                arrays[f"hop:{out.tm.name}"] = out.hop
            if out.resample:
                arrays[f"ext:{out.tm.name}"] = out.ext
        if self.owned is not None:
            arrays["owned"] = self.owned
        return arrays

    def reset(self) -> None:
        if self.map is None:
            return
        if self.worker:
            self._worker.wait_idle()
            self._worker.submitted = self._worker.completed = 0
            self.delivered = self.late_blocks = self.dropped_blocks = 0
        for arr in self._arrays().values():
            arr.fill(0)
        for slot in self.slots:
            for tm, value in self.values:
                fill(slot.storage[tm.name], value, tm)
        self.cursor.fill(0)
        self.wp = self.context

    def save_state(self) -> dict[str, Any]:
        """Parameters, the model's tensors (recurrent state included), rings and hop buffers and
        the frame/worker position. A worker is first let finish what it was handed."""
        state: dict[str, Any] = {name: self.__dict__[name] for name in self.params()}
        if self.map is None:
            return state
        if self.worker:
            self._worker.wait_idle()
            state["counters"] = (
                self.delivered,
                self._worker.submitted,
                self._worker.completed,
                self.late_blocks,
                self.dropped_blocks,
            )
        state["pos"], state["wp"], state["stale"] = self.pos, self.wp, int(self.cursor[4])
        state["arrays"] = {name: arr.copy() for name, arr in self._arrays().items()}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Write a :meth:`save_state` snapshot back into the bound tensors (in place: the
        onnxruntime bindings point at these arrays)."""
        for name in self.params():
            if name in state and state[name] != self.__dict__[name]:
                if not self.params()[name].live:
                    raise ValueError(
                        f"the state was saved with {name} = {state[name]!r}, this node has "
                        f"{name} = {self.__dict__[name]!r}"
                    )
                self.__dict__[name] = state[name]
        if self.map is None:
            return
        saved = state.get("arrays")
        ours = self._arrays()
        if saved is None or set(saved) != set(ours) or any(saved[n].shape != a.shape for n, a in ours.items()):
            raise ValueError("the state's tensors do not fit this node (saved with other lanes, block size or model)")
        if self.worker:
            self._worker.wait_idle()
            (self.delivered, self._worker.submitted, self._worker.completed, self.late_blocks, self.dropped_blocks) = (
                state["counters"]
            )
        for name, arr in ours.items():
            np.copyto(arr, saved[name])
        self.pos, self.wp = state["pos"], state["wp"]
        self.cursor[4] = state.get("stale", 0)  # 0 in a snapshot from before the flag: its hops were filled

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

    def __init__(
        self, run: Any, slots: list[list[Any]], states: list[tuple[np.ndarray, np.ndarray]], poll: float
    ) -> None:
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
                        self.run(binding, None)
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
