"""``load_patch``: a patch file (or a dict built in code) to a checked :class:`Patch`."""

from __future__ import annotations

import copy
import threading
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from neuralgraph._errors import CompileError, PatchError, PatchSyntaxError, PatchValidationError, Problem, display_path
from neuralgraph._nodes.gcpause import gc_paused
from neuralgraph._nodes.node import Node
from neuralgraph._patch.config import DEFAULT_MAX_PATCH_BYTES, Limits, load_limits
from neuralgraph._patch.graph import Topology, analyse
from neuralgraph._patch.loader import PatchLoader, Problems, apply_overrides, parse_toml
from neuralgraph._patch.prescan import MAX_NESTING, check_nesting, read_limited
from neuralgraph._patch.spec import PatchSpec
from neuralgraph._plugins.registry import Registry, default_registry

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_BLOCK_SIZE = 128


class _Unclaimed:
    """The loader's node instances, handed over once: to the first plan built from the patch."""

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self._nodes = dict(nodes)
        self._lock = threading.Lock()

    def take(self) -> dict[str, Node]:
        with self._lock:
            nodes, self._nodes = self._nodes, {}
        return nodes


@attrs.frozen
class Patch:
    """A loaded and checked patch. Make an :class:`~neuralgraph.Engine` from it to run it.

    Each node is instantiated once while loading (its ports are checked on that instance);
    the first engine built from the patch prepares and runs those very instances, so a node
    that opens a model session at construction opens it once. Further engines of the same
    patch (another rate, ``Engine.rebuilt``) make their own.
    """

    spec: PatchSpec
    topology: Topology
    registry: Registry = attrs.field(repr=False)
    #: The limits it was loaded under; the compiler checks ``memory_budget_mb`` against them.
    limits: Limits = attrs.field(factory=Limits, repr=False)
    #: The loader's instance of every node, for reading declarations (ports, parameters);
    #: the first plan built from the patch prepares and runs them.
    instances: Mapping[str, Node] = attrs.field(factory=dict, repr=False, eq=False, converter=types.MappingProxyType)
    _unclaimed: _Unclaimed = attrs.field(init=False, repr=False, eq=False)

    @_unclaimed.default
    def _hand_over(self) -> _Unclaimed:
        return _Unclaimed(self.instances)

    def take_instances(self) -> dict[str, Node]:
        """The loader's instances the first time (for the compiler to prepare), ``{}`` after."""
        return self._unclaimed.take()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def file(self) -> Path | None:
        return self.spec.file

    @property
    def sample_rate(self) -> int:
        return int(self.spec.engine.get("sample_rate", DEFAULT_SAMPLE_RATE))

    @property
    def block_size(self) -> int:
        return int(self.spec.engine.get("block_size", DEFAULT_BLOCK_SIZE))

    @property
    def channels(self) -> int:
        out = self.topology.output_node
        return self.topology.lanes[out] if out else 0

    @classmethod
    def from_string(cls, text: str, *, name: str = "<string>", **kwargs: Any) -> Patch:
        """A patch from TOML text (a notebook cell, a script); errors point into the text as
        ``<string>:LINE:COL``. Keywords as :func:`load_patch` (``base_dir`` for relative paths)."""
        return load_patch(text, text_name=name, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> Patch:
        """A patch from a mapping shaped like the TOML file; keywords as :func:`load_patch`."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Patch.from_dict takes a mapping, not {type(data).__name__}")
        return load_patch(data, **kwargs)

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a patch as its graph drawing (needs Graphviz's ``dot``; else the text repr)."""
        return None if _svg_drawer is None else _svg_drawer(self)


#: Draws a patch as SVG text for :meth:`Patch._repr_svg_`. The drawing is a later stage
#: (``_tools/drawing.py``), so it is handed in from there: :func:`set_svg_drawer`.
_svg_drawer: Callable[[Patch], str | None] | None = None


def set_svg_drawer(draw: Callable[[Patch], str | None] | None) -> None:
    """Install the function that draws a patch as SVG for Jupyter (None: none, the text repr)."""
    global _svg_drawer
    _svg_drawer = draw


@gc_paused()  # many small objects that all live on: no collector passes over them mid-build
def load_patch(
    source: str | Path | Mapping[str, Any],
    *,
    text_name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    base_dir: str | Path | None = None,
    allow_outside: bool | None = None,
    max_nodes: int | None = None,
    memory_budget_mb: int | None = None,
    max_patch_bytes: int | None = None,
) -> Patch:
    """Load, validate and analyse a patch.

    ``source`` is a path to a TOML file or an already-parsed mapping (for patches built in code;
    relative paths in it resolve against ``base_dir``); with ``text_name`` it is TOML text itself,
    named so in errors (:meth:`Patch.from_string`). ``overrides`` maps ``"node.param"`` to a
    value, as ``--set`` does. Raises :class:`PatchError` (a subclass says which stage) listing
    every problem found.

    The limits (docs/reliability.md) come from ``config.toml``'s ``[limits]`` and
    ``NEURALGRAPH_*`` variables unless given here: ``allow_outside=True`` lets file parameters
    name files outside the patch's folder (else NG118), ``max_nodes`` caps the node count
    (NG126), ``memory_budget_mb`` caps what the compiler may allocate (NG127, at ``Engine``),
    ``max_patch_bytes`` caps the file's size (NG101); nesting deeper than 32 levels is refused
    before parsing (NG100).
    """
    registry = registry or default_registry()
    limits = load_limits(
        allow_outside_paths=allow_outside,
        max_nodes=max_nodes,
        memory_budget_mb=memory_budget_mb,
        max_patch_bytes=max_patch_bytes,
    )
    file, shown, data, positions, directory = _read_source(source, text_name, base_dir, limits.max_patch_bytes)
    problems = Problems(shown, positions)
    if overrides:
        apply_overrides(data, overrides, problems)
    loader = PatchLoader(registry, problems, directory, limits)
    spec = loader.load(data, file.resolve() if file else None)
    found = problems.sorted()
    # The graph of the nodes that did load is analysed even when some did not, so that one run
    # reports cycles and lane problems beside unknown keys.
    graph_problems: list[Problem] = []
    topology = analyse(spec, loader.instances, graph_problems, declared=loader.declared)
    graph_problems = [problems.noted(p) for p in graph_problems]
    if found:
        if loader.declared != set(spec.nodes):  # a missing output may just be a node that failed
            graph_problems = [p for p in graph_problems if p.code != "NG125"]
        raise PatchValidationError(_by_position(found + graph_problems))
    if graph_problems:
        raise CompileError(_by_position(graph_problems))
    return Patch(spec=spec, topology=topology, registry=registry, limits=limits, instances=loader.instances)


def _read_source(
    source: str | Path | Mapping[str, Any], text_name: str | None, base_dir: str | Path | None, max_bytes: int
) -> tuple[Path | None, str | None, dict[str, Any], Any, Path]:
    """The patch's data (parsed, or copied when built in code), with the file it came from, its
    name in messages, each key's position, and the folder its relative paths start from."""
    if text_name is not None:
        text = str(source)
        check_nesting(text, text_name)
        data, positions = parse_toml(text, text_name)
        return None, text_name, data, positions, Path(base_dir) if base_dir else Path.cwd()
    if isinstance(source, Mapping):
        return None, None, _copy_mapping(source), {}, Path(base_dir) if base_dir else Path.cwd()
    file = Path(source)
    shown = display_path(file)
    text = read_toml_text(file, shown, max_bytes=max_bytes)
    check_nesting(text, shown)
    data, positions = parse_toml(text, shown)
    return file, shown, data, positions, file.resolve().parent


def _copy_mapping(source: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a patch built in code; NG103 when it nests too deep to copy."""
    try:
        return copy.deepcopy(dict(source))
    except RecursionError:  # a dict nested thousands deep: refused like a file that nests too deep
        raise PatchValidationError(
            [Problem("NG103", f"the patch nests more than {MAX_NESTING} deep", hint="a patch nests 5 levels at most")]
        ) from None


def read_toml_text(file: Path, shown: str | None, what: str = "patch", max_bytes: int = DEFAULT_MAX_PATCH_BYTES) -> str:
    """The text of a TOML file (a patch, or a batch job); NG101 naming the file when it is larger
    than ``max_bytes`` or cannot be read (with the line of the first byte that is not UTF-8)."""
    try:
        with open(file, "rb") as f:  # never more than the limit, even from a device or pipe
            raw = read_limited(f, max_bytes, shown)
        # utf-8-sig: a byte-order mark (Windows editors write one) is dropped, not a syntax error
        return raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise PatchSyntaxError([Problem("NG101", f"no such {what} file", shown)]) from None
    except UnicodeDecodeError as exc:  # name the line of the first byte that is not UTF-8
        start = exc.start
        line = exc.object.count(b"\n", 0, start) + 1
        col = start - (exc.object.rfind(b"\n", 0, start) + 1) + 1
        raise PatchSyntaxError(
            [Problem("NG101", f"cannot read the {what}: {exc}", shown, line, col, hint="save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise PatchSyntaxError([Problem("NG101", f"cannot read the {what}: {exc}", shown)]) from None


def _by_position(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def check_patch(source: str | Path | Mapping[str, Any], **kwargs: Any) -> tuple[Patch | None, list[Problem]]:
    """Like :func:`load_patch`, but returns ``(patch, [])`` or ``(None, problems)``."""
    try:
        return load_patch(source, **kwargs), []
    except PatchError as exc:
        return None, list(exc.problems)
