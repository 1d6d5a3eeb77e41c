"""neuralgraph: real-time audio synthesis that composes neural-network models with classic DSP.

This module is the public face for host programs and scripts: load and check a patch, compile
it, render it offline (to an array, or streamed block by block into a file that replaces the
target only when complete: ``check_target`` and ``render_to_file``), play it through an audio
backend, control a running engine, render a data set of one patch over a parameter space
(``load_job`` and ``run_batch``, what ``neuralgraph batch`` runs: docs/batch.md), and the errors
all of these raise. Plugin authors use :mod:`neuralgraph.plugin`; plugin tests use
:mod:`neuralgraph.testing`. Every other module is private and may change without notice.

::

    import neuralgraph as ng
    patch = ng.load_patch("graphs/saw_chord.toml")
    engine = ng.Engine(patch, sample_rate=48000, block_size=128)
    audio = engine.render(seconds=2.0)        # float32 (channels, frames)
    audio, removed = ng.render_aligned(engine, 2.0)  # the same, without the patch's declared latency
    ng.write_audio("chord.wav", audio, engine.sample_rate)

Live (docs/live.md): ``Engine.swap`` plays an edited patch keeping every kept node's state
(a :class:`SwapReport` says what it kept), ``Engine.tap`` reads any signal of a running engine
(a :class:`Tap` of :class:`TapChunk` s); :func:`register` a node class from a script or
notebook, :func:`render` to an :class:`Audio` array and :func:`play` to a :class:`Player`.
"""

import os
import sys
from typing import TYPE_CHECKING, Any

if "numpy" not in sys.modules:
    # OpenBLAS (numpy's BLAS) starts a worker per core as it loads, each busy-waiting before it
    # sleeps, and again after every BLAS call: 0.13 s of CPU a worker at start-up, and a spinning
    # thread beside the audio thread. neuralgraph's numerical work comes in blocks too small for
    # them. A value the user set wins; a host that imported numpy first keeps its own.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from neuralgraph._compile.compiler import build_plan
from neuralgraph._compile.plan import Plan
from neuralgraph._errors import (
    BackendError,
    CompileError,
    NeuralgraphError,
    ParameterError,
    PatchError,
    PatchSyntaxError,
    PatchValidationError,
    PluginError,
    PluginWarning,
    Problem,
    UsageError,
)
from neuralgraph._io.audiofile import read_audio, write_audio
from neuralgraph._io.backend import Backend, Status, open_backend
from neuralgraph._patch.loader import parse_override
from neuralgraph._patch.patch import Patch, check_patch, load_patch
from neuralgraph._plugins.registry import Registry, default_registry
from neuralgraph._runtime.engine import BadValues, Engine, Fault, Notice
from neuralgraph._runtime.latency import render_aligned
from neuralgraph._runtime.steptimer import SlowStep
from neuralgraph._runtime.swap import SwapReport
from neuralgraph._runtime.tap import Tap, TapChunk
from neuralgraph._tools.progress import RenderProgress
from neuralgraph._tools.render_file import RenderInterrupted, RenderResult, Target, check_target, render_to_file

__version__ = "0.1.0"
#: Names imported on first use, by the module that defines them: a render does not pay for the
#: batch machinery, nor for the script session's drawing and player.
_LAZY = {
    **dict.fromkeys(("Job", "JobError", "load_job", "run_batch"), "neuralgraph._tools.batch"),
    **dict.fromkeys(("Audio", "Player", "play", "register", "render"), "neuralgraph._tools.session"),
}

if TYPE_CHECKING:
    from neuralgraph._tools.batch.job import load_job
    from neuralgraph._tools.batch.run import run_batch
    from neuralgraph._tools.batch.spec import Job, JobError
    from neuralgraph._tools.session import Audio, Player, play, register, render


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Audio",
    "Backend",
    "BackendError",
    "BadValues",
    "CompileError",
    "Engine",
    "Fault",
    "Job",
    "JobError",
    "NeuralgraphError",
    "Notice",
    "ParameterError",
    "Patch",
    "PatchError",
    "PatchSyntaxError",
    "PatchValidationError",
    "Plan",
    "Player",
    "PluginError",
    "PluginWarning",
    "Problem",
    "Registry",
    "SlowStep",
    "RenderInterrupted",
    "RenderProgress",
    "RenderResult",
    "Status",
    "Target",
    "UsageError",
    "SwapReport",
    "Tap",
    "TapChunk",
    "build_plan",
    "check_patch",
    "check_target",
    "default_registry",
    "load_job",
    "load_patch",
    "open_backend",
    "parse_override",
    "play",
    "read_audio",
    "run_batch",
    "render_aligned",
    "render_to_file",
    "register",
    "render",
    "write_audio",
]
