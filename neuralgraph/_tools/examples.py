"""``neuralgraph examples``: the shipped example patches, listed and copied out with their files.

The patches, models and tables live in the ``neuralgraph_examples`` package (``graphs/`` in the
source tree), so an installed wheel has them as well as a checkout.
"""

from __future__ import annotations

import argparse
import shutil
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError, did_you_mean

PACKAGE = "neuralgraph_examples"


def examples_dir() -> Path:
    """The folder of the shipped example patches (inside the installed package)."""
    return Path(str(resources.files(PACKAGE)))


def examples() -> dict[str, Path]:
    """Every shipped patch by name (``neural_flute``; ``bench/p1_saw_filter`` for the load tests)."""
    root = examples_dir()
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.toml"))}


def summary(path: Path) -> str:
    """The patch's ``name``, else its first comment line."""
    text = path.read_text(encoding="utf-8")
    name = tomllib.loads(text).get("name")
    if isinstance(name, str) and name:
        return name
    first = next((line for line in text.splitlines() if line.startswith("#")), "#")
    return first.lstrip("# ").strip()


def copy_example(name: str, dest: Path) -> list[Path]:
    """Copy the patch ``name`` and every file it reads (models, tables) into ``dest``, keeping
    their places relative to the patch; returns the files written, the patch first."""
    found = examples()
    if name not in found:
        hint = did_you_mean(name, found)
        raise NeuralgraphError(
            f"no shipped example {name!r}" + (f" ({hint})" if hint else "") + "; `neuralgraph examples` lists them"
        )
    from neuralgraph._patch.patch import load_patch

    source = found[name]
    patch = load_patch(source)
    wanted = [source]
    for node in patch.spec.nodes.values():
        for pname, value in node.params.items():
            if patch.registry.node_class(node.type).params()[pname].path and value:
                wanted.append(Path(value))
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in wanted:
        target = dest / path.relative_to(source.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    return written


def cmd_examples(args: argparse.Namespace) -> int:
    if args.name is None:
        found = examples()
        width = max(len(n) for n in found)
        for name, path in found.items():
            print(f"{name:<{width}}  {summary(path)}")
        return 0
    written = copy_example(args.name, Path(args.dest))
    for path in written:
        print(path)
    return 0


def add_parser(sub: Any) -> None:
    """The ``examples`` subcommand, on the command line's subparsers."""
    p = sub.add_parser("examples", help="list the shipped example patches, or copy one (with its models) out")
    p.add_argument("name", nargs="?", help="the example to copy (default: list them)")
    p.add_argument("dest", nargs="?", default=".", help="folder to copy it into (default: the current folder)")
    p.set_defaults(func=cmd_examples)
