"""``neuralgraph batch JOB.toml -o OUT_DIR``: the subcommand's arguments and what it does."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    """Add ``batch`` to the ``neuralgraph`` command's subparsers."""
    p = sub.add_parser(
        "batch",
        help="render a data set: a patch over a parameter grid or random draws "
        "and MIDI files, on local processes or a Ray cluster",
    )
    p.add_argument("job", metavar="JOB.toml", help="the job file (docs/batch.md)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT_DIR",
        help="folder for the renders and metadata.jsonl; re-running resumes",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: the CPU count), or Ray actors (default: the cluster's CPUs)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on a running Ray cluster: auto, or HOST:PORT of its head (pip install 'neuralgraph[ray]')",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="the folder holds another job's renders: delete them and start again"
    )
    p.add_argument("--check", action="store_true", help="check the job and print its size; render nothing")
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from neuralgraph._errors import display_path
    from neuralgraph._tools.batch.job import load_job
    from neuralgraph._tools.batch.run import run_batch

    if args.workers is not None and args.workers < 1:
        print("neuralgraph: --workers must be at least 1", file=sys.stderr)
        return 2
    job = load_job(args.job)
    grid = " × ".join(str(len(a.values)) for a in job.grid) or "1"
    print(
        f"{display_path(args.job)}: {job.total} renders (grid {grid}, {job.samples} draw"
        f"{'s' if job.samples != 1 else ''} per point, {job.midi_count} per draw from MIDI), "
        f"{job.sample_rate} Hz, {job.audio}"
    )
    if args.check:
        return 0
    summary = run_batch(job, args.output, workers=args.workers, ray=args.ray, overwrite=args.overwrite)
    print(summary.line(display_path(args.output)))
    return 0
