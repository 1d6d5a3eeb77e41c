"""The batch job file (TOML) to a checked :class:`~.spec.Job`; every mistake located by file and line.

::

    patch = "synth.toml"            # relative to the job file
    seconds = 2.0
    seed = 7
    samples = 4                     # random draws per grid point (default 1)
    [params]
    "osc.freq" = [220, 330, 440]    # a list: grid values (the grid is the product of all lists)
    "lp.cutoff" = { log_uniform = [200, 8000] }   # or uniform = [lo, hi], or choice = [...]
    [midi]
    files = "midi/*.mid"            # every render is repeated for each file; or notes × velocities
    [outputs]
    audio = "flac"                  # wav | flac
    taps = ["env.out"]              # ports saved as .npy beside the audio

Problems are collected and raised together as a :class:`~.spec.JobError` (a
:class:`~neuralgraph.PatchError`, so the command line prints them as it prints a patch's).
Parameter names and values are checked against the patch (:mod:`.checks`) before any render starts.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuralgraph._errors import PatchError, Problem, did_you_mean, display_path
from neuralgraph._patch.loader import Problems, parse_toml
from neuralgraph._tools.batch.spec import RANDOM_KINDS, Axis, Job, JobError, is_number

#: Job-file problem codes (docs/batch.md lists them); a TOML syntax error is NG100 as in a patch.
JOB_CODES: dict[str, str] = {
    "NG200": "an unknown key in the job file",
    "NG201": "a job value has the wrong type or is out of range",
    "NG202": "a file or pattern named by the job matches nothing or cannot be read",
    "NG203": "a [params] entry names no settable parameter or unconnected input of the patch",
    "NG204": "a [params] value is outside what the parameter or input accepts",
    "NG205": "a tap names no audio or control output of the patch",
    "NG206": "a required key is missing",
}

TOP_KEYS = {"patch", "seconds", "tail", "sample_rate", "block_size", "seed", "samples", "params", "midi", "outputs"}
MIDI_KEYS = {"files", "notes", "velocities", "hold"}
OUTPUT_KEYS = {"audio", "bits", "taps"}
BITS = {"wav": ("float", "16", "24", "32"), "flac": ("16", "24")}


class _Reader:
    """Reads one job table, turning every mistake into a located problem."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def unknown(self, table: Mapping[str, Any], allowed: set[str], prefix: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                self.problems.add(
                    "NG200", prefix + (key,), f"unknown key `{key}`", hint=did_you_mean(key, allowed), at_value=False
                )

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        prefix: tuple[str, ...],
        default: Any,
        *,
        integer: bool = False,
        lo: float | None = None,
        hi: float | None = None,
        above: float | None = None,
    ) -> Any:
        if key not in table:
            return default
        value = table[key]
        kind = "a whole number" if integer else "a number"
        ok = (isinstance(value, int) and not isinstance(value, bool)) if integer else is_number(value)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and (
            (lo is not None and value < lo) or (hi is not None and value > hi) or (above is not None and value <= above)
        ):
            ok = False
        if not ok:
            bounds = [
                f"> {above:g}" if above is not None else None,
                f">= {lo:g}" if lo is not None else None,
                f"<= {hi:g}" if hi is not None else None,
            ]
            shown = " and ".join(b for b in bounds if b)
            self.problems.add(
                "NG201", prefix + (key,), f"{value!r} is not {kind}" + (f" {shown}" if shown else ""), value=value
            )
            return default
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, prefix: tuple[str, ...], choices: tuple[str, ...], default: str
    ) -> str:
        value = table.get(key, default)
        if value not in choices:
            self.problems.add(
                "NG201", prefix + (key,), f"{value!r} is not one of {', '.join(map(repr, choices))}", value=value
            )
            return default
        return value

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problems.add("NG201", (key,), f"`{key}` must be a table ([{key}])", value=value)
            return {}
        return value


def load_job(path: str | Path) -> Job:
    """Read and check a job file against its patch; raises :class:`JobError` listing every problem."""
    from neuralgraph._patch.patch import load_patch, read_toml_text
    from neuralgraph._tools.batch.checks import check_ranges, check_taps, check_target

    file = Path(path)
    shown = display_path(file)
    data, positions = parse_toml(read_toml_text(file, shown, "job"), shown)
    problems = Problems(shown, positions)
    read = _Reader(problems)
    directory = file.resolve().parent
    read.unknown(data, TOP_KEYS, ())

    patch_path = _patch_path(data, directory, problems)
    seconds = read.number(data, "seconds", (), None, above=0.0, hi=3600.0)
    tail = read.number(data, "tail", (), 1.0, lo=0.0, hi=3600.0)
    seed = read.number(data, "seed", (), 0, integer=True, lo=0, hi=2**63 - 1)
    samples = read.number(data, "samples", (), 1, integer=True, lo=1, hi=10**9)
    rate = read.number(data, "sample_rate", (), None, integer=True, lo=8000, hi=384000)
    block = read.number(data, "block_size", (), None, integer=True, lo=1, hi=16384)
    midi_files, notes, velocities, hold = _midi_section(data, read, directory, seconds)
    audio, bits, taps = _outputs_section(data, read)
    params = read.table(data, "params")
    axes = [axis for name, value in params.items() if (axis := _axis(name, value, problems)) is not None]

    patch = None
    if patch_path is not None:
        try:
            patch = load_patch(patch_path)
        except PatchError as exc:  # the patch's own problems, located in the patch file
            problems.items.extend(exc.problems)
    job = None
    if patch is not None and patch_path is not None:
        axes = [check_target(axis, patch, problems) for axis in axes]
        check_taps(taps, patch, problems)
        job = Job(
            file=file.resolve(),
            patch=patch_path.resolve(),
            seconds=seconds,
            tail=tail,
            sample_rate=rate or patch.sample_rate,
            block_size=block or patch.block_size,
            seed=seed,
            samples=samples,
            axes=tuple(axes),
            midi_files=midi_files,
            notes=notes,
            velocities=velocities if notes else (),
            hold=hold,
            audio=audio,
            bits=bits,
            taps=tuple(taps),
        )
        check_ranges(job, patch, problems)
    if problems.items or job is None:  # the job's problems first, then the patch's
        raise JobError(sorted(problems.items, key=lambda p: (p.file != shown, p.line or 0, p.col or 0)))
    return job


def _patch_path(data: Mapping[str, Any], directory: Path, problems: Problems) -> Path | None:
    """The job's ``patch`` file, relative to the job file; None (with the problem) when unusable."""
    if "patch" not in data:
        problems.items.append(
            Problem(
                "NG206",
                "the job names no patch",
                problems.file,
                1,
                1,
                hint='add a line: patch = "synth.toml" (relative to the job file)',
            )
        )
        return None
    if not isinstance(data["patch"], str):
        problems.add("NG201", ("patch",), "`patch` must be a file name (a string)", value=data["patch"])
        return None
    patch_path = directory / data["patch"]
    if not patch_path.is_file():
        problems.add(
            "NG202",
            ("patch",),
            f"no such patch file {data['patch']!r} (relative to the job file)",
            value=data["patch"],
        )
        return None
    return patch_path


def _midi_section(
    data: Mapping[str, Any], read: _Reader, directory: Path, seconds: float | None
) -> tuple[tuple[Path, ...], tuple[int, ...], tuple[int, ...], float]:
    """The ``[midi]`` table: files, or notes with velocities, and how long a note is held."""
    problems = read.problems
    midi = read.table(data, "midi")
    read.unknown(midi, MIDI_KEYS, ("midi",))
    midi_files = _midi_files(midi, directory, problems)
    notes, velocities = _notes(midi, read)
    if midi_files and notes:
        problems.add("NG201", ("midi", "notes"), "give either `files` or `notes`, not both", at_value=False)
    if seconds is None and not midi_files and "seconds" not in data:
        problems.items.append(
            Problem(
                "NG206",
                "the job gives no `seconds` (only MIDI files may set the length)",
                problems.file,
                1,
                1,
                hint="add a line: seconds = 2.0",
            )
        )
    hold = read.number(midi, "hold", ("midi",), None, above=0.0, hi=3600.0)
    if hold is None:
        hold = 0.75 * seconds if seconds else 0.0  # NSynth: a 4 s note, held for 3 s
    elif seconds is not None and hold > seconds:
        problems.add("NG201", ("midi", "hold"), f"hold {hold:g} s is longer than the render ({seconds:g} s)")
    return midi_files, notes, velocities, hold


def _outputs_section(data: Mapping[str, Any], read: _Reader) -> tuple[str, str, list[str]]:
    """The ``[outputs]`` table: audio format, sample format and taps."""
    outputs = read.table(data, "outputs")
    read.unknown(outputs, OUTPUT_KEYS, ("outputs",))
    audio = read.choice(outputs, "audio", ("outputs",), ("wav", "flac"), "wav")
    bits = read.choice(outputs, "bits", ("outputs",), BITS[audio], BITS[audio][0 if audio == "wav" else 1])
    taps = outputs.get("taps", [])
    if not isinstance(taps, list) or not all(isinstance(t, str) for t in taps):
        read.problems.add("NG201", ("outputs", "taps"), 'taps must be a list of "node.port" names', value=taps)
        taps = []
    return audio, bits, taps


def _midi_files(midi: Mapping[str, Any], directory: Path, problems: Problems) -> tuple[Path, ...]:
    from neuralgraph._errors import NeuralgraphError
    from neuralgraph._io.midifile import read_midi_events

    raw = midi.get("files")
    if raw is None:
        return ()
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
        problems.add("NG201", ("midi", "files"), "`files` must be a glob pattern or a list of them", value=raw)
        return ()
    found: dict[Path, None] = {}
    for i, pattern in enumerate(patterns):
        key = ("midi", "files") if isinstance(raw, str) else ("midi", "files", i)
        matches = sorted(Path(m).resolve() for m in glob.glob(str(directory / pattern), recursive=True))
        matches = [m for m in matches if m.is_file()]
        if not matches:
            problems.add("NG202", key, f"{pattern!r} matches no file (relative to the job file)", value=pattern)
        for m in matches:
            try:
                read_midi_events(m, 48000)
            except NeuralgraphError as exc:
                problems.add("NG202", key, str(exc), value=pattern)
                continue
            found[m] = None
    return tuple(found)


def _notes(midi: Mapping[str, Any], read: _Reader) -> tuple[tuple[int, ...], tuple[int, ...]]:
    problems = read.problems
    raw = midi.get("notes")
    notes: list[int] = []
    if (
        isinstance(raw, dict)
        and set(raw) == {"range"}
        and isinstance(raw["range"], list)
        and len(raw["range"]) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in raw["range"])
    ):
        lo, hi = raw["range"]
        notes = list(range(lo, hi + 1))
        if not notes:
            problems.add("NG201", ("midi", "notes", "range"), f"range [{lo}, {hi}] is empty (it is inclusive)")
    elif isinstance(raw, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in raw):
        notes = list(raw)
    elif raw is not None:
        problems.add(
            "NG201", ("midi", "notes"), "`notes` must be a list of MIDI notes or { range = [lo, hi] }", value=raw
        )
    if any(not 0 <= n <= 127 for n in notes):
        problems.add("NG201", ("midi", "notes"), "MIDI notes are 0..127", value=raw)
        notes = []
    velocities = midi.get("velocities", [100])
    if (
        not isinstance(velocities, list)
        or not velocities
        or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 127 for v in velocities)
    ):
        problems.add(
            "NG201", ("midi", "velocities"), "`velocities` must be a list of velocities 1..127", value=velocities
        )
        velocities = [100]
    return tuple(notes), tuple(velocities)


def _axis(name: str, value: Any, problems: Problems) -> Axis | None:
    key = ("params", name)
    if name.count(".") != 1 or not all(name.split(".")):
        problems.add("NG203", key, f'{name!r} is not "node.param"', at_value=False)
        return None
    if isinstance(value, list):
        if not value:
            problems.add("NG201", key, "an empty list of grid values", value=value)
            return None
        return Axis(name, "grid", tuple(value))
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in RANDOM_KINDS:
            problems.add(
                "NG201",
                key,
                "a distribution is { uniform = [lo, hi] }, { log_uniform = [lo, hi] } or { choice = [a, b, ...] }",
                value=value,
            )
            return None
        kind, spec = next(iter(value.items()))
        if kind == "choice":
            if not isinstance(spec, list) or not spec:
                problems.add("NG201", key + (kind,), "choice needs a non-empty list", value=spec)
                return None
            return Axis(name, kind, tuple(spec))
        if not (isinstance(spec, list) and len(spec) == 2 and all(is_number(v) and math.isfinite(v) for v in spec)):
            problems.add("NG201", key + (kind,), f"{kind} needs [lo, hi], two finite numbers", value=spec)
            return None
        lo, hi = spec
        if not lo < hi:
            problems.add("NG201", key + (kind,), f"{kind} needs lo < hi, got [{lo:g}, {hi:g}]", value=spec)
            return None
        if kind == "log_uniform" and lo <= 0:
            problems.add(
                "NG201",
                key + (kind,),
                f"log_uniform needs lo > 0, got {lo:g}",
                value=spec,
                hint="use uniform for ranges that include zero or negative values",
            )
            return None
        return Axis(name, kind, (lo, hi))
    return Axis(name, "fixed", (value,))
