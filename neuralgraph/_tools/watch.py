"""Hot reload: watch a patch file and swap every good save into the playing engine.

:class:`PatchWatcher` polls the file's modification time and size from its own thread (no
extra dependency, works on every file system, including network mounts and editors that
replace the file). A change is loaded once the file has stayed the same for one poll, so an
editor's truncate-then-write is not read half way. A save that does not load or compile
prints the same located problems as ``neuralgraph check`` and the old patch keeps playing; the
next good save is swapped in with :meth:`Engine.swap <neuralgraph.Engine.swap>`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from neuralgraph._errors import NeuralgraphError, PatchError, display_path
from neuralgraph._io.backend import control_priority

#: Seconds between two looks at the file.
POLL_S = 0.1


class PatchWatcher:
    """Reloads ``path`` into ``engine_of()`` (the engine playing now) whenever it changes.

    ``load(path)`` returns a checked :class:`~neuralgraph.Patch` or raises
    :class:`~neuralgraph.PatchError`; ``problems(error)`` prints one (the command line
    passes the printer ``neuralgraph check`` uses). ``fade`` is the crossfade for added or removed
    nodes, in seconds.
    """

    def __init__(
        self,
        path: str | Path,
        engine_of: Callable[[], Any],
        load: Callable[[Path], Any],
        *,
        fade: float = 0.05,
        problems: Callable[[PatchError], None] | None = None,
        out: TextIO | None = None,
        interval: float = POLL_S,
    ) -> None:
        self.path = Path(path)
        self.engine_of = engine_of
        self.load = load
        self.fade = fade
        self.problems = problems
        self.out = out or sys.stderr
        self.interval = interval
        self.swaps = 0  #: good saves swapped in
        self.failures = 0  #: saves that did not load, compile or swap
        # None: the first look loads the file once, so a save made while the engine was being
        # built is not missed (an unchanged file swaps nothing, silently)
        self._seen: tuple[int, int] | None = None
        self._quiet = True
        self._pending: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None  # being replaced: look again next time
        return st.st_mtime_ns, st.st_size

    def poll(self) -> bool:
        """Look at the file once; reload it when it changed and has settled. True when it reloaded."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            self._pending = None
            return False
        if stamp != self._pending and self._seen is not None:  # changed: let the editor finish writing
            self._pending = stamp
            return False
        self._seen, self._pending = stamp, None
        return self.reload()

    def reload(self) -> bool:
        """Load the file and swap it in; print what happened. Never raises."""
        shown = display_path(self.path)
        try:
            with control_priority():  # parsing holds the GIL the audio callback needs, as compiling does
                patch = self.load(self.path)
                report = self.engine_of().swap(patch, fade=self.fade)
        except PatchError as exc:
            self.failures += 1
            self._say(f"neuralgraph: {shown} not reloaded; still playing the last good version:")
            if self.problems is not None:
                self.problems(exc)
            else:
                self._say(str(exc))
            return False
        except NeuralgraphError as exc:
            self.failures += 1
            self._say(f"neuralgraph: {shown} not reloaded: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - a reload must never stop the music
            self.failures += 1
            self._say(f"neuralgraph: {shown} not reloaded: {type(exc).__name__}: {exc}")
            return False
        quiet, self._quiet = self._quiet, False
        if not report.kept and not report.added:
            if not quiet:
                self._say(f"neuralgraph: {shown} saved unchanged; nothing to swap")
            return False
        self.swaps += 1
        self._say(f"neuralgraph: reloaded {shown}: {report.line()} (compiled in {report.compile_s * 1000:.0f} ms)")
        return True

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def start(self) -> PatchWatcher:
        self._thread = threading.Thread(target=self._run, name="neuralgraph-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
