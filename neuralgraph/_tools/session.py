"""A live Python session: register node classes from a script or notebook, render and play
patches without files, and see results in Jupyter.

::

    import neuralgraph as ng

    @ng.register
    class Fold(ng.plugin.Node): ...          # usable in patches at once, as its type_name

    patch = ng.Patch.from_string('''...''')   # or Patch.from_dict({...}), or a path
    audio = ng.render(patch, seconds=2.0)     # an Audio array: a player in Jupyter
    player = ng.play(patch, backend="jack")   # set / swap / tap / stop while it plays
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from neuralgraph._errors import ParameterError
from neuralgraph._io.audiofile import write_audio
from neuralgraph._io.backend import Status, control_priority, open_backend
from neuralgraph._nodes.node import Node
from neuralgraph._patch.config import load_settings
from neuralgraph._patch.patch import Patch, load_patch, set_svg_drawer
from neuralgraph._plugins.registry import Registry, default_registry
from neuralgraph._runtime.engine import Engine
from neuralgraph._runtime.swap import SwapReport
from neuralgraph._runtime.tap import Tap
from neuralgraph._tools.drawing import patch_svg

# Jupyter draws a Patch (``Patch._repr_svg_``); the drawing is a later stage than the patch
set_svg_drawer(patch_svg)

#: The plugin name node classes registered from a session appear under (``neuralgraph nodes``).
SESSION_PLUGIN = "<session>"

N = TypeVar("N", bound=type[Node])


def register(
    node_cls: N | None = None, *, name: str | None = None, registry: Registry | None = None
) -> N | Callable[[N], N]:
    """Register a node class defined in a script or notebook, as ``@register`` or ``register(Cls)``.

    The type is then usable in any patch loaded with the default registry (``name`` overrides
    the class's ``type_name``). Registering a class again under the same name replaces the
    previous session class (re-running a notebook cell); a name a plugin already registered is a
    :class:`~neuralgraph.PluginError` naming both, as for any plugin.
    """

    def add(cls: N) -> N:
        reg = registry or default_registry()
        type_name = name or getattr(cls, "type_name", "")
        existing = reg.node_types.get(type_name)
        if existing is not None and existing.plugin == SESSION_PLUGIN and existing.cls is not cls:
            del reg.node_types[type_name]  # the cell was run again: the new class replaces the old
        reg.register_node(cls, name, plugin=SESSION_PLUGIN)
        return cls

    return add if node_cls is None else add(node_cls)


def as_patch(source: Patch | str | Path | Mapping[str, Any], **kwargs: Any) -> Patch:
    """A :class:`Patch` from a patch, a path, TOML text (a string with a newline) or a mapping."""
    if isinstance(source, Patch):
        return source
    if isinstance(source, Mapping):
        return Patch.from_dict(source, **kwargs)
    if isinstance(source, str) and "\n" in source:
        return Patch.from_string(source, **kwargs)
    if isinstance(source, (str, Path)):
        return load_patch(source, **kwargs)
    raise TypeError(f"expected a Patch, a path, TOML text or a dict, not {type(source).__name__}")


class Audio(np.ndarray):
    """Rendered audio: a float32 ``(channels, frames)`` array that knows its sample rate.

    Jupyter shows it as an audio player (``_repr_html_``); :meth:`save` writes a file.
    """

    sample_rate: int

    def __new__(cls, data: np.ndarray, sample_rate: int) -> Audio:
        obj = np.asarray(data, dtype=np.float32).view(cls)
        obj.sample_rate = int(sample_rate)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.sample_rate = getattr(obj, "sample_rate", 0)

    @property
    def seconds(self) -> float:
        return self.shape[-1] / self.sample_rate if self.sample_rate else 0.0

    def wav_bytes(self) -> bytes:
        """The audio as a 16-bit WAV file in memory (what every browser plays)."""
        import soundfile

        buf = io.BytesIO()
        frames = np.atleast_2d(np.asarray(self)).T
        soundfile.write(buf, np.clip(frames, -1.0, 1.0), self.sample_rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write a WAV (32-bit float) or FLAC file."""
        write_audio(Path(path), np.atleast_2d(np.asarray(self)), self.sample_rate, "float")
        return Path(path)

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.wav_bytes()).decode("ascii")
        peak = float(np.abs(np.asarray(self)).max()) if self.size else 0.0
        channels = self.shape[0] if self.ndim == 2 else 1
        return (
            f'<div><audio controls src="data:audio/wav;base64,{data}"></audio>'
            f"<div><small>{self.seconds:.2f} s, {channels} ch, {self.sample_rate} Hz, peak "
            f"{20 * math.log10(peak) if peak > 0 else -math.inf:.1f} dBFS</small></div></div>"
        )


def render(
    source: Patch | str | Path | Mapping[str, Any],
    seconds: float = 2.0,
    *,
    sample_rate: int | None = None,
    block_size: int | None = None,
    midi: str | Path | None = None,
    input: np.ndarray | None = None,
    set: Mapping[str, Any] | None = None,
    notes: list[tuple[int, int]] | None = None,
) -> Audio:
    """Render ``source`` offline for ``seconds``: an :class:`Audio` array ``(channels, frames)``.

    ``set`` gives values as :meth:`Engine.set` takes them; ``notes`` holds ``(note, velocity)``
    pairs pressed at the start; ``midi`` plays a MIDI file through the patch.
    """
    patch = as_patch(source)
    engine = Engine(patch, sample_rate, block_size)
    for target, value in (set or {}).items():
        engine.set(target, value)
    for note, velocity in notes or ():
        engine.note_on(note, velocity)
    return Audio(engine.render(seconds, midi=midi, input=input), engine.sample_rate)


class Player:
    """A patch playing through an audio backend; made by :func:`play`. Stop it with :meth:`stop`
    (or use it as a context manager)."""

    def __init__(self, backend: Any) -> None:  # a Backend that exposes its engine
        self.backend = backend

    @property
    def engine(self) -> Engine:
        """The engine playing now (a backend may rebuild it for the device's rate or period)."""
        return self.backend.engine

    def set(self, target: str, value: float | str | bool) -> None:
        """Set a parameter or an unconnected input, as :meth:`Engine.set <neuralgraph.Engine.set>`."""
        self.engine.set(target, value)

    def swap(self, source: Patch | str | Path | Mapping[str, Any], fade: float = 0.05) -> SwapReport:
        """Play another patch from the next block on, keeping the state of the nodes it keeps."""
        with control_priority():  # parsing holds the GIL the audio callback needs, as compiling does
            return self.engine.swap(as_patch(source), fade=fade)

    def tap(self, port: str | None = None, seconds: float = 2.0) -> Tap:
        """A tap on ``port`` of the playing patch, as :meth:`Engine.tap <neuralgraph.Engine.tap>`."""
        return self.engine.tap(port, seconds)

    def note_on(self, note: int, velocity: int = 100, channel: int = 0) -> None:
        self.engine.note_on(note, velocity, channel)

    def note_off(self, note: int, velocity: int = 0, channel: int = 0) -> None:
        self.engine.note_off(note, velocity, channel)

    def status(self) -> Status:
        """The backend's counters: callbacks, xruns, CPU load."""
        return self.backend.status()

    def stop(self) -> None:
        """Stop playing (the backend closes its stream)."""
        self.backend.stop()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Player {self.status().line()}>"


def play(
    source: Patch | str | Path | Mapping[str, Any],
    *,
    backend: str | None = None,
    sample_rate: int | None = None,
    block_size: int | None = None,
    **options: Any,
) -> Player:
    """Start playing ``source`` in real time; returns a :class:`Player` (``set``, ``swap``, ``tap``,
    ``stop``). ``backend`` defaults to config.toml / ``NEURALGRAPH_AUDIO_BACKEND`` / sounddevice;
    ``options`` go to the backend (``connect=False``, ``client_name``, ``device``...)."""
    settings = load_settings()
    patch = as_patch(source)
    engine = Engine(patch, sample_rate or settings.get("sample_rate"), block_size or settings.get("buffer_size"))
    name = backend or settings.get("backend") or "sounddevice"
    if settings.get("device") and "device" not in options:
        options["device"] = settings["device"]
    started = open_backend(name, engine, **options)
    started.start()
    if not hasattr(started, "engine"):
        raise ParameterError(f"the {name} backend does not expose its engine; set/swap/tap need it")
    return Player(started)
