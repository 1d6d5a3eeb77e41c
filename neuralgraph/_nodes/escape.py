"""A node's per-block work as source lines for the fused function, with a Python call it may stop for.

Most of what a model node does per block is copying (samples into the window it hands the model,
held results out to its ports); only now and then is a call due, and that call must be made
from Python (onnxruntime). :class:`EscapeKernel` lets such a node join a fused run: its lines
are pasted into the generated function like a compiler step's, and at the point a call is due
they execute ``{escape}``, which records where the function stopped and returns to the fused
step. The step runs :attr:`EscapeKernel.call` in Python and calls the fused function again: it
skips the members before this one (they ran once) and re-enters this member's lines, which
pick up from the state they saved in their own arrays. A block with no call due never leaves
compiled code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen(eq=False)
class EscapeKernel:
    """Source lines a node offers for fusion (from ``Node.kernel``), which may stop for ``call``.

    ``lines`` are ``str.format`` templates at function-body level, as for a compiler step's
    inline source: ``{k}`` is argument ``k`` of ``args`` (an array, by its name in the generated
    function; a scalar, as a literal), ``{m}`` a prefix unique to the member for its local names,
    ``{escape}`` the statement that stops the fused function (``return`` included) so that the
    step runs ``call()`` and then resumes the function at the start of these lines. The lines
    must keep whatever they need to resume in their own arrays, and leave them so that the next
    block starts afresh. ``call`` runs in the audio thread: it must not allocate; an exception
    from it is contained like any fault of the node (bypassed and reported by its name).
    """

    lines: tuple[str, ...]
    args: tuple[Any, ...]
    call: Callable[[], None]
    #: module-level numba functions the lines call, as ``{f0}``, ``{f1}``, ... (importable as
    #: ``module.name``, as a fused kernel must be)
    functions: tuple[Any, ...] = ()
    #: outputs the lines leave unwritten (no connection reads them: ``PrepareContext.read_outputs``);
    #: a tap on one runs the node's ``process`` instead, which writes every output
    unwritten: frozenset[str] = frozenset()
