"""The inline ``{ from, range, curve }`` mapping of a patch input, and the ``map.range`` node's.

Plain float arithmetic and ``out=`` numpy calls: the graph stage checks ranges with
:func:`mapping_transform`, the compiler's mix step and the ``map.range`` node apply it with
:func:`apply_mapping` (both re-exported by :mod:`neuralgraph.plugin`), so a node and an inline
mapping with the same ranges give bit-identical results.
"""

from __future__ import annotations

import math

import numpy as np


def mapping_transform(
    span: tuple[float, float], rng: tuple[float, float], curve: str
) -> tuple[float, float, tuple[np.float32, np.float32] | None]:
    """``(scale, offset, clamp)`` of the mapping of ``span`` onto ``rng`` with ``curve``.

    ``lin``: ``y = x * scale + offset``. ``exp``: ``y = exp(clip(x * scale + offset, *clamp))``,
    linear in log(y), held within ``rng``; ``clamp`` is None for ``lin``. Only floats are made,
    so a node may call it from ``on_param``. Applied by :func:`apply_mapping`.
    """
    s_lo, s_hi = span
    lo, hi = rng
    width = s_hi - s_lo
    if curve == "exp":
        a, b = math.log(lo), math.log(hi)
        scale = (b - a) / width
        return scale, a - s_lo * scale, (np.float32(min(a, b)), np.float32(max(a, b)))
    scale = (hi - lo) / width
    return scale, lo - s_lo * scale, None


def apply_mapping(
    source: np.ndarray, scale: float, offset: float, clamp: tuple[np.float32, np.float32] | None, out: np.ndarray
) -> np.ndarray:
    """The mapping from :func:`mapping_transform` applied to ``source``, written into ``out``.

    Returns ``out``, or ``source`` itself when the mapping is the identity. ``source`` must have
    ``out``'s shape and no zero strides (numpy buffers broadcast operands). Never allocates.
    Both the inline ``{ from, range, curve }`` mapping and the ``map.range`` node run this.
    """
    if scale != 1.0 or offset != 0.0:
        np.multiply(source, scale, out=out)
        np.add(out, offset, out=out)
        source = out
    if clamp is not None:
        np.maximum(source, clamp[0], out=out)
        np.minimum(out, clamp[1], out=out)
        np.exp(out, out=out)
        source = out
    return source
