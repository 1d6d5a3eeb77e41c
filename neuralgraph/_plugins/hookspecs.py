"""The pluggy hook specifications plugins implement. All run on the control thread, never in audio."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from neuralgraph._nodes.node import Node

PROJECT = "neuralgraph"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class NodeRegistrar(Protocol):
    """The ``register`` that :func:`ng_register_nodes` is handed."""

    def __call__(self, node_cls: type[Node], name: str | None = None, /) -> None:
        """Register ``node_cls`` under its ``type_name`` (or under ``name`` as well)."""


class BackendRegistrar(Protocol):
    """The ``register`` that :func:`ng_register_backends` is handed."""

    def __call__(self, name: str, factory: Callable[..., Any], /) -> None:
        """Register ``factory(engine, **options)`` as the backend ``name``."""


@hookspec
def ng_register_nodes(register: NodeRegistrar) -> None:
    """Register node types: call ``register(NodeClass)`` once per class.

    The class's ``type_name`` (``"namespace.kind"``) is the name patches use; pass
    ``register(NodeClass, "other.name")`` to register it under another name as well.
    """


@hookspec
def ng_register_backends(register: BackendRegistrar) -> None:
    """Register audio backends: call ``register(name, factory)``.

    ``factory(engine, **options)`` returns an object with ``start()``, ``stop()`` and
    ``status()``; see :mod:`neuralgraph._io.backend`.
    """
