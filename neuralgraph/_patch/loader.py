"""TOML patch files (schema 1) to a validated :class:`~neuralgraph._patch.spec.PatchSpec`.

Every problem in a file is collected and reported at once; see :mod:`neuralgraph._errors` for the
codes. Validation against the registry (types, keys, value types, ranges, connection ends and
rates) happens here; graph-level checks (cycles, lanes) happen in :mod:`neuralgraph._patch.graph`.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from neuralgraph._errors import Problem, did_you_mean, display_path
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.ports import FLOAT32_MAX, Input, ParamRangeError, Rate
from neuralgraph._patch.config import Limits
from neuralgraph._patch.locations import Key, locate
from neuralgraph._patch.model_probe import budget as model_budget
from neuralgraph._patch.prescan import MAX_NESTING
from neuralgraph._patch.spec import InputSpec, Loc, NodeSpec, PatchSpec, Source
from neuralgraph._plugins.registry import Registry

SCHEMA = 1
TOP_LEVEL = {"schema", "name", "engine", "nodes"}
ENGINE_KEYS = {"sample_rate": (int, 8000, 384000), "block_size": (int, 1, 16384)}
MAPPING_KEYS = {"from", "range", "curve", "feedback"}
#: integers with this many digits or more are described by their length, not printed
LONG_DIGITS = 20
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SOURCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")


class Problems:
    """Collects problems for one document, filling in file, line and column from key paths."""

    def __init__(self, file: str | None, positions: Mapping[Key, tuple[int, int]]) -> None:
        self.file = file
        self.positions = positions
        self.items: list[Problem] = []
        #: ("nodes", node, param) keys whose values came from ``--set``
        self.overridden: set[Key] = set()

    def loc(self, key: Key, *, value: bool = True) -> Loc:
        if not key:  # the patch as a whole: its first line, so editors and CI logs can jump there
            return Loc(self.file, *((1, 1) if self.file else (None, None)))
        pos = None
        if value:
            pos = self.positions.get(key + ("=",))
        if pos is None:
            # inside an inline table or array the key path runs through "=" markers
            pos = self.positions.get(key) or self._nested(key)
        return Loc(self.file, *(pos or (None, None)))

    def _nested(self, key: Key) -> tuple[int, int] | None:
        for i in range(len(key), 0, -1):
            probe = key[:i] + ("=",) + key[i:]
            if probe in self.positions:
                return self.positions[probe]
        for i in range(len(key) - 1, 0, -1):
            found = self.positions.get(key[:i] + ("=",)) or self.positions.get(key[:i])
            if found:
                return found
        return None

    def add(
        self,
        code: str,
        key: Key,
        message: str,
        *,
        value: Any = None,
        hint: str | None = None,
        at_value: bool = True,
    ) -> None:
        loc = self.loc(key, value=at_value)
        message = self._override_note(key, message)
        path = ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in key).replace(".[", "[")
        self.items.append(Problem(code, message, loc.file, loc.line, loc.col, path or None, value, hint))

    def _override_note(self, key: Key, message: str) -> str:
        if tuple(key[:3]) in self.overridden:  # the value came from the command line, not from that line
            return f"(from --set {key[1]}.{key[2]}) {message}"
        return message

    def noted(self, problem: Problem) -> Problem:
        """A later stage's problem (the graph's), marked when its value came from ``--set``."""
        key = tuple((problem.path or "").split("."))
        message = self._override_note(key, problem.message)
        return problem if message is problem.message else attrs.evolve(problem, message=message)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.line or 0, p.col or 0))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int) and abs(value) >= 10**LONG_DIGITS:  # 10**400 is legal TOML
        return f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def _walk_non_finite(value: Any, key: Key, problems: Problems) -> None:
    if len(key) > MAX_NESTING:  # a patch built in code may nest anything: stop before Python's recursion limit
        problems.add("NG103", key[:MAX_NESTING], f"values nest more than {MAX_NESTING} deep", at_value=False)
        return
    if isinstance(value, float) and not math.isfinite(value):
        problems.add("NG114", key, f"{value} is not allowed", value=value, hint="write a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_non_finite(v, key + (k,), problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk_non_finite(v, key + (i,), problems)


def _syntax_problem(exc: tomllib.TOMLDecodeError, file: str | None) -> Problem:
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    message = getattr(exc, "msg", str(exc))
    if line is None:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if m:
            line, col = int(m[1]), int(m[2])
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return Problem(
        "NG100",
        f"invalid TOML: {message}",
        file,
        line,
        col,
        hint="check quotes, brackets and that each key is written once",
    )


def parse_toml(text: str, file: str | None) -> tuple[dict[str, Any], dict[Key, tuple[int, int]]]:
    """Parse TOML text; raises PatchSyntaxError with the line and column of the first error."""
    from neuralgraph._errors import PatchSyntaxError

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = _syntax_problem(exc, file)
        if problem.line is None and "end of document" in problem.message:  # a truncated file
            last = text.split("\n")
            problem = attrs.evolve(problem, line=len(last), col=len(last[-1]) + 1)
        raise PatchSyntaxError([problem]) from None
    return data, locate(text)


def parse_override(text: str) -> tuple[str, Any]:
    """``node.param=VALUE`` (VALUE in TOML syntax, or a bare word taken as a string)."""
    if "=" not in text:
        raise ValueError("expected node.param=VALUE")
    target, raw = text.split("=", 1)
    target = target.strip()
    if not re.match(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$", target):
        raise ValueError(f"{target!r} is not node.param")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return target, value


class PatchLoader:
    """Turns the TOML data of one patch into a PatchSpec, collecting every problem."""

    def __init__(self, registry: Registry, problems: Problems, directory: Path, limits: Limits | None = None) -> None:
        self.registry = registry
        self.problems = problems
        self.directory = directory
        self.limits = limits or Limits()
        #: validated node instances by name (used for port lookups; the engine makes its own)
        self.instances: dict[str, Node] = {}
        #: every node name the patch declares, including those that failed to load
        self.declared: set[str] = set()

    def load(self, data: dict[str, Any], file: Path | None) -> PatchSpec:
        p = self.problems
        for key, value in data.items():
            if key not in TOP_LEVEL:
                p.add(
                    "NG103",
                    (key,),
                    f"unknown top-level key `{key}`",
                    value=value,
                    hint=did_you_mean(key, TOP_LEVEL),
                    at_value=False,
                )
        _walk_non_finite(data, (), p)
        schema = data.get("schema")
        if schema is None:
            p.add(
                "NG102", (), "missing `schema = 1` at the top of the patch", hint="add `schema = 1` as the first line"
            )
        elif schema != SCHEMA or isinstance(schema, bool):
            p.add(
                "NG102",
                ("schema",),
                f"schema {_describe(schema)} is not supported",
                value=schema,
                hint=f"this version of neuralgraph reads schema {SCHEMA}",
            )
        name = data.get("name", file.stem if file else "patch")
        if not isinstance(name, str):
            p.add("NG112", ("name",), f"`name` must be a string, not {_describe(name)}", value=name)
            name = str(name)
        engine = self._engine(data.get("engine", {}))
        nodes_data = data.get("nodes", {})
        if not isinstance(nodes_data, dict):
            p.add(
                "NG103",
                ("nodes",),
                "`nodes` must be a table of node tables",
                value=nodes_data,
                hint="write each node as [nodes.NAME]",
            )
            nodes_data = {}
        elif not nodes_data:
            p.add(
                "NG125",
                ("nodes",) if "nodes" in data else (),
                "the patch has no nodes",
                hint='add at least [nodes.out] with type = "io.output"',
            )
        self.declared = set(nodes_data)
        if len(nodes_data) > self.limits.max_nodes:  # refuse before building a single node
            first_over = list(nodes_data)[self.limits.max_nodes]
            p.add(
                "NG126",
                ("nodes", first_over),
                f"the patch has {len(nodes_data)} nodes, more than the limit of {self.limits.max_nodes} "
                f"(node `{first_over}` is number {self.limits.max_nodes + 1})",
                value=len(nodes_data),
                hint="raise it on purpose: max_nodes in [limits] of config.toml, NEURALGRAPH_MAX_NODES, "
                "--max-nodes, or load_patch(..., max_nodes=N)",
                at_value=False,
            )
            return PatchSpec(name=name, file=file, engine=engine, nodes={})
        staged = {}
        for node_name, table in nodes_data.items():
            staged[node_name] = self._node_params(node_name, table)
        nodes = {}
        for node_name, stage in staged.items():
            if stage is not None:
                nodes[node_name] = self._node_inputs(node_name, *stage)
        return PatchSpec(name=name, file=file, engine=engine, nodes=nodes)

    def _engine(self, table: Any) -> dict[str, Any]:
        p = self.problems
        if not isinstance(table, dict):
            p.add("NG103", ("engine",), "`engine` must be a table", value=table)
            return {}
        out = {}
        for key, value in table.items():
            if key not in ENGINE_KEYS:
                p.add(
                    "NG103",
                    ("engine", key),
                    f"unknown engine setting `{key}`",
                    value=value,
                    hint=did_you_mean(key, ENGINE_KEYS),
                    at_value=False,
                )
                continue
            kind, lo, hi = ENGINE_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int):
                p.add("NG112", ("engine", key), f"must be an integer, not {_describe(value)}", value=value)
            elif not lo <= value <= hi:
                p.add("NG113", ("engine", key), f"{value} is out of range", value=value, hint=f"valid: {lo}..{hi}")
            else:
                out[key] = value
        return out

    # ---- nodes ------------------------------------------------------------------------------
    def _node_params(self, name: str, table: Any) -> tuple[Node, dict[str, Any], dict[str, Any]] | None:
        """Resolve the type, check parameters and build an instance; None when impossible."""
        cls = self._node_class(name, table)
        if cls is None:
            return None
        checked = self._params(("nodes", name), cls, table)
        if checked is None:
            return None
        params, rest, files = checked
        node = self._construct(name, table, cls, params, files)
        if node is None:
            return None
        self.instances[name] = node
        return node, params, rest

    def _node_class(self, name: str, table: Any) -> type[Node] | None:
        """The node class the table's ``type`` names; None after a problem (bad name, no table,
        no or unknown type)."""
        p = self.problems
        key: Key = ("nodes", name)
        if not NAME.match(name):
            p.add(
                "NG103",
                key,
                f"node name `{name}` must be snake_case (a-z, 0-9, _; starting with a letter)",
                value=name,
                at_value=False,
            )
        if not isinstance(table, dict):
            p.add(
                "NG103",
                key,
                f"node `{name}` must be a table with a `type`",
                value=table,
                hint=f'write [nodes.{name}] then type = "..."',
            )
            return None
        type_name = table.get("type")
        if type_name is None:
            p.add(
                "NG110",
                key,
                f"node `{name}` has no `type`",
                at_value=False,
                hint=f'add type = "namespace.kind"; `neuralgraph nodes` lists the '
                f"{len(self.registry.node_types)} installed types",
            )
            return None
        if not isinstance(type_name, str):
            p.add("NG112", key + ("type",), f"`type` must be a string, not {_describe(type_name)}", value=type_name)
            return None
        if type_name not in self.registry.node_types:
            hint = did_you_mean(type_name, self.registry.node_types) or ""
            if not hint.startswith("did you mean"):  # nothing close: a list of a dozen types helps no one
                hint = (
                    f"node types come only from installed plugins; `neuralgraph nodes` lists the "
                    f"{len(self.registry.node_types)} installed"
                )
            failed = [f"{f.plugin}: {f.error}" for f in self.registry.failures]
            if failed:  # the type may belong to a plugin that did not load
                hint += "; plugins that failed to load: " + "; ".join(failed)
            p.add("NG110", key + ("type",), f"unknown node type `{type_name}`", value=type_name, hint=hint)
            return None
        return self.registry.node_class(type_name)

    def _params(
        self, key: Key, cls: type[Node], table: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]] | None:
        """``(parameters coerced, other keys, path parameters resolved)``; None after a problem."""
        p = self.problems
        params: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        files: dict[str, str] = {}  # path parameters: name -> resolved path
        ok = True
        for pname, value in table.items():
            if pname == "type":
                continue
            decl = cls.params().get(pname)
            if decl is None:
                rest[pname] = value
                continue
            try:
                params[pname] = decl.coerce(value)
            except ValueError as exc:
                ok = False
                code = "NG113" if isinstance(exc, ParamRangeError) else "NG112"
                p.add(code, key + (pname,), f"{_describe(value)} {exc}", value=value, hint=f"valid: {decl.describe()}")
                continue
            if decl.path and params[pname] != "":  # "" means "no file" (e.g. a built-in table)
                resolved = self._file(key + (pname,), params[pname])
                if resolved is None:
                    ok = False
                else:
                    params[pname] = files[pname] = str(resolved)
        if not ok:
            return None
        return params, rest, files

    def _construct(
        self, name: str, table: dict[str, Any], cls: type[Node], params: dict[str, Any], files: dict[str, str]
    ) -> Node | None:
        """``cls(**params)``; None after a problem naming the parameter the constructor refused."""
        p = self.problems
        key: Key = ("nodes", name)
        type_name = table["type"]
        try:
            with model_budget(self.limits.memory_budget_bytes):  # models are probed against the patch's budget
                node = cls(**params)
        except (TypeError, ValueError) as exc:
            message = str(exc)
            for pname, resolved in files.items():  # the path as the user wrote it, not where it resolved
                message = message.replace(resolved, table[pname])
            pname = getattr(exc, "param", None)
            if pname in table:  # a table parameter may point at a key inside it (subkey)
                p.add(
                    "NG117",
                    key + (pname, *getattr(exc, "subkey", ())),
                    f"{type_name}: {message}",
                    value=table[pname],
                    hint=getattr(exc, "hint", None),
                )
            else:
                p.add("NG117", key, f"{type_name}: {message}", at_value=False)
            return None
        except Exception as exc:  # a plugin's constructor must not crash the loader
            p.add("NG117", key, f"{type_name} failed to build: {exc!r}", at_value=False)
            return None
        return node

    def _file(self, key: Key, text: str) -> Path | None:
        """The file a path parameter names, resolved against the patch's folder; None after a
        problem (NG118 outside the folder, NG116 missing).

        A shared patch must not read arbitrary files: after ``..`` and symlinks are resolved the
        file must lie inside the patch's folder, and absolute paths count as outside, unless the
        user allows it (``allow_outside_paths``). The folder is not probed outside that root.
        """
        p = self.problems
        root = self.directory.resolve()
        try:
            given = Path(text)
            resolved = (root / given).resolve()
        except (OSError, ValueError) as exc:  # a NUL byte, a symlink loop
            p.add("NG116", key, f"file {text!r} cannot be resolved: {exc}", value=text)
            return None
        if not self.limits.allow_outside_paths:
            outside = given.is_absolute() or (resolved != root and root not in resolved.parents)
            if outside:
                what = (
                    "is an absolute path"
                    if given.is_absolute()
                    else f"leads outside the patch's folder (to {display_path(resolved)})"
                )
                p.add(
                    "NG118",
                    key,
                    f"file {text!r} {what}; a patch may only name files inside {display_path(root)}",
                    value=text,
                    hint="a shared patch must not read arbitrary files: copy the file next to the patch, "
                    "or allow it on purpose: --allow-outside-paths, "
                    "allow_outside_paths = true in [limits] of config.toml, "
                    "NEURALGRAPH_ALLOW_OUTSIDE_PATHS=1, or load_patch(..., allow_outside=True)",
                )
                return None
        if not resolved.exists():
            p.add(
                "NG116",
                key,
                f"file {text!r} does not exist",
                value=text,
                hint=f"paths are relative to the patch file; looked for {display_path(resolved)}",
            )
            return None
        if resolved.is_dir():
            p.add(
                "NG116",
                key,
                f"{text!r} is a directory, not a file",
                value=text,
                hint=f"name the file inside {display_path(resolved)}",
            )
            return None
        return resolved

    def _node_inputs(self, name: str, node: Node, params: dict[str, Any], rest: dict[str, Any]) -> NodeSpec:
        p = self.problems
        key: Key = ("nodes", name)
        decls = node.inputs()
        inputs: dict[str, InputSpec] = {}
        for pattern, value in rest.items():
            if "*" in pattern:
                for iname, expanded in self._expand_pattern(key, node, pattern, value, rest):
                    spec = self._input(key + (pattern,), decls[iname], expanded)
                    if spec is not None:
                        inputs[iname] = spec
        for iname, value in rest.items():
            if "*" in iname:
                continue
            decl = decls.get(iname)
            if decl is None:
                valid = set(decls) | set(node.params()) | {"type"}
                p.add(
                    "NG111",
                    key + (iname,),
                    f"`{node.type_name}` has no parameter or input `{iname}`",
                    value=value,
                    hint=did_you_mean(iname, valid),
                    at_value=False,
                )
                continue
            spec = self._input(key + (iname,), decl, value)
            if spec is not None:
                inputs[iname] = spec
        return NodeSpec(
            name=name,
            type=node.type_name or type(node).__name__,
            params=params,
            inputs=inputs,
            loc=p.loc(key, value=False),
        )

    def _expand_pattern(
        self, key: Key, node: Node, pattern: str, value: Any, explicit: Mapping[str, Any]
    ) -> list[tuple[str, Any]]:
        """``"amp_*" = "decoder.harm_*"``: one connection per input the pattern matches, the text
        ``*`` stood for put in place of each ``*`` in the value's connections. Inputs named
        explicitly in the same node keep their own value."""
        p = self.problems
        if pattern.count("*") != 1:
            p.add(
                "NG115",
                key + (pattern,),
                f"input pattern `{pattern}` must have exactly one `*`",
                value=value,
                at_value=False,
                hint='e.g. "amp_*" = "decoder.harm_*"',
            )
            return []
        head, tail = pattern.split("*")
        matches = [
            (name[len(head) : len(name) - len(tail)], name)
            for name, decl in node.inputs().items()
            if len(name) > len(head) + len(tail)
            and name.startswith(head)
            and name.endswith(tail)
            and name not in explicit
        ]
        if not matches:
            p.add(
                "NG111",
                key + (pattern,),
                f"`{node.type_name}` has no input matching `{pattern}`",
                value=value,
                at_value=False,
                hint="inputs: " + ", ".join(node.inputs()) if node.inputs() else None,
            )
            return []

        def fill(term: Any, text: str) -> Any:
            if isinstance(term, str):
                return term.replace("*", text)
            if isinstance(term, list):
                return [fill(t, text) for t in term]
            if isinstance(term, dict):
                return {k: fill(v, text) if k == "from" else v for k, v in term.items()}
            return term

        return [(name, fill(value, text)) for text, name in matches]

    def _input(self, key: Key, decl: Input, value: Any) -> InputSpec | None:
        terms = value if isinstance(value, list) else [value]
        constant = 0.0
        sources: list[Source] = []
        ok = True
        for i, term in enumerate(terms):
            tkey = key + (i,) if isinstance(value, list) else key
            if isinstance(term, bool):
                ok = False
                self.problems.add(
                    "NG112", tkey, 'an input takes a number, "node.port" or a mapping, not true/false', value=term
                )
            elif isinstance(term, (int, float)):
                if decl.rate is Rate.EVENTS:
                    ok = False
                    self.problems.add("NG112", tkey, "an events input takes a connection, not a number", value=term)
                    continue
                if isinstance(term, float) and not math.isfinite(term):
                    ok = False  # already reported as NG114
                    continue
                if isinstance(term, int) and abs(term) > FLOAT32_MAX:  # float(term) could even overflow
                    ok = False
                    self.problems.add(
                        "NG113",
                        tkey,
                        f"{_describe(term)} is too large for a signal (float32)",
                        value=term,
                        hint=f"valid: {_range_text(decl)}",
                    )
                    continue
                if not isinstance(value, list):
                    reason = decl.check(float(term))
                    if reason:
                        ok = False
                        self.problems.add(
                            "NG113", tkey, f"{term!r} {reason}", value=term, hint=f"valid: {_range_text(decl)}"
                        )
                        continue
                constant += float(term)
            elif isinstance(term, (str, dict)):  # "node.port", or { from = ..., range = ... }
                src = self._source_text(tkey, term) if isinstance(term, str) else self._mapping(tkey, term)
                if src is None:
                    ok = False
                else:
                    sources.append(src)
            else:
                ok = False
                self.problems.add(
                    "NG112",
                    tkey,
                    f'an input takes a number, "node.port" or a mapping, not {_describe(term)}',
                    value=term,
                )
        if not ok:
            return None
        return InputSpec(constant=constant, sources=tuple(sources), loc=self.problems.loc(key))

    def _source_text(self, key: Key, text: str) -> Source | None:
        m = SOURCE.match(text.strip())
        if not m:
            self.problems.add(
                "NG115", key, f'"{text}" is not a connection', value=text, hint='write "node" or "node.port"'
            )
            return None
        return Source(node=m[1], port=m[2], loc=self.problems.loc(key))

    def _mapping(self, key: Key, table: dict[str, Any]) -> Source | None:
        p = self.problems
        ok = True
        for k in table:
            if k not in MAPPING_KEYS:
                ok = False
                p.add(
                    "NG115",
                    key + (k,),
                    f"unknown key `{k}` in a mapping",
                    value=table[k],
                    hint=did_you_mean(k, MAPPING_KEYS),
                    at_value=False,
                )
        src_text = table.get("from")
        if not isinstance(src_text, str):
            p.add(
                "NG115",
                key,
                'a mapping needs `from = "node.port"`',
                value=table,
                hint='e.g. { from = "env", range = [200.0, 4000.0], curve = "exp" }',
            )
            return None
        src = self._source_text(key + ("from",), src_text)
        rng = table.get("range")
        if rng is not None:
            if (
                not isinstance(rng, list)
                or len(rng) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)
            ):
                ok = False
                p.add("NG115", key + ("range",), "`range` must be two numbers [lo, hi]", value=rng)
                rng = None
            elif not all(math.isfinite(float(v)) for v in rng if isinstance(v, float)):
                ok = False  # already reported as NG114
                rng = None
            else:
                rng = (float(rng[0]), float(rng[1]))
        curve = table.get("curve", "lin")
        if curve not in ("lin", "exp"):
            ok = False
            p.add(
                "NG115", key + ("curve",), f"unknown curve {_describe(curve)}", value=curve, hint='valid: "lin", "exp"'
            )
        elif curve == "exp" and rng is not None and (rng[0] <= 0 or rng[1] <= 0):
            ok = False
            p.add(
                "NG113",
                key + ("range",),
                "an exp curve needs a range above zero",
                value=list(rng),
                hint='use curve = "lin" or positive bounds',
            )
        feedback = table.get("feedback", False)
        if not isinstance(feedback, bool):
            ok = False
            p.add("NG112", key + ("feedback",), "`feedback` must be true or false", value=feedback)
        if src is None or not ok:
            return None
        return Source(node=src.node, port=src.port, range=rng, curve=curve, feedback=feedback, loc=src.loc)


def _range_text(decl: Input) -> str:
    lo = "" if decl.min is None else f"{decl.min:g}"
    hi = "" if decl.max is None else f"{decl.max:g}"
    unit = f" {decl.unit}" if decl.unit else ""
    return f'a number in [{lo}, {hi}]{unit}, "node.port", or a mapping'


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any], problems: Problems) -> None:
    """Set ``{"node.param": value}`` pairs in the parsed data (as ``--set`` does)."""
    nodes = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    for target, value in overrides.items():
        node, _, param = target.partition(".")
        if node not in nodes or not isinstance(nodes[node], dict):
            problems.items.append(
                Problem(
                    "NG130",
                    f"--set {target}: no node `{node}` in the patch",
                    "<--set>",
                    path=target,
                    value=value,
                    hint=did_you_mean(node, nodes),
                )
            )
            continue
        nodes[node][param] = value
        problems.overridden.add(("nodes", node, param))
