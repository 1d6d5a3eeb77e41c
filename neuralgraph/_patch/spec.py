"""The frozen, validated form of a patch: what the loader produces and the compiler consumes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Loc:
    """Where something was written: file, 1-based line and column (None when unknown)."""

    file: str | None = None
    line: int | None = None
    col: int | None = None


@attrs.frozen
class Source:
    """One term feeding a signal input: another node's output, optionally mapped.

    ``port`` None means the node's main output. With ``range`` set, the source's declared span is
    mapped onto ``range`` with ``curve`` ("lin" or "exp"). ``feedback`` edges carry the previous
    block and may close a cycle.
    """

    node: str
    port: str | None = None
    range: tuple[float, float] | None = None
    curve: str = "lin"
    feedback: bool = False
    loc: Loc = Loc()

    def label(self) -> str:
        return self.node if self.port is None else f"{self.node}.{self.port}"


@attrs.frozen
class InputSpec:
    """A signal input's value: a constant plus the sum of zero or more sources."""

    constant: float = 0.0
    sources: tuple[Source, ...] = ()
    loc: Loc = Loc()

    @property
    def connected(self) -> bool:
        return bool(self.sources)


@attrs.frozen
class NodeSpec:
    """One ``[nodes.NAME]`` table: its type, parameter values and input values."""

    name: str
    type: str
    params: Mapping[str, Any]
    inputs: Mapping[str, InputSpec]
    loc: Loc = Loc()


@attrs.frozen
class PatchSpec:
    """A whole patch file after loading: name, engine defaults and nodes, in file order."""

    name: str
    file: Path | None
    engine: Mapping[str, Any]
    nodes: Mapping[str, NodeSpec]

    @property
    def directory(self) -> Path:
        return self.file.parent if self.file is not None else Path.cwd()
