"""Snapshots of an object's running state, restored in place (control thread only).

:meth:`neuralgraph._nodes.node.Node.save_state` and :meth:`~neuralgraph._nodes.node.Node.load_state` use these
helpers by default; the engine uses them for the steps the compiler emits. A snapshot mirrors the
attributes it was taken from:

- a writeable numpy array is copied; restoring copies the values back into the *same* array
  (``np.copyto``), so every view a compiled plan holds stays valid;
- a read-only array is a constant (a table, a read-only view) and is not state: skipped;
- numbers, strings, ``None`` and numpy scalars are kept as they are and rebound on restore;
- lists, tuples and dicts are walked element by element (lists and dicts restored in place);
- a ``numpy.random.Generator`` keeps its bit generator's state;
- an object with its own ``save_state`` / ``load_state`` is asked for its state;
- functions, methods, ufuncs, classes, modules and other callables (a numba dispatcher, a
  ``functools.partial``) are code, not state: skipped.

Anything else (a thread, a session, a jitclass) cannot be copied safely: :func:`snapshot` raises
``TypeError`` naming the attribute, so a node with such state overrides the two methods (or lists
the attribute in ``Node.transient``) instead of silently losing part of its state.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_SCALARS = (bool, int, float, complex, str, bytes, type(None), np.generic)
_CODE = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
    types.ModuleType,
    type,
    np.ufunc,
)


class _Skip:
    """The snapshot of a value that is not state (code, constants)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not state>"


SKIP = _Skip()


class _Generator:
    """The snapshot of a ``numpy.random.Generator``: its bit generator's state."""

    __slots__ = ("state",)

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state


class _Nested:
    """The snapshot of an object that saves its own state."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state


def snapshot_value(value: Any, where: str) -> Any:
    """A copy of ``value`` that :func:`restore_value` can write back; ``where`` names it in errors."""
    if isinstance(value, np.ndarray):
        return value.copy() if value.flags.writeable else SKIP
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, _CODE) or callable(value) and not hasattr(value, "save_state"):
        return SKIP  # code (a function, a numba dispatcher, a partial) is not state
    if isinstance(value, list):
        return [snapshot_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(snapshot_value(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: snapshot_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.random.Generator):
        return _Generator(value.bit_generator.state)
    save = getattr(value, "save_state", None)
    if callable(save) and callable(getattr(value, "load_state", None)):
        return _Nested(save())
    raise TypeError(
        f"`{where}` holds a {type(value).__name__}, which the default save_state cannot copy: "
        f"override save_state/load_state, or list the attribute in `transient` if it is not state"
    )


def restore_value(current: Any, saved: Any, where: str) -> Any:
    """Write ``saved`` back into ``current`` where it is mutable; return the value to bind.

    Arrays, lists and dicts are restored in place (the same objects come back); scalars and
    tuples of scalars come back as the saved values. Raises ``ValueError`` on a shape or type
    mismatch (a state saved from a node prepared differently).
    """
    if saved is SKIP:
        return current
    if isinstance(current, np.ndarray):
        if not isinstance(saved, np.ndarray) or saved.shape != current.shape:
            raise ValueError(f"`{where}`: saved {_describe(saved)} does not fit the array of shape {current.shape}")
        np.copyto(current, saved)
        return current
    if isinstance(current, list):
        if not isinstance(saved, list):
            raise ValueError(f"`{where}`: saved {_describe(saved)} where the node holds a list")
        if len(saved) != len(current):  # a list whose length is state (e.g. held notes)
            current[:] = [_fresh(v) for v in saved]
            return current
        for i, v in enumerate(saved):
            current[i] = restore_value(current[i], v, f"{where}[{i}]")
        return current
    if isinstance(current, tuple):
        if not isinstance(saved, tuple) or len(saved) != len(current):
            raise ValueError(f"`{where}`: saved {_describe(saved)} does not fit a tuple of {len(current)}")
        items = tuple(restore_value(c, s, f"{where}[{i}]") for i, (c, s) in enumerate(zip(current, saved)))
        return current if all(a is b for a, b in zip(items, current)) else items
    if isinstance(current, dict):
        if not isinstance(saved, dict):
            raise ValueError(f"`{where}`: saved {_describe(saved)} where the node holds a dict")
        for k in [k for k in current if k not in saved]:
            del current[k]
        for k, v in saved.items():
            current[k] = restore_value(current[k], v, f"{where}[{k!r}]") if k in current else _fresh(v)
        return current
    if isinstance(saved, _Generator):
        current.bit_generator.state = saved.state
        return current
    if isinstance(saved, _Nested):
        current.load_state(saved.state)
        return current
    return saved


def _fresh(saved: Any) -> Any:
    """A new value from a snapshot (for list or dict entries that no longer exist)."""
    if isinstance(saved, np.ndarray):
        return saved.copy()
    if isinstance(saved, list):
        return [_fresh(v) for v in saved]
    if isinstance(saved, tuple):
        return tuple(_fresh(v) for v in saved)
    if isinstance(saved, dict):
        return {k: _fresh(v) for k, v in saved.items()}
    return saved


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    return type(value).__name__


def snapshot(obj: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Snapshots of ``obj``'s instance attributes, except those named in ``skip``."""
    skipped = set(skip)
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if name in skipped:
            continue
        saved = snapshot_value(value, name)
        if saved is not SKIP:
            state[name] = saved
    return state


def restore(obj: Any, state: Mapping[str, Any]) -> None:
    """Write a :func:`snapshot` back into ``obj``'s attributes (arrays in place)."""
    attributes = vars(obj)
    missing = [name for name in state if name not in attributes]
    if missing:
        raise ValueError(f"the state names attributes {missing} that this {type(obj).__name__} does not have")
    for name, saved in state.items():
        attributes[name] = restore_value(attributes[name], saved, name)


def state_difference(a: Any, b: Any, where: str = "state") -> str | None:
    """Where two snapshots differ, as text, or None when they are identical (NaN equals NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where}: {_describe(a)} vs {_describe(b)}"
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return f"{where}: array values differ"
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            diff = state_difference(a[k], b[k], f"{where}.{k}")
            if diff:
                return diff
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return f"{where}: {type(a).__name__} of {len(a)} vs {type(b).__name__} of {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            diff = state_difference(x, y, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(a, (_Generator, _Nested)) and type(a) is type(b):
        return state_difference(a.state, b.state, where)
    if type(a) is not type(b):
        return f"{where}: {a!r} vs {b!r}"
    if isinstance(a, (float, np.floating)) and a != a and b != b:  # NaN == NaN for state purposes
        return None
    try:
        same = bool(a == b)
    except Exception:  # noqa: BLE001 - values that do not compare are different
        same = False
    return None if same else f"{where}: {a!r} vs {b!r}"
