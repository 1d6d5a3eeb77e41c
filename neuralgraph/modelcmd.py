"""``neuralgraph model inspect MODEL.onnx [--patch FILE]``: the command line face of
:mod:`neuralgraph_plugins.onnx_inspect` (signature, opset, size, guessed mapping, starter patch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import display_path


def add_parser(sub: Any) -> None:
    """Register ``model inspect`` on the main parser's subcommands."""
    p = sub.add_parser("model", help="look inside an ONNX model: signature and the mapping onnx.model needs")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    q = model_sub.add_parser("inspect", help="print inputs, outputs, opset, size and guessed roles")
    q.add_argument("model", metavar="MODEL.onnx")
    q.add_argument("--patch", metavar="FILE.toml",
                   help="also write a runnable io.input -> model -> io.output patch with the guessed mapping")
    q.set_defaults(func=cmd_model_inspect)


def cmd_model_inspect(args: argparse.Namespace) -> int:
    from neuralgraph_plugins.onnx_inspect import format_report, inspect_model, patch_text

    try:
        report = inspect_model(args.model)
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
        print(f"wrote {display_path(out)}: io.input -> {Path(args.model).name} -> io.output, "
              f"{text.count('# guess:')} guesses to check")
        if '"../' in text or 'model = "..' in text:
            print("neuralgraph: note: the model is outside the patch's folder; copy it beside the patch "
                  "or render with --allow-outside-paths", file=sys.stderr)
    return 0
