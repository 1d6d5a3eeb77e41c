"""The public face for plugin authors: everything a node or backend plugin needs, in one import.

The built-in plugins (``neuralgraph_plugins``) import nothing else from neuralgraph, so a
third-party package written against this module has what they have. A node plugin::

    from neuralgraph.plugin import Node, Input, Output, Param, Ports, PrepareContext, hookimpl

    class Crush(Node):
        \"\"\"Bit crusher.\"\"\"
        type_name = "acme.crush"
        in_ = Input(doc="Signal to crush.")    # a port named `in`: see Node docs
        bits = Param(init=8, kind=int, min=1, max=24)
        out = Output()

        def prepare(self, ctx): ...
        def process(self, ins, outs, frames): ...

    @hookimpl
    def ng_register_nodes(register):
        register(Crush)

and in the package's ``pyproject.toml``::

    [project.entry-points.neuralgraph]
    acme = "acme_nodes"

A backend plugin registers a factory with ``ng_register_backends``; the factory returns a
:class:`Backend` whose device callback runs a :class:`CallbackAdapter` (see the ``jack`` and
``sounddevice`` backends in ``neuralgraph_plugins``).

A node may own its output arrays (:meth:`Node.output_buffers`, used instead of slab buffers) and
is handed its port views once before the first block (:meth:`Node.bind`); a parameter of kind
``dict`` takes a table, and :class:`ParamValueError` may name the nested key it concerns
(``subkey``) and a ``hint``. :func:`did_you_mean` suggests the closest of a set of known names.
A compiled kernel (:meth:`Node.kernel`) is written with :func:`njit`, numba's decorator with
numba's options that imports numba only when the kernel must compile in this process: a render
whose kernels come from compiled modules (the cache) never imports it; :func:`intrinsic` is
numba's ``intrinsic`` made the same way, and :data:`carray` numba's ``carray`` for kernels
that reach arrays by address.
A node that runs a model file calls :func:`check_model_memory` (path) before opening its own
session: one probe inference under the memory budget of the patch being loaded, so a tiny file
that asks for gigabytes is refused, located, instead of paging the machine (``onnx.model`` does).
"""

from neuralgraph._errors import BackendError, NeuralgraphError, PluginError, did_you_mean
from neuralgraph._io.audiofile import read_audio, write_audio
from neuralgraph._io.backend import Backend, CallbackAdapter, RealtimeGuard, Status, warm_up
from neuralgraph._nodes.buffers import dense
from neuralgraph._nodes.escape import EscapeKernel
from neuralgraph._nodes.events import CONTROL_CHANGE, NOTE_OFF, NOTE_ON, PITCH_BEND, EventBuffer
from neuralgraph._nodes.kernels import copy_kernel
from neuralgraph._nodes.lazyjit import carray, intrinsic, njit
from neuralgraph._nodes.mapping import apply_mapping, mapping_transform
from neuralgraph._nodes.node import Node, Ports, PrepareContext
from neuralgraph._nodes.ports import Input, Output, Param, ParamValueError, Rate
from neuralgraph._patch.model_probe import check_model_memory
from neuralgraph._plugins.hookspecs import BackendRegistrar, NodeRegistrar, hookimpl

__all__ = [
    "CONTROL_CHANGE",
    "NOTE_OFF",
    "NOTE_ON",
    "PITCH_BEND",
    "Backend",
    "BackendRegistrar",
    "BackendError",
    "CallbackAdapter",
    "EscapeKernel",
    "EventBuffer",
    "Input",
    "NeuralgraphError",
    "Node",
    "NodeRegistrar",
    "Output",
    "Param",
    "ParamValueError",
    "PluginError",
    "Ports",
    "PrepareContext",
    "Rate",
    "RealtimeGuard",
    "Status",
    "apply_mapping",
    "carray",
    "check_model_memory",
    "copy_kernel",
    "dense",
    "did_you_mean",
    "hookimpl",
    "intrinsic",
    "mapping_transform",
    "njit",
    "read_audio",
    "warm_up",
    "write_audio",
]
