"""Batch-render a patch over a grid of parameter values: a folder of WAV files and a CSV of the settings.

    python examples/batch_render.py graphs/saw_chord.toml -o dataset \\
        --grid root.freq=110,220,440 --grid chord.level=0.5,1.0 --seconds 2

writes ``dataset/0000.wav`` … ``dataset/0005.wav`` (every combination, the last ``--grid``
changing fastest) and ``dataset/settings.csv`` with one row per file: the file name, then one
column per gridded setting. This is the usual way to make a data set to train or test a model
on. Any ``node.param`` or unconnected ``node.input`` the ``--set`` option accepts can be
gridded; each value is TOML (``0.5``, ``"square"``, ``true``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path
from typing import Any

import soundfile

import neuralgraph as ng
from neuralgraph import parse_override


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["osc.freq=110,220"]`` -> ``{"osc.freq": [110, 220]}``, each value parsed as TOML."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, _, values = item.partition("=")
        if not values:
            raise SystemExit(f"--grid {item}: expected NODE.PARAM=V1,V2,...")
        try:
            grid[key.strip()] = [parse_override(f"{key}={value.strip()}")[1] for value in values.split(",")]
        except ValueError as exc:
            raise SystemExit(f"--grid {item}: {exc}") from None
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patch", help="the patch file")
    parser.add_argument("-o", "--output", default="renders", help="folder to write (renders)")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NODE.PARAM=V1,V2,...",
        help="values to try for one setting; repeatable (the grid is every combination)",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each render (2)")
    parser.add_argument("--sample-rate", type=int, help="sample rate (default: the patch's)")
    args = parser.parse_args(argv)

    grid = parse_grid(args.grid)
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    combos = list(itertools.product(*grid.values()))
    with open(folder / "settings.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", *grid])
        for index, values in enumerate(combos):
            settings = dict(zip(grid, values))
            try:
                patch = ng.load_patch(args.patch, overrides=settings)
            except ng.PatchError as exc:
                print(f"{settings}:\n{exc}", file=sys.stderr)
                return 2
            engine = ng.Engine(patch, sample_rate=args.sample_rate)
            audio = engine.render(args.seconds)
            name = f"{index:04d}.wav"
            soundfile.write(folder / name, audio.T, engine.sample_rate)
            writer.writerow([name, *values])
            print(f"[{index + 1}/{len(combos)}] {name}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(f"wrote {len(combos)} files and settings.csv to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
