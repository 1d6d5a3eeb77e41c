"""neuralgraph: real-time audio synthesis that composes neural-network models with classic DSP.

::

    import neuralgraph as ng
    patch = ng.load_patch("graphs/saw_chord.toml")
    engine = ng.Engine(patch, sample_rate=48000, block_size=128)
    audio = engine.render(seconds=2.0)        # float32 (channels, frames)
"""

from .engine import BadValues, Engine, Fault
from .errors import (
    BackendError,
    CompileError,
    NeuralgraphError,
    ParameterError,
    PatchError,
    PatchSyntaxError,
    PatchValidationError,
    PluginError,
    Problem,
)
from .patch import Patch, check_patch, load_patch
from .registry import Registry, default_registry
from .session import Audio, Player, play, register, render

__version__ = "0.1.0"

__all__ = [
    "Audio",
    "BackendError",
    "BadValues",
    "CompileError",
    "Engine",
    "Fault",
    "NeuralgraphError",
    "ParameterError",
    "Patch",
    "PatchError",
    "PatchSyntaxError",
    "PatchValidationError",
    "Player",
    "PluginError",
    "Problem",
    "Registry",
    "check_patch",
    "default_registry",
    "load_patch",
    "play",
    "register",
    "render",
]
