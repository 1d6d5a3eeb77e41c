"""The plugin registry: node types and backends gathered from the ``neuralgraph`` entry points.

This module is the typed facade over pluggy: the rest of the core asks the :class:`Registry`
for a node class or a backend and never touches ``pm.hook``. Loading is controlled by two
environment variables, both comma-separated lists of entry-point names:

- ``NEURALGRAPH_PLUGINS``: load only these (an allow-list);
- ``NEURALGRAPH_DISABLE_PLUGINS``: never load these (a block-list).

The essential plugins (:data:`ESSENTIAL_PLUGINS`: the audio output and input, the core control
mappers) load whatever the lists say; asking to drop one is reported in ``notices`` and as a
warning, naming the plugin and the setting that asked.

A plugin that fails to import or to register is skipped and recorded in ``failures``; two
plugins registering one type name is a :class:`~neuralgraph._errors.PluginError` naming both.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from types import ModuleType
from typing import Any, Generic, TypeVar

import attrs
import pluggy

from neuralgraph._errors import PluginError, PluginWarning, UsageError
from neuralgraph._nodes.node import Node
from neuralgraph._plugins import hookspecs, index

ENTRY_POINT_GROUP = "neuralgraph"
#: Entry points (by the module they load) without which the framework cannot work, and why.
ESSENTIAL_PLUGINS = {
    "neuralgraph_plugins.io": "it provides io.output and io.input, without which no patch can play",
    "neuralgraph_plugins.mappers": "it provides the core control mappers (map.*)",
}
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@attrs.frozen
class NodeType:
    """A registered node type: its name, class and the plugin that registered it."""

    name: str
    cls: type[Node]
    plugin: str


@attrs.frozen
class BackendType:
    name: str
    factory: Callable[..., Any]
    plugin: str


@attrs.frozen
class PluginFailure:
    """A plugin that was skipped, and why."""

    plugin: str
    error: str


_T = TypeVar("_T")


class _Names(MutableMapping[str, _T], Generic[_T]):
    """Registered names, plus names an index says a not yet imported plugin registers: asking
    for one of those imports that plugin first (``load_plugin``)."""

    def __init__(self, load_plugin: Callable[[str], None]) -> None:
        self._loaded: dict[str, _T] = {}
        self.pending: dict[str, str] = {}  #: name -> entry point that registers it
        self._load_plugin = load_plugin

    def __getitem__(self, name: str) -> _T:
        if name not in self._loaded and name in self.pending:
            self._load_plugin(self.pending[name])
        return self._loaded[name]

    def __setitem__(self, name: str, value: _T) -> None:
        self._loaded[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.pending.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self.pending

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._loaded), **dict.fromkeys(self.pending)})

    def __len__(self) -> int:
        return len(self._loaded.keys() | self.pending.keys())


def _resolve(value: str) -> Any:
    """What the entry point ``module[:attribute.path]`` names (``EntryPoint.load`` without
    importing ``importlib.metadata``)."""
    module_name, _, attributes = value.partition(":")
    target: Any = importlib.import_module(module_name.strip())
    for attribute in filter(None, attributes.strip().split(".")):
        target = getattr(target, attribute)
    return target


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


class Registry:
    """Node types and backends by name. Build one with :meth:`load` or :func:`default_registry`."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.node_types: _Names[NodeType] = _Names(self._load_indexed)
        self.backends: _Names[BackendType] = _Names(self._load_indexed)
        self._entry_points: dict[str, str] = {}  #: indexed plugins not imported yet: name -> module
        self.failures: list[PluginFailure] = []
        self.plugins: list[str] = []
        #: Requests that were not followed (an essential plugin asked to be disabled).
        self.notices: list[str] = []

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        plugins: Mapping[str, ModuleType | object] | None = None,
        allow: Iterable[str] | None = None,
        block: Iterable[str] | None = None,
    ) -> Registry:
        """Load the entry-point plugins (filtered by ``allow``/``block`` or the environment),
        plus ``plugins`` given directly as ``{name: module_or_object}``.

        Unfiltered, with no direct plugins, a valid index (``_plugins/index.py``) stands in for
        the imports: a plugin module is imported when one of its names is first asked for."""
        reg = cls()
        unfiltered = entry_points and not plugins and allow is None and block is None
        unfiltered = unfiltered and not {"NEURALGRAPH_PLUGINS", "NEURALGRAPH_DISABLE_PLUGINS"} & os.environ.keys()
        if unfiltered and reg._use_index():
            return reg
        allowed = set(allow) if allow is not None else _env_list("NEURALGRAPH_PLUGINS")
        blocked = set(block) if block is not None else (_env_list("NEURALGRAPH_DISABLE_PLUGINS") or set())
        if entry_points:
            import importlib.metadata  # with its email parser, only for a full load

            found = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
            _check_names(allowed, blocked, allow is None, block is None, {ep.name for ep in found})
            for ep in found:
                if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                    if ep.value not in ESSENTIAL_PLUGINS:
                        continue
                    reg._refuse_to_drop(
                        ep.name,
                        ESSENTIAL_PLUGINS[ep.value],
                        ep.name in blocked,
                        from_env=(block if ep.name in blocked else allow) is None,
                    )
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not take the others down
                    reg.failures.append(PluginFailure(ep.name, f"cannot import {ep.value}: {exc!r}"))
                    continue
                reg.add_plugin(module, ep.name)
        for name, plugin in (plugins or {}).items():
            reg.add_plugin(plugin, name)
        reg._collect()
        if unfiltered and not (reg.failures or reg.notices):
            reg._write_index({ep.name: ep.value for ep in found})
        return reg

    def _use_index(self) -> bool:
        data = index.read()
        if data is None:
            return False
        self._entry_points = dict(data["entry_points"])
        self.node_types.pending.update(data["types"])
        self.backends.pending.update(data["backends"])
        return True

    def _write_index(self, entry_points: dict[str, str]) -> None:
        files = [path for name in self.plugins for path in index.source_files(self._pm.get_plugin(name))]
        types = {name: t.plugin for name, t in self.node_types.items()}
        backends = {name: b.plugin for name, b in self.backends.items()}
        index.write(entry_points, types, backends, files)

    def _load_indexed(self, name: str) -> None:
        """Import and register the indexed entry point ``name`` (once)."""
        value = self._entry_points.pop(name, None)
        if value is None:
            return
        for names in (self.node_types.pending, self.backends.pending):
            for key in [key for key, plugin in names.items() if plugin == name]:
                del names[key]
        try:
            module = _resolve(value)
        except Exception as exc:
            self.failures.append(PluginFailure(name, f"cannot import {value}: {exc!r}"))
            return
        self.add_plugin(module, name)
        self._collect(only=name)

    def _refuse_to_drop(self, name: str, why: str, blocked: bool, *, from_env: bool) -> None:
        """Note (and warn) that the essential plugin ``name`` loads although a setting left it out."""
        if blocked:
            setting = "NEURALGRAPH_DISABLE_PLUGINS" if from_env else "the block list"
        else:
            setting = "NEURALGRAPH_PLUGINS (it is not listed)" if from_env else "the allow list (it is not listed)"
        message = f"plugin {name!r} cannot be disabled: {why}; loaded although {setting} leaves it out"
        self.notices.append(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def add_plugin(self, plugin: ModuleType | object, name: str) -> None:
        """Register a module or object with ``ng_*`` hook implementations under ``name``."""
        if self._pm.has_plugin(name):
            return
        try:
            self._pm.register(plugin, name=name)
        except Exception as exc:
            self.failures.append(PluginFailure(name, f"cannot register hooks: {exc}"))
            return
        self.plugins.append(name)

    def _collect(self, only: str | None = None) -> None:
        for impl in self._pm.hook.ng_register_nodes.get_hookimpls():
            if only in (None, impl.plugin_name):
                self._call(impl, self._node_registrar(impl.plugin_name))
        for impl in self._pm.hook.ng_register_backends.get_hookimpls():
            if only in (None, impl.plugin_name):
                self._call(impl, self._backend_registrar(impl.plugin_name))

    def _call(self, impl: pluggy.HookImpl, register: Callable[..., None]) -> None:
        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            self.failures.append(PluginFailure(impl.plugin_name, f"{impl.function.__name__} failed: {exc!r}"))

    def _node_registrar(self, plugin: str) -> Callable[..., None]:
        def register(node_cls: type[Node], name: str | None = None) -> None:
            self.register_node(node_cls, name, plugin=plugin)

        return register

    def _backend_registrar(self, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any]) -> None:
            if name in self.backends and self.backends[name].plugin != plugin:
                raise PluginError(
                    f"backend {name!r} is registered by two plugins: {self.backends[name].plugin!r} and "
                    f"{plugin!r}; disable one with NEURALGRAPH_DISABLE_PLUGINS"
                )
            self.backends[name] = BackendType(name, factory, plugin)

        return register

    def register_node(self, node_cls: type[Node], name: str | None = None, *, plugin: str = "<code>") -> None:
        """Add one node class. Raises PluginError on a bad class or a name already taken."""
        type_name = name or getattr(node_cls, "type_name", "")
        if not (isinstance(node_cls, type) and issubclass(node_cls, Node)):
            raise PluginError(f"plugin {plugin!r} registered {node_cls!r}, which is not a neuralgraph Node class")
        if not TYPE_NAME.match(type_name or ""):
            raise PluginError(
                f"plugin {plugin!r}: {node_cls.__qualname__} has type name {type_name!r}; "
                "it must be snake_case words joined by dots, like 'osc.saw'"
            )
        existing = self.node_types.get(type_name)
        if existing is not None and existing.cls is not node_cls:
            raise PluginError(
                f"node type {type_name!r} is registered by two plugins: {existing.plugin!r} "
                f"({existing.cls.__module__}.{existing.cls.__qualname__}) and {plugin!r} "
                f"({node_cls.__module__}.{node_cls.__qualname__}); "
                "disable one with NEURALGRAPH_DISABLE_PLUGINS=<name>"
            )
        try:
            node_cls()
        except Exception as exc:
            raise PluginError(
                f"plugin {plugin!r}: {type_name} ({node_cls.__qualname__}) is not constructible with its "
                f"default parameters: {exc}"
            ) from exc
        self.node_types[type_name] = NodeType(type_name, node_cls, plugin)

    # ---- queries ---------------------------------------------------------------------------
    def node_class(self, name: str) -> type[Node]:
        """The class registered as ``name``; KeyError if there is none."""
        return self.node_types[name].cls

    def backend(self, name: str) -> Callable[..., Any]:
        return self.backends[name].factory


def _check_names(
    allowed: set[str] | None, blocked: set[str], allow_from_env: bool, block_from_env: bool, known: set[str]
) -> None:
    """A plugin name in the allow- or block-list that is not installed is a mistake, not a silent no-op
    (``NEURALGRAPH_PLUGINS=nope`` used to disable every plugin without a word)."""
    for names, var, from_env in (
        (allowed, "NEURALGRAPH_PLUGINS", allow_from_env),
        (blocked, "NEURALGRAPH_DISABLE_PLUGINS", block_from_env),
    ):
        unknown = sorted((names or set()) - known)
        if unknown:
            where = f"{var}={os.environ.get(var, '')!r}" if from_env else "the plugin list"
            raise UsageError(
                f"{where} names plugins that are not installed: {', '.join(unknown)} "
                f"(installed: {', '.join(sorted(known)) or 'none'})"
            )


@functools.cache
def default_registry() -> Registry:
    """The registry of every installed plugin, loaded once per process."""
    return Registry.load()
