"""``neuralgraph model inspect MODEL.onnx [--patch FILE]``: signature, opset, size, guessed mapping
and a starter patch.

The inspector belongs to the ``onnx.model`` plugin; the core never imports a plugin, so the
command reaches it through the registry: the class registered as ``onnx.model`` offers it as
``inspector()`` (a module with ``inspect_model``, ``format_report`` and ``patch_text``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from neuralgraph._errors import display_path
from neuralgraph._plugins.registry import default_registry


def add_parser(sub: Any) -> None:
    """Register ``model inspect`` on the main parser's subcommands."""
    p = sub.add_parser("model", help="look inside an ONNX model: signature and the mapping onnx.model needs")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    q = model_sub.add_parser("inspect", help="print inputs, outputs, opset, size and guessed roles")
    q.add_argument("model", metavar="MODEL.onnx")
    q.add_argument(
        "--patch",
        metavar="FILE.toml",
        help="also write a runnable io.input -> model -> io.output patch with the guessed mapping",
    )
    q.set_defaults(func=cmd_model_inspect)


def cmd_model_inspect(args: argparse.Namespace) -> int:
    registry = default_registry()
    model_type = registry.node_types.get("onnx.model")
    inspector = getattr(model_type.cls, "inspector", None) if model_type is not None else None
    if inspector is None:
        print(
            "neuralgraph: model inspect needs the onnx.model node type, which no enabled plugin provides",
            file=sys.stderr,
        )
        return 1
    tools = inspector()
    format_report, patch_text = tools.format_report, tools.patch_text
    try:
        report = tools.inspect_model(args.model)
    except (OSError, ValueError) as exc:
        print(f"neuralgraph: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.patch:
        out = Path(args.patch)
        text = patch_text(report, out)
        try:
            out.write_text(text)
        except OSError as exc:
            print(f"neuralgraph: cannot write {display_path(out)}: {exc}", file=sys.stderr)
            return 1
        print(
            f"wrote {display_path(out)}: io.input -> {Path(args.model).name} -> io.output, "
            f"{text.count('# guess:')} guesses to check"
        )
        if '"../' in text or 'model = "..' in text:
            print(
                "neuralgraph: note: the model is outside the patch's folder; copy it beside the patch "
                "or render with --allow-outside-paths",
                file=sys.stderr,
            )
    return 0
