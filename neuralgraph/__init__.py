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
"""

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
from neuralgraph._runtime.engine import BadValues, Engine, Fault
from neuralgraph._runtime.latency import render_aligned
from neuralgraph._runtime.steptimer import SlowStep
from neuralgraph._tools.batch import Job, JobError, load_job, run_batch
from neuralgraph._tools.progress import RenderProgress
from neuralgraph._tools.render_file import RenderInterrupted, RenderResult, Target, check_target, render_to_file

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "BadValues",
    "CompileError",
    "Engine",
    "Fault",
    "Job",
    "JobError",
    "NeuralgraphError",
    "ParameterError",
    "Patch",
    "PatchError",
    "PatchSyntaxError",
    "PatchValidationError",
    "Plan",
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
    "build_plan",
    "check_patch",
    "check_target",
    "default_registry",
    "load_job",
    "load_patch",
    "open_backend",
    "parse_override",
    "read_audio",
    "run_batch",
    "render_aligned",
    "render_to_file",
    "write_audio",
]
