"""A preallocated single-producer single-consumer ring of commands for the audio thread.

Control threads push parameter changes and MIDI messages; the audio thread pops them at the
start of a block. The slots are numpy arrays made once; pushing and popping assign array
elements and two integer indices, so the audio side never allocates or waits. Several control
threads may push: they take ``producer_lock`` (the audio thread never does).
"""

from __future__ import annotations

import threading
from collections import deque

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


#: MIDI messages that end or hold sound: never dropped, however full the queue (note-off, note-on
#: velocity 0 is decided by the caller; sustain pedal and channel-mode controllers 120..127)
def must_keep(status: int, data1: int, data2: int) -> bool:
    kind = status & 0xF0
    if kind == 0x80 or (kind == 0x90 and data2 == 0):
        return True
    return kind == 0xB0 and (data1 == 64 or data1 >= 120)


class MidiQueue:
    """MIDI for the audio thread: the preallocated ring, and behind it an overflow list.

    When the ring is full (or the overflow list already holds messages, to keep the order) a
    message goes to the overflow list, filled by the control threads; the audio thread takes
    from it once the ring is empty, as far as the block's event buffer has room. Messages that
    end or hold sound (:func:`must_keep`) are always queued; others beyond ``spill_limit``
    waiting messages are refused (``push`` returns False) and counted in ``dropped``.
    """

    def __init__(self, ring: CommandRing, spill_limit: int = 1 << 16) -> None:
        self.ring = ring
        self.spill: deque[tuple[int, int]] = deque()
        self.spill_limit = spill_limit
        self.dropped = 0
        self.spilled = 0

    def push(self, word: int, frame: int, keep: bool) -> bool:
        ring = self.ring
        with ring.producer_lock:
            if not self.spill and ring.head - ring.tail < ring.capacity:
                slot = ring.head % ring.capacity
                ring.kind[slot] = MIDI
                ring.a[slot] = word
                ring.value[slot] = 0.0
                ring.frame[slot] = frame
                ring.head += 1
                return True
            if not keep and len(self.spill) >= self.spill_limit:
                self.dropped += 1
                return False
            self.spill.append((word, frame))
            self.spilled += 1
            return True
