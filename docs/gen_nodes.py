"""The generated reference pages, and the MkDocs hooks that put them in the site.

The node reference is made from the plugins' own metadata (docstrings, ports, parameters, units,
ranges, defaults) and the hook reference from ``neuralgraph/_plugins/hookspecs.py``, each time the site is
built, so it cannot drift from the code. ``mkdocs.yml`` loads this file with ``hooks:``.

A copy of each page is kept in ``docs/reference/`` so that links resolve in the source tree
too; ``tests/test_docs_site.py`` fails when a copy is stale. Refresh them with::

    python docs/gen_nodes.py nodes > docs/reference/nodes.md
    python docs/gen_nodes.py cli > docs/reference/cli.md
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuralgraph._plugins import hookspecs
from neuralgraph._plugins.registry import ENTRY_POINT_GROUP, NodeType, Registry
from neuralgraph.plugin import Input, Node, Output, Param, Rate

#: Entry points whose module lives here are the built-in plugins the reference documents.
BUILTIN_PACKAGE = "neuralgraph_plugins."
#: Where the generated pages appear in the site (relative to docs/).
NODES_PAGE = "reference/nodes.md"
CLI_PAGE = "reference/cli.md"

log = logging.getLogger("mkdocs.hooks.gen_nodes")


# ---- data --------------------------------------------------------------------------------------
def builtin_plugins() -> dict[str, str]:
    """The built-in plugins' entry-point names and modules (third-party ones are left out)."""
    return {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.value.startswith(BUILTIN_PACKAGE)
    }


def builtin_registry() -> Registry:
    """A registry of the built-in plugins only, so the reference does not depend on what else is installed."""
    return Registry.load(allow=builtin_plugins(), block=())


def hook_specs() -> dict[str, Any]:
    """The hook specifications plugins implement, by name."""
    return {name: fn for name, fn in vars(hookspecs).items() if name.startswith("ng_") and callable(fn)}


def anchor(type_name: str) -> str:
    """The HTML id of a node type's section: ``osc.saw`` -> ``osc-saw``."""
    return type_name.replace(".", "-").replace("_", "-")


# ---- formatting --------------------------------------------------------------------------------
def _cell(text: object) -> str:
    """Text made safe for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:g}"


def _rst(text: str) -> str:
    """Sphinx roles (``:mod:`x` ``, ``:class:`~a.B` ``) as plain code spans."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    return f"{_num(lo) or '−∞'} … {_num(hi) or '∞'}"


def _doc(cls: type) -> tuple[str, str]:
    """A class docstring's first line and the rest (dedented)."""
    doc = _rst(inspect.cleandoc(cls.__doc__ or ""))
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip()


def _overrides(cls: type[Node], method: str) -> bool:
    return getattr(cls, method) is not getattr(Node, method)


def _inputs_table(inputs: Mapping[str, Input]) -> list[str]:
    lines = ["| input | rate | default | range | unit | description |", "|---|---|---|---|---|---|"]
    for name, d in inputs.items():
        default = "engine MIDI" if d.source == "midi" else ("—" if d.rate is Rate.EVENTS else _num(d.init))
        lines.append(
            f"| `{name}` | {d.rate.value} | {default} | {_cell(_range(d.min, d.max))} | {_cell(d.unit)} "
            f"| {_cell(d.doc)} |"
        )
    return lines


def _outputs_table(outputs: Mapping[str, Output]) -> list[str]:
    lines = ["| output | rate | span | unit | description |", "|---|---|---|---|---|"]
    for name, d in outputs.items():
        span = "—" if d.rate is Rate.EVENTS else f"{d.span[0]:g} … {d.span[1]:g}"
        lines.append(f"| `{name}` | {d.rate.value} | {span} | {_cell(d.unit)} | {_cell(d.doc)} |")
    return lines


def _params_table(params: Mapping[str, Param]) -> list[str]:
    lines = [
        "| parameter | type | default | range or choices | unit | live | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in params.items():
        kind = {
            float: "number",
            int: "integer",
            str: "file" if d.path else "string",
            bool: "boolean",
            dict: "table",
        }.get(d.kind, "")
        default = (
            f"`{d.init!r}`"
            if d.kind is str
            else (str(d.init).lower() if d.kind is bool else "empty" if d.kind is dict else _num(d.init))
        )
        allowed = ", ".join(f"`{c}`" for c in d.choices) if d.choices else _range(d.min, d.max)
        live = "yes" if d.live else "no"
        lines.append(
            f"| `{name}` | {kind} | {default} | {_cell(allowed)} | {_cell(d.unit)} | {live} | {_cell(d.doc)} |"
        )
    return lines


def node_section(node_type: NodeType) -> list[str]:
    """The reference section of one node type."""
    cls = node_type.cls
    node = cls()
    first, rest = _doc(cls)
    lines = [f"### `{node_type.name}` {{#{anchor(node_type.name)}}}", "", first, ""]
    if rest:
        lines += [rest, ""]
    facts = [f"plugin `{node_type.plugin}`", f"class `{cls.__module__}.{cls.__qualname__}`"]
    if cls.bypass != "silence":
        facts.append(f"bypass `{cls.bypass}` (a fault passes its input through)")
    if cls.role:
        facts.append(f"role `{cls.role}`")
    lines += ["<small>" + " · ".join(facts) + "</small>", ""]
    if _overrides(cls, "inputs") or _overrides(cls, "outputs"):
        shown = (
            ", ".join(
                f"`{k} = {v!r}`" for k, v in ((k, getattr(node, k)) for k in cls.params()) if not cls.params()[k].path
            )
            or "the defaults"
        )
        note = (
            f'!!! note "Ports depend on parameters"\n    The ports below are those of the default '
            f"parameters ({shown}); other values give other ports."
        )
        lines += [note, ""]
    if node.inputs():
        lines += _inputs_table(node.inputs()) + [""]
    if node.outputs():
        lines += _outputs_table(node.outputs()) + [""]
    if cls.params():
        lines += _params_table(cls.params()) + [""]
    return lines


def nodes_page(registry: Registry | None = None) -> str:
    """The node and hook reference as Markdown."""
    registry = registry or builtin_registry()
    by_plugin: dict[str, list[NodeType]] = {}
    for name in sorted(registry.node_types):
        nt = registry.node_types[name]
        by_plugin.setdefault(nt.plugin, []).append(nt)
    lines = [
        "# Node reference",
        "",
        "Every node type that ships with neuralgraph, generated from the plugins' own metadata each time",
        "this site is built (`docs/gen_nodes.py`), so it always matches the code. `neuralgraph nodes TYPE`",
        "prints the same facts for any installed type, third-party ones included.",
        "",
        "Inputs are signals: in a patch each takes a constant (its *default* when left out), a",
        "connection, a mapping or a list (see [the patch format](../patch-format.md)). *Range* bounds",
        "constants given in a patch or through `engine.set`. Parameters configure the node; *live*",
        'ones can change while the engine runs (`engine.set("node.param", value)`, `--set`), the others',
        "shape buffers or ports and need the patch reloaded. *Span* is the range an output normally",
        "covers, which a mapping's `range` is mapped from.",
        "",
        "| type | plugin | summary |",
        "|---|---|---|",
    ]
    for name in sorted(registry.node_types):
        nt = registry.node_types[name]
        lines.append(f"| [`{name}`](#{anchor(name)}) | {nt.plugin} | {_cell(_doc(nt.cls)[0])} |")
    lines.append("")
    for plugin in sorted(by_plugin):
        module = sys.modules.get(by_plugin[plugin][0].cls.__module__)
        summary = _rst(inspect.cleandoc(module.__doc__ or "").partition("\n")[0]) if module else ""
        lines += [f"## {plugin}", ""]
        if summary:
            lines += [summary, ""]
        for nt in by_plugin[plugin]:
            lines += node_section(nt)
    lines += hooks_section(registry)
    return "\n".join(lines).rstrip() + "\n"


def hooks_section(registry: Registry) -> list[str]:
    """The plugin hooks (from ``neuralgraph/_plugins/hookspecs.py``) and the backends registered through them."""
    lines = [
        "## Plugin hooks",
        "",
        "A plugin implements these pluggy hooks (marker `neuralgraph.plugin.hookimpl`) in a module listed",
        f"under `[project.entry-points.{ENTRY_POINT_GROUP}]`; they run on the control thread, never in the",
        "audio thread. [Writing a node plugin](../plugins.md) walks through one.",
        "",
    ]
    for name, fn in hook_specs().items():
        args = ", ".join(inspect.signature(fn).parameters)
        lines += [f"### `{name}({args})` {{#{anchor(name)}}}", "", _rst(inspect.cleandoc(fn.__doc__ or "")), ""]
    if registry.backends:
        lines += ["### Built-in backends", "", "| backend | plugin | description |", "|---|---|---|"]
        for bname in sorted(registry.backends):
            bt = registry.backends[bname]
            module = sys.modules.get(getattr(bt.factory, "__module__", ""))
            doc = inspect.cleandoc(module.__doc__ or "").partition("\n")[0] if module else ""
            lines.append(f"| `{bname}` | {bt.plugin} | {_cell(_rst(doc))} |")
        lines.append("")
    return lines


def cli_page() -> str:
    """Every ``neuralgraph`` command's ``--help``, as Markdown."""
    import argparse

    from neuralgraph._tools.cli import build_parser

    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "`neuralgraph COMMAND --help` prints these; this page is generated from the same",
        "parser when the site is built.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        lines += [f"## `neuralgraph {name}`", "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


# ---- MkDocs hooks ------------------------------------------------------------------------------
def _prune_nav(items: list[Any], docs_dir: Path, generated: set[str]) -> list[Any]:
    """The nav without entries whose page is neither in docs/ nor generated (pages still being written)."""
    kept: list[Any] = []
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            children = _prune_nav(value, docs_dir, generated)
            if children:
                kept.append({next(iter(item)): children})
        elif (
            isinstance(value, str)
            and value.endswith(".md")
            and "://" not in value
            and value not in generated
            and not (docs_dir / value).is_file()
        ):
            log.info("nav: %s is not written yet; left out of the navigation", value)
        else:
            kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    """Leave pages that do not exist yet out of the nav, so the strict build does not fail on them."""
    if config.nav:
        config.nav = _prune_nav(config.nav, Path(config.docs_dir), {NODES_PAGE, CLI_PAGE})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for page, content in ((NODES_PAGE, nodes_page()), (CLI_PAGE, cli_page())):
        committed = files.get_file_from_path(page)
        if committed is not None:  # the copy kept in docs/ for reading in the source tree
            files.remove(committed)
        files.append(File.generated(config, page, content=content))
    return files


if __name__ == "__main__":
    page = sys.argv[1] if len(sys.argv) > 1 else "nodes"
    if page not in ("nodes", "cli"):
        raise SystemExit("usage: python docs/gen_nodes.py [nodes|cli]")
    sys.stdout.write(nodes_page() if page == "nodes" else cli_page())
