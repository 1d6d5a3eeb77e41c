"""A child process started by libc's ``posix_spawn`` through ctypes, without the GIL.

``os.posix_spawn`` and ``subprocess`` hold the GIL while the parent waits for the child to
``exec`` (glibc spawns with ``CLONE_VFORK``): milliseconds on a busy machine, and far longer when
the caller runs pinned to a CPU the child must share. A ctypes call of a C function lets the GIL
go for its whole duration, so the audio callback of a playing patch never waits for a compile
subprocess to start (``_nodes/aot.py``). The child starts at normal scheduling policy, with its
standard streams opened on the given files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

#: glibc's flag for "set the scheduling policy and parameters given in the attributes"
_SETSCHEDULER = 0x20
_SETSCHEDPARAM = 0x10
#: room for glibc's opaque posix_spawn_file_actions_t (80 bytes) and posix_spawnattr_t (336)
_OPAQUE = 1024

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _strings(items: Sequence[str]) -> ctypes.Array[ctypes.c_char_p]:
    array = (ctypes.c_char_p * (len(items) + 1))()
    array[:-1] = [os.fsencode(item) for item in items]
    return array


def spawn(argv: Sequence[str], env: dict[str, str], stdin: str, stdout: str, stderr: str) -> int:
    """Start ``argv`` (``argv[0]`` a path) with ``env``, reading ``stdin`` and writing ``stdout``
    and ``stderr`` (files, created or truncated); its pid. Raises OSError when it cannot start."""
    libc = _lib()
    actions = ctypes.create_string_buffer(_OPAQUE)
    attrs = ctypes.create_string_buffer(_OPAQUE)
    check(libc.posix_spawn_file_actions_init(actions))
    check(libc.posix_spawnattr_init(attrs))
    try:
        write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for fd, path, flags in ((0, stdin, os.O_RDONLY), (1, stdout, write), (2, stderr, write)):
            check(libc.posix_spawn_file_actions_addopen(actions, fd, os.fsencode(path), flags, 0o600))
        check(libc.posix_spawnattr_setschedpolicy(attrs, os.SCHED_OTHER))
        param = ctypes.c_int(0)  # struct sched_param: the priority, 0 for SCHED_OTHER
        check(libc.posix_spawnattr_setschedparam(attrs, ctypes.byref(param)))
        check(libc.posix_spawnattr_setflags(attrs, ctypes.c_short(_SETSCHEDULER | _SETSCHEDPARAM)))
        pid = ctypes.c_int(0)
        args = _strings(argv)
        envp = _strings([f"{k}={v}" for k, v in env.items()])
        check(libc.posix_spawn(ctypes.byref(pid), os.fsencode(argv[0]), actions, attrs, args, envp))
        return pid.value
    finally:
        libc.posix_spawn_file_actions_destroy(actions)
        libc.posix_spawnattr_destroy(attrs)


def check(code: int) -> None:
    """Raise the error a ``posix_spawn*`` function returned (they return the error number)."""
    if code != 0:
        raise OSError(code, os.strerror(code))
