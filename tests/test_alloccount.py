"""The counting numpy data-memory handler (neuralgraph._tools.alloccount) is safe to leave behind.

Arrays made while it counts outlive the count: they are freed later, by any thread, during a
garbage collection, or while the interpreter shuts down, when this module's globals are already
gone. Each case runs in a fresh interpreter with glibc's heap checks on (``MALLOC_CHECK_=3``,
freed memory overwritten by ``MALLOC_PERTURB_``), where a dangling handler or a mismatched free
aborts, and numpy's "Exception ignored" reports (a handler it cannot call) show on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from neuralgraph._tools import alloccount

pytestmark = pytest.mark.skipif(not alloccount.supported(), reason="numpy without data-memory handlers")


def run_clean(code: str) -> str:
    env = dict(os.environ, MALLOC_CHECK_="3", MALLOC_PERTURB_="165")
    run = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Exception ignored" not in run.stderr and "Fatal" not in run.stderr, run.stderr[-3000:]
    return run.stdout


def test_counts_arrays_and_nothing_else():
    keep = np.zeros(8)
    with alloccount.counting() as counted:
        a = np.zeros(1000)
        b = np.empty(3)
        np.multiply(keep, 2.0, out=keep)
        view = a[10:20]
    assert counted[0] >= 2 and counted[1] >= 8 * 1003
    assert np._core.multiarray.get_handler_name(a) == "neuralgraph_counting"
    assert np._core.multiarray.get_handler_name() == "default_allocator"  # restored on exit
    del a, b, view


def test_arrays_outlive_the_module_its_globals_and_the_interpreter():
    """Made while counting, then freed after the module is dropped and collected (its globals,
    the handler struct, the callbacks and the capsule's name gone with it), in another thread,
    resized, inside a garbage cycle, and at exit from a global."""
    out = run_clean("""
        import gc, sys, threading
        import numpy as np
        from neuralgraph._tools import alloccount as mod
        keep, cycle = [], []
        with mod.counting():
            for n in (0, 1, 7, 4096, 1 << 20):
                keep.append(np.zeros(n)); keep.append(np.empty((2, 0, 2)))
            grow = np.ones(100)
            cycle.append(np.arange(5000.0)); cycle.append(cycle)
            at_exit = np.full(333, 1.0)
        grow.resize(100000, refcheck=False)  # numpy reallocates through the array's handler
        del mod
        for name in [m for m in sys.modules if m.startswith("neuralgraph")]:
            del sys.modules[name]
        gc.collect()
        clutter = [bytearray(n % 700 + 1) for n in range(20000)]  # reuse whatever was freed
        half = len(keep) // 2
        t = threading.Thread(target=lambda: [keep.pop() for _ in range(half)]); t.start(); t.join()
        keep.clear(); del cycle, grow; gc.collect()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_freed_by_another_thread_while_this_one_counts():
    made: list[np.ndarray] = []
    with alloccount.counting():
        made.extend(np.zeros(n) for n in range(1, 200))
    done = threading.Event()

    def drop() -> None:
        while made:
            made.pop()
        done.set()

    thread = threading.Thread(target=drop)
    with alloccount.counting():
        thread.start()
        while not done.is_set():
            np.zeros(64)
        thread.join()
    assert not made


def test_a_failing_count_still_allocates():
    """The callbacks never raise into numpy: with the tally broken, arrays are still made."""
    capsule, set_handler = alloccount._api()
    saved = alloccount._count[1]
    alloccount._count[1] = None  # the byte count: += fails in the callback
    previous = set_handler(capsule)
    try:
        a = np.arange(1000.0)
        b = np.zeros(10)
    finally:
        set_handler(previous)
        alloccount._count[1] = saved
    assert a[-1] == 999.0 and not b.any()
    assert np._core.multiarray.get_handler_name(a) == "neuralgraph_counting"
