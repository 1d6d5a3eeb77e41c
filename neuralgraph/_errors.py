"""The exception types of neuralgraph and the problems they carry.

Every error a user can cause derives from :class:`NeuralgraphError`. Errors about a patch file
(:class:`PatchError` and its subclasses) carry *all* the problems found, each one a
:class:`Problem` with a stable code, the file, line and column, the dotted path inside the patch
(``nodes.lpf.cutoff``), the offending value and a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

#: Stable error codes. They are part of the public contract (docs/errors.md lists them).
CODES: dict[str, str] = {
    "NG100": "the file is not valid TOML",
    "NG101": "the file cannot be read",
    "NG102": "wrong or missing schema version",
    "NG103": "a top-level key or table is wrong",
    "NG110": "unknown node type",
    "NG111": "unknown key on a node (not a parameter or input of its type)",
    "NG112": "a value has the wrong type",
    "NG113": "a value is out of its range or not one of its choices",
    "NG114": "nan or inf literal",
    "NG115": "a connection or mapping is malformed",
    "NG116": "a file named by the patch does not exist",
    "NG117": "a node rejected its parameters",
    "NG118": "a file path leads outside the patch's folder (allow it with --allow-outside-paths)",
    "NG120": "a connection names a node that does not exist",
    "NG121": "a connection names a port that does not exist",
    "NG122": "rate mismatch between the two ends of a connection",
    "NG123": "lane mismatch between the two ends of a connection",
    "NG124": "a cycle without a feedback edge",
    "NG125": "the patch has no io.output node, or more than one",
    "NG126": "the patch has more nodes than the max_nodes limit",
    "NG127": "the patch's buffers and node state exceed the memory budget",
    "NG130": "a --set override is malformed",
}


@attrs.frozen
class Problem:
    """One thing wrong with a patch, located as precisely as the source allows."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    path: str | None = None
    value: object = attrs.field(default=None, eq=False)
    hint: str | None = None

    def format(self) -> str:
        """``file:line:col path: message (hint)``, the form editors and CI logs understand."""
        where = self.file or "<patch>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: {self.code} "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __str__(self) -> str:
        return self.format()


class NeuralgraphError(Exception):
    """Root of every error neuralgraph raises on purpose."""


class PatchError(NeuralgraphError):
    """A patch file (or a patch built in code) has one or more problems.

    ``problems`` lists them all, in file order; ``str(error)`` shows one per line.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(p.format() for p in self.problems))

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]


class PatchSyntaxError(PatchError):
    """The file is not valid TOML, or cannot be read."""


class PatchValidationError(PatchError):
    """The TOML is valid but names unknown types, keys, ports, or wrong values."""


class CompileError(PatchError):
    """The graph cannot be turned into a plan: cycles, rate or lane mismatches, no output."""


class PluginError(NeuralgraphError):
    """A plugin could not be loaded or registered (two plugins claim one name, say)."""


class PluginWarning(UserWarning):
    """A plugin setting that was not followed (an essential plugin left out of the lists)."""


class ParameterError(NeuralgraphError, ValueError):
    """``Engine.set`` was given a target or a value that does not exist or does not fit."""


class BackendError(NeuralgraphError):
    """An audio backend cannot be used (library missing, no device, server not running)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest choice, or listing the valid ones when none is close."""
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    if not options:
        return None
    shown = ", ".join(f"`{o}`" for o in options[:12])
    more = f" and {len(options) - 12} more" if len(options) > 12 else ""
    return f"valid: {shown}{more}"


def display_path(path: str | Path | None) -> str | None:
    """A path as the user gave it, kept short: relative to the working directory when inside it."""
    if path is None:
        return None
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
