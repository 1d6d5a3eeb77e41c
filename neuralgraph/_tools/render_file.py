"""Offline renders to a file: checked before the first block, streamed, and replaced atomically.

:func:`check_target` refuses an output the render could not write (missing or read-only folder,
a directory, a device, an extension no writer handles) before anything is rendered.
:class:`AtomicAudioFile` streams blocks into a temporary file beside the target (so the rename
stays on one file system) and renames it over the target only once every block is written,
flushed and synced: a render that fails or is interrupted leaves an existing file untouched and
never leaves a truncated file under the final name. With ``keep_partial`` the part rendered so
far is closed as a valid file named ``<stem>.partial<suffix>`` instead of being deleted.
:func:`render_to_file` joins the two with :meth:`Engine.stream`: memory stays flat however long
the render.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from neuralgraph._errors import NeuralgraphError, UsageError, display_path
from neuralgraph._io.audiofile import SUBTYPES

if TYPE_CHECKING:
    from neuralgraph._runtime.engine import Engine
    from neuralgraph._tools.progress import RenderProgress

#: Output file extensions and their libsndfile formats (the ones offered when they are available).
EXTENSIONS = {
    ".wav": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".mp3": "MP3",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".caf": "CAF",
    ".w64": "W64",
    ".rf64": "RF64",
    ".au": "AU",
}
#: Compressed formats have one subtype of their own; ``--bits`` does not apply to them.
LOSSY = {"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}


@attrs.frozen
class Target:
    """A checked output file: where, and in which libsndfile format and subtype."""

    path: Path
    format: str
    subtype: str


def working_extensions() -> dict[str, str]:
    """The extensions this machine's libsndfile can write, and their formats."""
    import soundfile

    available = soundfile.available_formats()
    return {ext: fmt for ext, fmt in EXTENSIONS.items() if fmt in available}


def check_target(path: str | Path, bits: str | None = None) -> Target:
    """The output ``path`` checked before rendering; raises :class:`UsageError` saying what is wrong
    (and what would work). ``bits`` is a :data:`SUBTYPES` key, or None for float where the
    format holds it, else the format's default."""
    import soundfile

    p = Path(path)
    shown = display_path(p)
    check_writable(p)  # the folder and the file first: a directory or device says so, not "no extension"
    extensions = working_extensions()
    fmt = extensions.get(p.suffix.lower())
    if fmt is None:
        what = "has no file extension" if not p.suffix else f"has the extension {p.suffix!r}, not an audio format"
        raise UsageError(
            f"cannot write {shown}: the name {what} neuralgraph can write; formats that work: {', '.join(extensions)}"
        )
    if fmt in LOSSY:
        if bits is not None:
            raise UsageError(
                f"cannot write {shown}: --bits does not apply to {fmt} (compressed); "
                f"leave it out, or write .wav/.flac for {bits}-bit samples"
            )
        subtype = LOSSY[fmt]
    elif bits is None:
        subtype = "FLOAT" if soundfile.check_format(fmt, "FLOAT") else soundfile.default_subtype(fmt)
    else:
        subtype = SUBTYPES[bits]
        if not soundfile.check_format(fmt, subtype):
            fits = [b for b, s in SUBTYPES.items() if soundfile.check_format(fmt, s)]
            raise UsageError(
                f"cannot write {shown}: {fmt} cannot hold --bits {bits} samples (valid for {fmt}: {', '.join(fits)})"
            )
    return Target(p, fmt, subtype)


def check_writable(path: str | Path, lead: str = "cannot write") -> None:
    """UsageError unless a file could be created or replaced at ``path``: not a directory or device,
    in a folder that exists and can be written. Messages start with ``lead`` and the path."""
    p = Path(path)
    start = f"{lead} {display_path(p)}:"
    folder = p.parent
    if p.is_dir():
        raise UsageError(f"{start} it is a directory; give a file name inside it")
    if p.exists() and not p.is_file():
        raise UsageError(
            f"{start} it exists and is not a regular file (a device or pipe); output goes to a regular file"
        )
    if not folder.exists():
        raise UsageError(f"{start} the folder {display_path(folder)} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{start} {display_path(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{start} no permission to create files in {display_path(folder)}")
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"{start} the existing file is read-only")


def partial_path(path: Path) -> Path:
    """Where ``--keep-partial`` keeps an unfinished render: ``out.partial.wav`` beside ``out.wav``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def explain_write_error(exc: BaseException, path: Path, written: int) -> str:
    """Why writing ``path`` failed, in words: libsndfile often says only "System error."."""
    reasons = []
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and written + 65536 >= limit:
        reasons.append(f"the file size limit of this process (ulimit -f) is {limit} bytes")
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(path.parent).free
        if free < 1024 * 1024:
            reasons.append(f"the disk holding {display_path(path.parent)} is full ({free} bytes free)")
    text = str(exc).strip() or type(exc).__name__
    return f"libsndfile: {text.rstrip('.')}" + (f"; {'; '.join(reasons)}" if reasons else "")


#: Frames gathered before one write to the sound file (about 0.17 s at 48 kHz).
CHUNK_FRAMES = 8192


class AtomicAudioFile:
    """A sound file written to a temporary file beside ``target.path`` and renamed over it on
    :meth:`commit`; :meth:`abort` removes the temporary file, or keeps it as
    ``<stem>.partial<suffix>`` when ``keep_partial``."""

    def __init__(
        self, target: Target, sample_rate: int, channels: int, block_size: int, *, keep_partial: bool = False
    ) -> None:
        import soundfile

        self.target = target
        self.keep_partial = keep_partial
        self.frames = 0
        fd, name = tempfile.mkstemp(dir=target.path.parent, prefix=f".{target.path.name}.", suffix=".partial")
        os.close(fd)
        self.temp = Path(name)
        # mkstemp makes the file private (0600); the result gets the mode a new file (or the one
        # it replaces) would have
        try:
            mode = target.path.stat().st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(name, mode)
        try:
            self._file = soundfile.SoundFile(
                name,
                "w",
                samplerate=int(sample_rate),
                channels=int(channels),
                format=target.format,
                subtype=target.subtype,
            )
        except Exception as exc:
            self.temp.unlink(missing_ok=True)
            raise NeuralgraphError(f"cannot write {display_path(target.path)}: {exc}") from None
        # blocks are gathered into chunks of CHUNK_FRAMES (frames, channels), as soundfile wants
        # them: one soundfile call per block cost more than rendering a small patch's block
        self._chunk = np.empty((max(block_size, CHUNK_FRAMES), channels), np.float32)
        self._filled = 0

    def write(self, block: np.ndarray) -> None:
        """Append a (channels, n) block (n at most the block size); written out by the chunk."""
        n = block.shape[1]
        if self._filled + n > self._chunk.shape[0]:
            self.flush()
        np.copyto(self._chunk[self._filled : self._filled + n], block.T)
        self._filled += n
        self.frames += n

    def flush(self) -> None:
        """Write the gathered blocks to the file."""
        if self._filled:
            rows, self._filled = self._chunk[: self._filled], 0
            try:
                self._file.write(rows)
            except Exception as exc:
                raise NeuralgraphError(self._failed(exc)) from None

    def _failed(self, exc: BaseException) -> str:
        written = self.temp.stat().st_size if self.temp.exists() else 0
        return (
            f"writing {display_path(self.target.path)} failed after {self.frames} frames: "
            f"{explain_write_error(exc, self.temp, written)}"
        )

    def commit(self) -> Path:
        """Finish the file, sync it to disk and rename it over the target."""
        self.flush()
        try:
            self._file.close()
            with open(self.temp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self.temp, self.target.path)
        except Exception as exc:
            raise NeuralgraphError(self._failed(exc)) from None
        with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
            folder = os.open(self.target.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        return self.target.path

    def abort(self) -> Path | None:
        """Drop the unfinished file; with ``keep_partial`` close it as a valid file and return its path."""
        with contextlib.suppress(Exception):
            self.flush()  # the blocks rendered so far, for a partial file
        with contextlib.suppress(Exception):
            self._file.close()  # writes the header: what was written stays readable
        if self.keep_partial and self.frames > 0 and self.temp.exists():
            kept = partial_path(self.target.path)
            os.replace(self.temp, kept)
            return kept
        self.temp.unlink(missing_ok=True)
        return None


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a render (handled like Ctrl-C: the target stays untouched)."""


class Interrupts:
    """SIGINT and SIGTERM during a render, raised as KeyboardInterrupt and :class:`Terminated`, but
    never inside a block's write: a signal that arrives while a block is written (Python runs
    handlers between bytecodes, so the file can hold a block its frame count does not) is held
    until the write and the count are done. The kept partial file then holds exactly the frames
    the renderer reports."""

    def __init__(self) -> None:
        self.writing = False
        self.pending: KeyboardInterrupt | None = None

    def handler(self, signum: int, frame: Any) -> None:
        exc = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if self.writing:
            self.pending = exc
            return
        raise exc

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold signals for the body; raise a held one after it."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
            if self.pending is not None:
                exc, self.pending = self.pending, None
                raise exc


@contextlib.contextmanager
def render_interrupts() -> Iterator[Interrupts]:
    """Install :class:`Interrupts` for SIGTERM, and for SIGINT unless the host replaced Python's
    default Ctrl-C handler (main thread only; elsewhere the signals stay as they are)."""
    interrupts = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield interrupts
        return
    signums = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signums.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, interrupts.handler) for signum in signums}
    try:
        yield interrupts
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@attrs.frozen
class RenderResult:
    """What :func:`render_to_file` wrote: the file, its length in frames, and the wall time taken."""

    path: Path
    frames: int
    wall: float  #: seconds the render took
    partial: Path | None = None  #: set when an interrupted render was kept (``keep_partial``)


class RenderInterrupted(NeuralgraphError):
    """A render stopped early (Ctrl-C, SIGTERM or an error); the target was left as it was."""

    def __init__(self, message: str, cause: BaseException, partial: Path | None) -> None:
        super().__init__(message)
        self.cause = cause
        self.partial = partial


def render_to_file(
    engine: Engine,
    target: Target,
    seconds: float,
    *,
    midi: str | Path | None = None,
    input: np.ndarray | None = None,
    progress: RenderProgress | None = None,
    keep_partial: bool = False,
    skip: int = 0,
) -> RenderResult:
    """Render ``seconds`` of ``engine`` into ``target`` block by block (flat memory), atomically.

    ``skip`` frames are rendered first and dropped (the patch's declared latency, so that the file
    lines up with the input: :func:`neuralgraph.render_aligned` does the same in memory).

    Raises :class:`RenderInterrupted` when the render stops early (its ``cause`` is the
    KeyboardInterrupt, :class:`Terminated` or error); the target is then untouched.
    """
    out = AtomicAudioFile(target, engine.sample_rate, engine.channels, engine.block_size, keep_partial=keep_partial)
    rate = engine.sample_rate
    t0 = time.perf_counter()
    try:
        with render_interrupts() as interrupts:
            for block in _rendered(engine, int(round(seconds * rate)) + skip, midi, input):
                if skip > 0:  # still inside the latency to drop
                    drop = min(skip, block.shape[1])
                    skip -= drop
                    block = block[:, drop:]
                    if block.shape[1] == 0:
                        continue
                with interrupts.held():
                    out.write(block)
                if progress is not None:
                    progress.update(out.frames / rate)
            path = out.commit()
    except (Exception, KeyboardInterrupt) as exc:
        kept = out.abort()
        raise RenderInterrupted(_interrupted(exc, out, kept, rate), exc, kept) from None
    finally:
        if progress is not None:
            progress.close()
    return RenderResult(path, out.frames, time.perf_counter() - t0)


def _rendered(engine: Engine, frames: int, midi: str | Path | None, input: np.ndarray | None) -> Iterator[np.ndarray]:
    """The render's output, ``frames`` long: block by block when MIDI or input is fed between
    blocks; else in chunks of many blocks, in one compiled call where the plan allows
    (:meth:`Engine.stream_chunks`)."""
    seconds = frames / engine.sample_rate
    if midi is not None or input is not None:
        return engine.stream(seconds, midi=midi, input=input)
    return engine.stream_chunks(seconds, chunk_frames=min(CHUNK_FRAMES, frames // 500))


def _interrupted(exc: BaseException, out: AtomicAudioFile, kept: Path | None, rate: int) -> str:
    """Why the render stopped, what became of the target, and what the kept partial file holds."""
    shown = display_path(out.target.path)
    if isinstance(exc, Terminated):
        why = "terminated (SIGTERM)"
    elif isinstance(exc, KeyboardInterrupt):
        why = "interrupted"
    else:
        why = str(exc)
    held = f"{out.frames / rate:.2f} s ({out.frames} frames)"
    left = f"; {display_path(kept)} holds the {held} rendered" if kept else ""
    state = "left unchanged" if out.target.path.exists() else "not written"
    return f"{why}; {shown} {state}{left}"
