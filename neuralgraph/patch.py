"""``load_patch``: a patch file (or a dict built in code) to a checked :class:`Patch`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .config import Limits, load_limits
from .errors import CompileError, PatchError, PatchSyntaxError, PatchValidationError, Problem, display_path
from .graph import Topology, analyse
from .loader import PatchLoader, Problems, apply_overrides, parse_toml
from .registry import Registry, default_registry
from .spec import PatchSpec

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_BLOCK_SIZE = 128


@attrs.frozen
class Patch:
    """A loaded and checked patch. Make an :class:`~neuralgraph.Engine` from it to run it."""

    spec: PatchSpec
    topology: Topology
    registry: Registry = attrs.field(repr=False)
    #: The limits it was loaded under; the compiler checks ``memory_budget_mb`` against them.
    limits: Limits = attrs.field(factory=Limits, repr=False)

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
        from .drawing import dot_program, patch_to_dot, render_dot

        if dot_program() is None:
            return None
        return render_dot(patch_to_dot(self), "svg").decode("utf-8")


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
    (NG126), ``memory_budget_mb`` caps what the compiler may allocate (NG127, at ``Engine``).
    """
    registry = registry or default_registry()
    limits = load_limits(allow_outside_paths=allow_outside, max_nodes=max_nodes,
                         memory_budget_mb=memory_budget_mb)
    if text_name is not None:
        file = None
        shown = text_name
        data, positions = parse_toml(str(source), shown)
        directory = Path(base_dir) if base_dir else Path.cwd()
    elif isinstance(source, Mapping):
        file = None
        shown = None
        data = copy.deepcopy(dict(source))
        positions: dict = {}
        directory = Path(base_dir) if base_dir else Path.cwd()
    else:
        file = Path(source)
        shown = display_path(file)
        try:
            # utf-8-sig: a byte-order mark (Windows editors write one) is dropped, not a syntax error
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise PatchSyntaxError([Problem("NG101", "no such patch file", shown)]) from None
        except UnicodeDecodeError as exc:  # name the line of the first byte that is not UTF-8
            start = exc.start
            line = exc.object.count(b"\n", 0, start) + 1
            col = start - (exc.object.rfind(b"\n", 0, start) + 1) + 1
            raise PatchSyntaxError([Problem("NG101", f"cannot read the patch: {exc}", shown, line, col,
                                            hint="save the file as UTF-8")]) from None
        except OSError as exc:
            raise PatchSyntaxError([Problem("NG101", f"cannot read the patch: {exc}", shown)]) from None
        data, positions = parse_toml(text, shown)
        directory = file.resolve().parent
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
    if found:
        if loader.declared != set(spec.nodes):  # a missing output may just be a node that failed
            graph_problems = [p for p in graph_problems if p.code != "NG125"]
        raise PatchValidationError(_by_position(found + graph_problems))
    if graph_problems:
        raise CompileError(_by_position(graph_problems))
    return Patch(spec=spec, topology=topology, registry=registry, limits=limits)


def _by_position(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.col or 0))


def check_patch(source: str | Path | Mapping[str, Any], **kwargs: Any) -> tuple[Patch | None, list[Problem]]:
    """Like :func:`load_patch`, but returns ``(patch, [])`` or ``(None, problems)``."""
    try:
        return load_patch(source, **kwargs), []
    except PatchError as exc:
        return None, list(exc.problems)
