"""Timed events (MIDI messages) inside one block, in preallocated arrays."""

from __future__ import annotations

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

    def __len__(self) -> int:
        return self.count

    def copy_from(self, other: EventBuffer) -> None:
        n = min(other.count, self.capacity)
        self.frame[:n] = other.frame[:n]
        self.status[:n] = other.status[:n]
        self.data1[:n] = other.data1[:n]
        self.data2[:n] = other.data2[:n]
        self.count = n
