"""Everything a node plugin author needs, in one import.

::

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
"""

from .errors import NeuralgraphError, PluginError
from .events import CONTROL_CHANGE, NOTE_OFF, NOTE_ON, PITCH_BEND, EventBuffer
from .hookspecs import hookimpl
from .node import Node, Ports, PrepareContext
from .ports import Input, Output, Param, ParamValueError, Rate

__all__ = [
    "CONTROL_CHANGE",
    "EventBuffer",
    "Input",
    "NOTE_OFF",
    "NOTE_ON",
    "NeuralgraphError",
    "Node",
    "Output",
    "PITCH_BEND",
    "Param",
    "ParamValueError",
    "PluginError",
    "Ports",
    "PrepareContext",
    "Rate",
    "hookimpl",
]
