"""A preallocated single-producer single-consumer ring of commands for the audio thread.

Control threads push parameter changes and MIDI messages; the audio thread pops them at the
start of a block. The slots are numpy arrays made once; pushing and popping assign array
elements and two integer indices, so the audio side never allocates or waits. Several control
threads may push: they take ``producer_lock`` (the audio thread never does).
"""

from __future__ import annotations

import threading

import numpy as np

SET = 1  #: a = target index, value = new value
MIDI = 2  #: a = status | data1 << 8 | data2 << 16, frame = offset in the block


class CommandRing:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.kind = np.zeros(capacity, np.uint8)
        self.a = np.zeros(capacity, np.int64)
        self.value = np.zeros(capacity, np.float64)
        self.frame = np.zeros(capacity, np.int32)
        self.head = 0  # next slot to write (producer only)
        self.tail = 0  # next slot to read (consumer only)
        self.producer_lock = threading.Lock()
        self.overflows = 0

    def push(self, kind: int, a: int, value: float = 0.0, frame: int = 0) -> bool:
        """Queue one command; False when the ring is full (the consumer is not keeping up)."""
        with self.producer_lock:
            head = self.head
            if head - self.tail >= self.capacity:
                self.overflows += 1
                return False
            slot = head % self.capacity
            self.kind[slot] = kind
            self.a[slot] = a
            self.value[slot] = value
            self.frame[slot] = frame
            self.head = head + 1  # publish last: the consumer sees a complete slot
            return True

    def __len__(self) -> int:
        return self.head - self.tail
