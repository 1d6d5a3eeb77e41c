"""Timed events (MIDI messages) inside one block, in preallocated arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

NOTE_OFF = 0x80
"""Status byte of a note-off (channel 0; ``| channel`` for others), as ``EventBuffer.status`` holds it."""
NOTE_ON = 0x90
"""Status byte of a note-on (a velocity of 0 means note-off)."""
POLY_AFTERTOUCH = 0xA0
CONTROL_CHANGE = 0xB0
"""Status byte of a control change (data1: controller, data2: value)."""
CHANNEL_AFTERTOUCH = 0xD0
PITCH_BEND = 0xE0
"""Status byte of a pitch bend (14 bits: data1 low 7, data2 high 7; 8192 is centre)."""


def _coalesce_pass(status, data1, data2, count, s, a, b):  # pragma: no cover - compiled by _coalescer
    """Write controller message (s, a, b) over the latest earlier message of the same controller
    in the buffer; False when it is not a continuous controller or has no earlier message."""
    kind = s & 0xF0
    if kind == 0xB0:
        if 64 <= a < 70 or a >= 120:  # switches (pedals) and channel-mode messages are events, not values
            return False
    elif kind != 0xE0 and kind != 0xD0 and kind != 0xA0:
        return False
    for i in range(count - 1, -1, -1):
        if status[i] == s and (kind == 0xE0 or kind == 0xD0 or data1[i] == a):
            data1[i] = a
            data2[i] = b
            return True
    return False


_coalescer: Any = None
#: What ``_coalesce_pass`` is called with (a compiled module does not check types).
COALESCE_SIGNATURE = "boolean(uint8[::1], uint8[::1], uint8[::1], int64, int64, int64, int64)"


def _coalesce_kernel() -> Any:
    """``_coalesce_pass`` compiled, ahead of time where possible (``_nodes/aot.py``), on first use."""
    global _coalescer
    if _coalescer is None:
        from neuralgraph._nodes.aot import compiled_functions

        [_coalescer] = compiled_functions(__name__, ["_coalesce_pass"], [COALESCE_SIGNATURE])
    return _coalescer


class EventBuffer:
    """Up to ``capacity`` short MIDI messages, each with its frame offset inside the block.

    The arrays are allocated once; ``push`` and ``clear`` never allocate, so an events port can be
    filled and read in the audio thread. Events are kept in the order pushed; producers push in
    frame order. ``dropped`` counts events that did not fit.
    """

    __slots__ = ("frame", "status", "data1", "data2", "counter", "dropped", "capacity")

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self.frame = np.zeros(capacity, np.int32)
        self.status = np.zeros(capacity, np.uint8)
        self.data1 = np.zeros(capacity, np.uint8)
        self.data2 = np.zeros(capacity, np.uint8)
        #: the event count, in an array so that a fused compiled kernel can read it (``count``)
        self.counter = np.zeros(1, np.int64)
        self.dropped = 0

    @property
    def count(self) -> int:
        """Events in the buffer."""
        return int(self.counter[0])

    @count.setter
    def count(self, value: int) -> None:
        self.counter[0] = value

    def clear(self) -> None:
        self.count = 0

    def push(self, frame: int, status: int, data1: int = 0, data2: int = 0) -> bool:
        """Append one message; False (and ``dropped`` counted) when the buffer is full."""
        i = self.count
        if i >= self.capacity:
            self.dropped += 1
            return False
        self.frame[i] = frame
        self.status[i] = status
        self.data1[i] = data1
        self.data2[i] = data2
        self.count = i + 1
        return True

    def coalesce(self, status: int, data1: int, data2: int) -> bool:
        """Merge a continuous controller (CC 0-63 and 70-119, pitch bend, channel or key
        pressure) into the latest earlier message of the same controller, keeping that one's
        frame: only its newest value matters. False when nothing was merged. For a full buffer:
        a burst of controller messages then costs no slot, and later note events still fit."""
        return bool(_coalesce_kernel()(self.status, self.data1, self.data2, self.count, status, data1, data2))

    def push_or_merge(self, frame: int, status: int, data1: int = 0, data2: int = 0) -> bool:
        """``push``, except that once the buffer is three quarters full a continuous controller is
        merged into its earlier message (``coalesce``), keeping room for notes. False when the
        message did not fit (it is then not counted in ``dropped``: the caller keeps or counts it)."""
        if self.count >= self.capacity * 3 // 4 and self.coalesce(status, data1, data2):
            return True
        return self.count < self.capacity and self.push(frame, status, data1, data2)

    def __len__(self) -> int:
        return self.count

    def copy_from(self, other: EventBuffer) -> None:
        n = min(other.count, self.capacity)
        self.frame[:n] = other.frame[:n]
        self.status[:n] = other.status[:n]
        self.data1[:n] = other.data1[:n]
        self.data2[:n] = other.data2[:n]
        self.count = n
