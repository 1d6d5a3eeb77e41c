"""The cyclic garbage collector paused while a patch is loaded or compiled.

Loading and compiling allocate many small objects that all live on (specs, nodes, ports,
steps, views), which is the worst case for Python's generational collector: every few
thousand allocations it scans the young objects, and a full collection scans everything the
process holds, numba's and numpy's module objects included. For a 10 000-node patch that was
1.3 of 1.8 s of CPU, and it grew faster than the patch (5 full collections for 10 000 nodes,
1 for 1 000). Nothing built here becomes cyclic garbage worth collecting before the build ends,
so the collector is paused for it and resumed after (reference counting still frees at once).

While audio plays, a build is a live edit (a swap), and resuming the collector would have its
next pass scan every object the build made: a swap of a 1000-node patch left 31 000 young
objects, and the passes over them held the GIL the audio callback needs for 5 to 20 ms, which
cost 1 to 5 xruns per 10 swaps. So while :func:`freeze_after_builds` is on (the backends'
``RealtimeGuard`` turns it on while they play), the objects a build leaves are frozen
(``gc.freeze()``) before the collector resumes: never scanned, still freed by reference
counting. A swap leaves no cyclic garbage behind once the replaced plan is released (measured:
none after each of six 1000-node swaps), so nothing is kept that a pass would have freed; the
guard unfreezes everything when playback stops.
"""

from __future__ import annotations

import gc
import threading
from contextlib import ContextDecorator
from typing import Any

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_freeze = False


def freeze_after_builds(on: bool) -> None:
    """Freeze what each build leaves instead of letting the collector scan it (see above)."""
    global _freeze
    _freeze = on


def audio_plays() -> bool:
    """True while a backend plays (its ``RealtimeGuard`` turned :func:`freeze_after_builds` on)."""
    return _freeze


class gc_paused(ContextDecorator):
    """Pause the cyclic collector for a ``with`` block or a decorated call (nestable, any thread).

    The first block to enter pauses it if it was enabled; the last one to leave resumes it then.
    """

    def __enter__(self) -> gc_paused:
        global _depth, _was_enabled
        with _lock:
            if _depth == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                if _freeze:
                    gc.freeze()
                gc.enable()
