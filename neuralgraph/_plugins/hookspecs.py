"""The pluggy hook specifications plugins implement. All run on the control thread, never in audio."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "neuralgraph"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ng_register_nodes(register: Callable[..., None]) -> None:
    """Register node types: call ``register(NodeClass)`` once per class.

    The class's ``type_name`` (``"namespace.kind"``) is the name patches use; pass
    ``register(NodeClass, "other.name")`` to register it under another name as well.
    """


@hookspec
def ng_register_backends(register: Callable[..., None]) -> None:
    """Register audio backends: call ``register(name, factory)``.

    ``factory(engine, **options)`` returns an object with ``start()``, ``stop()`` and
    ``status()``; see :mod:`neuralgraph._io.backend`.
    """
