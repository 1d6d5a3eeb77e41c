"""The arrays ``onnx.model`` binds to onnxruntime, made once in ``prepare``.

Every tensor gets one *storage* array of its own dtype: with lanes as the batch it is the tensor
itself (batch = lanes), with one call per lane it is ``(lanes, *per_call_shape)`` and lane ``l``
binds ``storage[l]``. A *canonical view* ``(lanes, K, T)`` of each storage (feature axis, then
time axis; size-1 axes dropped) is what ports are copied to and from, so the copying code never
cares where the model keeps its batch, time or feature axis. Values are cast at these copies
(``casting="unsafe"`` into int, bool and float16 tensors). :class:`TensorOut` turns one output
tensor into its ports' samples (straight, cast, held or interpolated over the hop);
:func:`probe_output_shapes` learns the output shapes from one call in ``prepare``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuralgraph.plugin import intrinsic, njit

from .onnx_mapping import ModelMap, TensorMap
from .onnx_signature import quiet_run_options

if TYPE_CHECKING:
    import onnxruntime as ort


@njit(cache=True, nogil=True)
def gather(src: np.ndarray, perm: np.ndarray, dst: np.ndarray) -> None:  # pragma: no cover - compiled
    """dst[i] = src[perm[i]]: every port of several transposed outputs in one call (np.take with
    ``out`` measures 3x slower for a few hundred elements)."""
    for i in range(perm.size):
        dst[i] = src[perm[i]]


@njit(cache=True, nogil=True)
def shift_back(ring: np.ndarray, src: int, n: int) -> None:  # pragma: no cover - compiled
    """ring[..., :n] = ring[..., src:src + n], front to back (safe when the two overlap). numpy's
    copyto makes a temporary copy of an overlapping (lanes, K, n) source: an array per call."""
    for lane in range(ring.shape[0]):
        for k in range(ring.shape[1]):
            for i in range(n):
                ring[lane, k, i] = ring[lane, k, src + i]


@intrinsic
def _float32_at(typingctx: Any, address: Any) -> Any:  # pragma: no cover - compiled
    """The float32 at a raw address (an array's data pointer plus byte offsets)."""
    from numba import types  # at typing time: importing this module imports no numba

    sig = types.CPointer(types.float32)(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float32)))

    return sig, codegen


@njit(cache=True, nogil=True)
def run_copies(program: np.ndarray) -> None:  # pragma: no cover - compiled
    """Every copy of a :func:`copy_program` in one compiled call."""
    for r in range(program.shape[0]):
        dst, src = program[r, 0], program[r, 1]
        n0, n1, n2 = program[r, 2], program[r, 3], program[r, 4]
        for a in range(n0):
            for b in range(n1):
                d = dst + a * program[r, 5] + b * program[r, 6]
                s = src + a * program[r, 8] + b * program[r, 9]
                for c in range(n2):
                    _float32_at(d + c * program[r, 7])[0] = _float32_at(s + c * program[r, 10])[0]


def copy_program(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """The (dst, src) float32 copies of up to 3 dimensions as rows of addresses, shapes and byte
    strides for :func:`run_copies`: one compiled call instead of one copyto per pair (a copyto costs
    about as much as a small model's run). None if a pair is not float32 to float32 of one shape.
    The caller keeps the arrays alive for as long as it runs the program."""
    rows = []
    for dst, src in pairs:
        if dst.dtype != np.float32 or src.dtype != np.float32 or dst.shape != src.shape or dst.ndim > 3:
            return None
        lead = (1,) * (3 - dst.ndim)
        shape = lead + dst.shape
        rows.append(
            [
                dst.ctypes.data,
                src.ctypes.data,
                *shape,
                *((0,) * len(lead) + dst.strides),
                *((0,) * len(lead) + src.strides),
            ]
        )
    return np.array(rows, np.int64).reshape(-1, 11)  # the caller has run_copies compiled before a block runs it


def canonical(arr: np.ndarray, feat: int | None, time: int | None) -> np.ndarray:
    """A ``(lanes, K, T)`` view of a lane-first ``arr``; every other axis must have size 1."""
    keep = sorted({0} | {a for a in (feat, time) if a is not None})
    view = arr[tuple(slice(None) if a in keep else 0 for a in range(arr.ndim))]
    pos = {a: i for i, a in enumerate(keep)}
    view = view.transpose([pos[a] for a in (0, feat, time) if a is not None])
    if feat is None:
        view = np.expand_dims(view, 1)
    if time is None:
        view = np.expand_dims(view, 2)
    return view


def lane_axes(tm: TensorMap, batched: bool) -> tuple[int | None, int | None]:
    """Where the tensor's feature and time axes sit in its lane-first storage view."""

    def move(a: int | None) -> int | None:
        if a is None:
            return None
        if not batched:
            return a + 1
        return a + 1 if a < tm.batch_axis else a

    return move(tm.feature_axis), move(tm.time_axis)


def lane_first(storage: np.ndarray, tm: TensorMap, batched: bool) -> np.ndarray:
    """The storage with the lanes on axis 0."""
    return np.moveaxis(storage, tm.batch_axis, 0) if batched else storage


def per_call_shape(tm: TensorMap, lanes: int, batched: bool, window: int) -> list[int]:
    """The shape of an input for one call: batch = lanes or 1, time = the window, features = K."""
    shape = []
    for a, d in enumerate(tm.tensor.shape):
        if a == tm.batch_axis:
            shape.append(lanes if batched else 1)
        elif a == tm.time_axis:
            shape.append(window if tm.role == "audio" else 1)
        elif a == tm.feature_axis:
            shape.append(tm.features)
        else:
            shape.append(1 if d is None else d)
    return shape


def load_value(value: Any, patch_dir: Path, tm: TensorMap) -> np.ndarray:
    """A constant or initial value: a number, a list, or a .npy file beside the patch."""
    if isinstance(value, str):
        root = patch_dir.resolve()
        path = (root / value).resolve()
        if root not in path.parents:
            raise ValueError(f"tensors.{tm.name}: {value!r} must be a .npy file inside the patch's folder")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"tensors.{tm.name}: cannot read {value!r} ({exc})") from None
    return np.asarray(value)


def fill(storage: np.ndarray, value: np.ndarray, tm: TensorMap) -> None:
    """Broadcast ``value`` (shaped like one call's tensor, its batch axis 1 or left out) into storage."""
    v = value
    if tm.batch_axis is not None and v.ndim == len(tm.tensor.shape) - 1:
        v = np.expand_dims(v, tm.batch_axis)
    try:
        np.copyto(storage, v, casting="unsafe")
    except ValueError:
        raise ValueError(
            f"tensors.{tm.name}: a value shaped {list(value.shape)} does not fit the tensor's "
            f"shape {list(storage.shape)}"
        ) from None


def probe_output_shapes(
    session: ort.InferenceSession,
    mm: ModelMap,
    shapes: dict[str, list[int]],
    values: dict[str, np.ndarray],
    model: str,
    signature: Any,
) -> dict[str, list[int]]:
    """Run one call on zeros (constants and initial state filled in) to learn the output shapes,
    and check that every state's output has its input's shape."""
    feeds = {}
    for tm in mm.inputs:
        arr = np.zeros(shapes[tm.name], tm.tensor.dtype)
        if tm.name in values:
            fill(arr, values[tm.name], tm)
        feeds[tm.name] = arr
    try:
        got = session.run([tm.name for tm in mm.outputs], feeds, quiet_run_options())
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        given = ", ".join(f"{n} {list(a.shape)}" for n, a in feeds.items())
        raise ValueError(
            f"model {model!r} fails on a call with {given} ({first}); the model has {signature.text()}"
        ) from None
    out = {tm.name: list(a.shape) for tm, a in zip(mm.outputs, got)}
    for tm in mm.inputs:
        if tm.role == "state" and out[tm.partner] != shapes[tm.name]:
            raise ValueError(
                f"model {model!r}: state {tm.name!r} is {shapes[tm.name]} per call but its "
                f"output {tm.partner!r} is {out[tm.partner]}; the model has {signature.text()}"
            )
    for tm in mm.outputs:
        if tm.feature_axis is not None and out[tm.name][tm.feature_axis] != tm.features:
            raise ValueError(
                f"model {model!r}: output {tm.name!r} came out {out[tm.name]}, not "
                f"{tm.features} features on axis {tm.feature_axis}"
            )
    return out


class Slot:
    """One set of bound tensors: storage per tensor, one binding per call, canonical views."""

    def __init__(
        self,
        session: ort.InferenceSession,
        mm: ModelMap,
        lanes: int,
        shapes: dict[str, list[int]],
        shared: dict[str, np.ndarray],
        alias: dict[str, np.ndarray],
    ) -> None:
        self.storage: dict[str, np.ndarray] = dict(shared)
        per_lane = [] if mm.batched else list(range(lanes))
        for tm in mm.inputs + mm.outputs:
            if tm.name in self.storage:
                continue
            shape = shapes[tm.name]
            lead = [] if mm.batched or tm.role in ("constant",) else [lanes]
            if tm.name in alias:
                self.storage[tm.name] = alias[tm.name].reshape(lead + shape)
            else:
                self.storage[tm.name] = np.zeros(lead + shape, tm.tensor.dtype)
        self.bindings = []
        #: per binding, what it binds: (tensor name, is an input, the array), for the C API's own
        #: bindings of the same arrays (``onnx_capi``)
        self.specs: list[list[tuple[str, bool, np.ndarray]]] = []
        for lane in per_lane or [None]:
            binding = session.io_binding()
            spec = []
            for tm in mm.inputs + mm.outputs:
                arr = self.storage[tm.name]
                if lane is not None and tm.role != "constant":
                    arr = arr[lane]
                bind = binding.bind_input if tm.is_input else binding.bind_output
                bind(tm.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
                spec.append((tm.name, tm.is_input, arr))
            self.bindings.append(binding)
            self.specs.append(spec)
        self.views: dict[str, np.ndarray] = {}
        for tm in mm.inputs + mm.outputs:
            if tm.role in ("audio", "control"):
                feat, time = lane_axes(tm, mm.batched)
                self.views[tm.name] = canonical(lane_first(self.storage[tm.name], tm, mm.batched), feat, time)


def write_scaled(dst: np.ndarray, src: np.ndarray, scale: float, offset: float) -> None:
    """dst = src * scale + offset, cast to dst's dtype (no temporaries)."""
    if scale == 1.0 and offset == 0.0:
        np.copyto(dst, src, casting="unsafe")
        return
    np.multiply(src, scale, out=dst, casting="unsafe")
    if offset:
        np.add(dst, offset, out=dst, casting="unsafe")


@njit(cache=True, nogil=True)
def resample(ext: np.ndarray, lo: np.ndarray, frac: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """out[..., j] = ext[..., lo[j]] (1 - frac[j]) + ext[..., lo[j] + 1] frac[j] (the second term
    only where frac[j] != 0). lo never decreases: each run of one lo is a vectorised loop."""
    hop = out.shape[2]
    for lane in range(out.shape[0]):
        for k in range(out.shape[1]):
            j = 0
            while j < hop:
                f = lo[j]
                end = j
                while end < hop and lo[end] == f:
                    end += 1
                e0 = ext[lane, k, f]
                e1 = ext[lane, k, min(f + 1, ext.shape[2] - 1)]
                for i in range(j, end):
                    w = frac[i]
                    a = e0 * (np.float32(1.0) - w)
                    out[lane, k, i] = a + e1 * w if w != 0.0 else a
                j = end


def resample_points(frames: int, hop: int, interpolate: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, frac)`` per sample j of the hop, indexing [previous last frame, this call's frames].

    Frame f (1-based) lands at the end of its hop / frames samples; ``hold`` keeps it over its
    span, ``linear`` ramps from the frame before to it."""
    lo = np.zeros(hop, np.intp)
    frac = np.zeros(hop, np.float32)
    for j in range(hop):
        if interpolate == "hold":
            lo[j] = 1 + (j * frames) // hop
        else:
            u = (j + 1) * frames / hop
            lo[j] = min(math.floor(u), frames)
            frac[j] = u - lo[j]
    return lo, frac


def run_ends(lo: np.ndarray) -> np.ndarray:
    """Per sample j of the hop, where the run of samples sharing ``lo[j]`` ends (exclusive): the
    fused lines interpolate a run between the same two frames as one vectorised loop."""
    ends = np.empty(lo.size, np.int64)
    end = lo.size
    for j in range(lo.size - 1, -1, -1):
        if j + 1 < lo.size and lo[j + 1] != lo[j]:
            end = j + 1
        ends[j] = end
    return ends


class TensorOut:
    """How one output tensor reaches its ports after a call: straight from the bound tensor
    (float32, one frame per sample), cast into a float32 hop buffer, or resampled into it."""

    def __init__(self, tm: TensorMap, frames: int, hop: int, start: int, lanes: int, direct: bool) -> None:
        self.tm, self.frames, self.start = tm, frames, start
        # one value per call, held over the hop: read where it is (or from a (lanes, K, 1) cast of
        # it) through a broadcast view, not spread over hop samples per call
        self.held = frames == 1 and hop > 1 and tm.interpolate == "hold"
        self.resample = frames != hop and not self.held and not (start and frames - start == hop)
        self.direct = (
            direct and not self.resample and tm.tensor.dtype == np.float32 and tm.scale == 1.0 and tm.offset == 0.0
        )
        self.length = 1 if self.held else hop
        self.hop = None if self.direct else np.zeros((lanes, tm.features, self.length), np.float32)
        if self.resample:
            self.ext = np.zeros((lanes, tm.features, frames + 1), np.float32)
            self.lo, self.frac = resample_points(frames, hop, tm.interpolate)
            self.ends = run_ends(self.lo)
        # holding frames that split the hop evenly is a broadcast copy (faster than the kernel)
        self.spread = (
            self.hop.reshape(lanes, tm.features, frames, hop // frames)
            if self.resample and tm.interpolate == "hold" and hop % frames == 0
            else None
        )
        self.span = hop

    def warm(self) -> None:
        """Compile (or load from numba's cache) the kernels :meth:`unpack` and :meth:`fill` run,
        so that no block compiles them (control thread; imports numba)."""
        if self.resample:
            resample(self.ext, self.lo, self.frac, self.hop[:, :, :0])
            shift_back(self.ext, self.frames, 0)

    def source(self, view: np.ndarray) -> np.ndarray:
        src = view[:, :, self.start : self.start + self.length] if self.direct else self.hop
        return np.broadcast_to(src, src.shape[:2] + (self.span,)) if self.held else src

    def unpack(self, view: np.ndarray) -> None:
        """After a call: the hop buffer from the call's frames ``view``."""
        if self.direct:
            return
        if self.resample and self.spread is None:
            shift_back(self.ext, self.frames, 1)  # the last frame leads the next call's (no temporary)
            np.copyto(self.ext[:, :, 1:], view, casting="unsafe")
        self.fill(view)

    def fill(self, view: np.ndarray) -> None:
        """The hop buffer from the last call's frames (and, interpolated, ``ext`` as that call
        left it): :meth:`unpack` without moving ``ext``, so it may be repeated. The fused lines
        compute their blocks from the frames and leave the buffer to this (``onnx_fused``)."""
        tm = self.tm
        if self.spread is not None:
            np.copyto(self.spread, view[..., None], casting="unsafe")
        elif self.resample:
            resample(self.ext, self.lo, self.frac, self.hop)
        else:
            np.copyto(self.hop, view[:, :, self.start : self.start + self.length], casting="unsafe")
        if tm.scale != 1.0:
            np.multiply(self.hop, tm.scale, out=self.hop)
        if tm.offset:
            np.add(self.hop, tm.offset, out=self.hop)
