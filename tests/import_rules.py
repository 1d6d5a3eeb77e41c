"""The import rules of the house, checked from the source (``ast``; nothing is imported).

- Built-in plugins and examples import only the public faces (:data:`FACES`) from neuralgraph.
- A core module imports only its own stage or earlier ones (:data:`STAGES`, in pipeline order),
  never a face; the faces sit on top and may import any stage.
- No import cycles between core modules (imports inside functions count: they still tie the
  modules together).

``violations(root)`` returns one line per broken rule, naming the file, the line and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

#: The public faces: what a host program, a plugin, or a plugin's tests may import.
FACES = ("neuralgraph", "neuralgraph.plugin", "neuralgraph.testing")
#: The private stages, earliest first. A module may import its own stage or an earlier one.
STAGES = ("_errors", "_nodes", "_plugins", "_io", "_patch", "_compile", "_runtime", "_tools")
#: Folders whose modules are held to the faces-only rule.
CLIENT_DIRS = ("plugins", "examples")


def module_name(path: Path, root: Path) -> str:
    """``neuralgraph._patch.graph`` for ``root/neuralgraph/_patch/graph.py``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str, known: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import in ``path`` (relative ones resolved).

    ``from package import name`` yields ``package.name`` when that is one of the ``known``
    modules (``from neuralgraph import _patch``), else ``package``.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    seen: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                seen.add((node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                seen.add((node.lineno, full if full in known else base))
    yield from sorted(seen)


def _stage(module: str) -> str | None:
    """The stage a ``neuralgraph`` module belongs to, None for a face."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    return None


def _core_target(imported: str, known: set[str]) -> str | None:
    """The core module an import refers to (``from pkg import name`` may name a function)."""
    while imported:
        if imported in known:
            return imported
        imported = imported.rpartition(".")[0]
    return None


def violations(root: Path, client_dirs: tuple[str, ...] = CLIENT_DIRS) -> list[str]:
    """Every broken import rule under ``root`` (a checkout), as ``file:line: message``."""
    problems: list[str] = []
    core = {module_name(p, root): p for p in sorted((root / "neuralgraph").rglob("*.py"))}
    for folder in client_dirs:
        for path in sorted((root / folder).rglob("*.py")):
            for line, imported in imports(path, module_name(path, root), set(core)):
                if imported.split(".")[0] == "neuralgraph" and imported not in FACES:
                    problems.append(
                        f"{path.relative_to(root)}:{line}: imports {imported}; plugins and "
                        f"examples may import only {', '.join(FACES)}"
                    )
    graph = nx.DiGraph()
    for module, path in core.items():
        graph.add_node(module)
        own = _stage(module)
        for line, imported in imports(path, module, set(core)):
            if imported.split(".")[0] != "neuralgraph":
                continue
            target = _core_target(imported, set(core))
            if target is None or target == module:
                continue
            if target != "neuralgraph" and module.startswith(target + "."):
                continue  # a stage's own __init__ (its docstring) is no dependency
            graph.add_edge(module, target, line=line, path=path)
            theirs = _stage(target)
            if own is None:
                continue  # a face may import any stage
            where = f"{path.relative_to(root)}:{line}: imports {imported}"
            if theirs is None:
                problems.append(f"{where}; a stage ({own}) must not import a public face")
            elif STAGES.index(theirs) > STAGES.index(own):
                problems.append(
                    f"{where}; stage {own} may import only itself and earlier stages "
                    f"({', '.join(STAGES[: STAGES.index(own) + 1])}), not {theirs}"
                )
    for cycle in nx.simple_cycles(graph):
        if len(cycle) < 2:
            continue
        hops = []
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            edge = graph.edges[a, b]
            hops.append(f"{edge['path'].relative_to(root)}:{edge['line']} imports {b}")
        problems.append("import cycle: " + "; ".join(hops))
    return problems
