"""A worker's renderer: compile the patch once, then per render set, reset, render and encode.

Start-up (importing, loading the patch, compiling the plan and its numba kernels) is paid once
per worker and per combination of the parameters that shape buffers (``live = False``, e.g. a
voice count): those engines are kept in a small cache. Every other value is written straight
into the compiled engine before :meth:`~neuralgraph.Engine.reset` (no ramp, no command ring),
which leaves it in the same state as a fresh engine built with that value, so a render's bytes
depend on its record alone, never on what the worker rendered before.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from neuralgraph._errors import NeuralgraphError
from neuralgraph._io.audiofile import SUBTYPES
from neuralgraph._runtime.engine import Engine
from neuralgraph._tools.batch.space import Render, render_at
from neuralgraph._tools.batch.spec import Job

Result = dict[str, Any]  #: a render's ``{"row": metadata row, "files": {relative path: bytes}}``

ENGINE_CACHE = 4  #: compiled engines a worker keeps (one per combination of buffer-shaping values)


def _version() -> str:
    """The installed neuralgraph's version (a stage does not import the public face for it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neuralgraph")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def encode_audio(audio: np.ndarray, rate: int, kind: str, bits: str) -> bytes:
    """WAV or FLAC bytes of (channels, frames) audio, identical for identical samples.

    Float WAV goes through scipy: libsndfile stamps float WAVs with the time of writing (PEAK chunk).
    """
    buffer = io.BytesIO()
    frames = np.ascontiguousarray(audio.T)
    if kind == "wav" and bits == "float":
        from scipy.io import wavfile

        wavfile.write(buffer, rate, frames.astype(np.float32, copy=False))
    else:
        import soundfile

        soundfile.write(buffer, frames, rate, format=kind.upper(), subtype=SUBTYPES[bits])
    return buffer.getvalue()


def encode_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (``../midi/a.mid`` too), so records do not depend on where the job lives."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path)


class Renderer:
    """Renders a job's renders in one process; returns each render's files (bytes) and record."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.engines: OrderedDict[tuple, Engine] = OrderedDict()
        self.patch_sha256 = file_sha256(job.patch)
        self.version = _version()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.live = [a.name for a in job.axes if a.live]

    def engine(self, key: tuple) -> Engine:
        """The compiled engine for these buffer-shaping values (compiled on first use)."""
        engine = self.engines.get(key)
        if engine is None:
            from neuralgraph._patch.patch import load_patch

            patch = load_patch(self.job.patch, overrides=dict(key))
            engine = Engine(patch, self.job.sample_rate, self.job.block_size, pin=self.job.taps)
            self.engines[key] = engine
            while len(self.engines) > ENGINE_CACHE:
                self.engines.popitem(last=False)
        self.engines.move_to_end(key)
        return engine

    def seconds(self, render: Render) -> float:
        if self.job.seconds is not None:
            return self.job.seconds
        from neuralgraph._io.midifile import midi_length

        return midi_length(render.midi) + self.job.tail

    def render(self, render: Render) -> dict[str, Any]:
        """``{"row": metadata row, "files": {relative path: bytes}}`` of one render."""
        t0 = time.perf_counter()
        key = render.fixed_key(self.job)
        engine = self.engine(key)
        audio, captured = self._play(render, engine)
        faults = [f"{f.node}: {f.error!r}" for f in engine.faults()]
        if faults:  # a faulted step stays bypassed: the next render must not inherit it
            del self.engines[key]
        # read before the next render's reset clears what the nodes counted
        notices = [f"{n.node}: {n.text}" for n in engine.notices()]
        files, taps = self._files(render, engine, audio, captured)
        row = self._row(render, engine, audio, captured, files, taps, faults, notices)
        row["render_s"] = time.perf_counter() - t0
        return {"row": row, "files": files}

    def _play(self, render: Render, engine: Engine) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Render ``render`` on ``engine`` (its note held for the job's ``hold``); returns the audio
        and each tap's values, block by block (taps, blocks, values per block)."""
        for name in self.live:
            engine.set_now(name, render.params[name])
        engine.reset()
        seconds = self.seconds(render)
        blocks = -(-int(round(seconds * engine.sample_rate)) // engine.block_size)
        pinned = engine.plan.pinned
        captured = {tap: np.zeros((buf.shape[0], blocks, buf.shape[1]), np.float32) for tap, buf in pinned.items()}
        note_off = None
        if render.note is not None:
            engine.note_on(render.note, render.velocity)
            note_off = int(round(self.job.hold * engine.sample_rate))
            if note_off < engine.block_size:  # within the first block: queue it now
                engine.send_midi(0x80, render.note, 0, note_off)
                note_off = None

        def on_block(b: int) -> None:
            for tap, buf in pinned.items():
                captured[tap][:, b, :] = buf
            start = (b + 1) * engine.block_size
            if note_off is not None and start <= note_off < start + engine.block_size:
                engine.send_midi(0x80, render.note, 0, note_off - start)

        return engine.render(seconds, midi=render.midi, on_block=on_block), captured

    def _files(
        self, render: Render, engine: Engine, audio: np.ndarray, captured: dict[str, np.ndarray]
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        """The encoded audio file and one ``.npy`` per tap, by relative path; and each tap's file."""
        job = self.job
        frames = audio.shape[1]
        stem = render.id
        files: dict[str, bytes] = {f"{stem}.{job.audio}": encode_audio(audio, engine.sample_rate, job.audio, job.bits)}
        taps: dict[str, str] = {}
        for tap, data in captured.items():
            curve = data.reshape(data.shape[0], -1)
            if data.shape[2] > 1:  # audio rate: trim the last block to the render's length
                curve = curve[:, :frames]
            taps[tap] = f"{stem}.{tap}.npy"
            files[taps[tap]] = encode_npy(np.ascontiguousarray(curve))
        return files, taps

    def _row(
        self,
        render: Render,
        engine: Engine,
        audio: np.ndarray,
        captured: dict[str, np.ndarray],
        files: dict[str, bytes],
        taps: dict[str, str],
        faults: list[str],
        notices: list[str],
    ) -> dict[str, Any]:
        """The render's metadata row: what was rendered, its levels, files and provenance."""
        job = self.job
        guard = engine.plan.guard
        frames = audio.shape[1]
        wide = audio.astype(np.float64)
        return {
            "id": render.id,
            "index": render.index,
            "path": f"{render.id}.{job.audio}",
            **render.params,
            "midi": None if render.midi is None else relative(render.midi, job.directory),
            "note": render.note,
            "velocity": render.velocity,
            "seed": render.seed,
            "seconds": frames / engine.sample_rate,
            "frames": frames,
            "sample_rate": engine.sample_rate,
            "channels": engine.channels,
            "peak": float(np.max(np.abs(wide))) if frames else 0.0,
            "rms": float(np.sqrt(np.mean(np.square(wide)))) if frames else 0.0,
            "clipped": int(guard.clipped),
            "non_finite": int(guard.non_finite),
            "faults": faults,
            "notices": notices,
            "taps": taps,
            "tap_rates": {
                tap: engine.sample_rate / (engine.block_size // data.shape[2]) for tap, data in captured.items()
            },
            "files": [
                {"path": name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
                for name, blob in files.items()
            ],
            "patch_sha256": self.patch_sha256,
            "neuralgraph_version": self.version,
            "worker": self.worker,
        }


def render_one(renderer: Renderer, index: int) -> Result:
    """Render ``index``; whatever goes wrong is reported as a NeuralgraphError naming the render."""
    render = render_at(renderer.job, index)
    try:
        return renderer.render(render)
    except Exception as exc:
        raise NeuralgraphError(f"render {render.id} ({render.params}): {exc}") from None
