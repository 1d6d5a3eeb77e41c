"""The arrays ``onnx.model`` binds to onnxruntime, made once in ``prepare``.

Every tensor gets one *storage* array of its own dtype: with lanes as the batch it is the tensor
itself (batch = lanes), with one call per lane it is ``(lanes, *per_call_shape)`` and lane ``l``
binds ``storage[l]``. A *canonical view* ``(lanes, K, T)`` of each storage (feature axis, then
time axis; size-1 axes dropped) is what ports are copied to and from, so the copying code never
cares where the model keeps its batch, time or feature axis. Values are cast at these copies
(``casting="unsafe"`` into int, bool and float16 tensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numba import njit

from .onnx_mapping import ModelMap, TensorMap


@njit(cache=True, nogil=True)
def gather(src: np.ndarray, perm: np.ndarray, dst: np.ndarray) -> None:  # pragma: no cover - compiled
    """dst[i] = src[perm[i]]: every port of several transposed outputs in one call (np.take with
    ``out`` measures 3x slower for a few hundred elements)."""
    for i in range(perm.size):
        dst[i] = src[perm[i]]


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
        raise ValueError(f"tensors.{tm.name}: a value shaped {list(value.shape)} does not fit the tensor's "
                         f"shape {list(storage.shape)}") from None


class Slot:
    """One set of bound tensors: storage per tensor, one binding per call, canonical views."""

    def __init__(self, session: ort.InferenceSession, mm: ModelMap, lanes: int, shapes: dict[str, list[int]],
                 shared: dict[str, np.ndarray], alias: dict[str, np.ndarray]) -> None:
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
        for lane in per_lane or [None]:
            binding = session.io_binding()
            for tm in mm.inputs + mm.outputs:
                arr = self.storage[tm.name]
                if lane is not None and tm.role != "constant":
                    arr = arr[lane]
                bind = binding.bind_input if tm.is_input else binding.bind_output
                bind(tm.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
            self.bindings.append(binding)
        self.views: dict[str, np.ndarray] = {}
        for tm in mm.inputs + mm.outputs:
            if tm.role in ("audio", "control"):
                feat, time = lane_axes(tm, mm.batched)
                self.views[tm.name] = canonical(lane_first(self.storage[tm.name], tm, mm.batched), feat, time)
