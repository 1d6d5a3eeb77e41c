"""Latency compensation for offline renders: the file lines up with the input sample for sample.

A patch's declared latency (frame-rate models, worker threads, look-ahead effects; the compiler
sums it along the output's path, :attr:`Engine.latency`) delays everything the output plays. An
offline render has no reason to keep that delay: it renders L more frames and drops the first L.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def render_aligned(engine: Any, seconds: float, *, compensate: bool = True, **render: Any) -> tuple[np.ndarray, int]:
    """``engine.render(seconds, **render)`` with the patch's latency removed when ``compensate``.

    Returns the audio (channels, round(seconds * rate)) and the number of frames removed.
    """
    latency = int(engine.latency) if compensate else 0
    if latency <= 0:
        return engine.render(seconds, **render), 0
    total = int(round(seconds * engine.sample_rate))
    audio = engine.render((total + latency) / engine.sample_rate, **render)[:, latency : latency + total]
    if audio.shape[1] < total:  # rounding of the longer length: never return a short file
        audio = np.pad(audio, ((0, 0), (0, total - audio.shape[1])))
    return audio, latency
