"""The ``neuralgraph`` command: render, check, nodes."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError, PatchError, UsageError, display_path
from neuralgraph._tools.batch.command import add_parser as add_batch_parser
from neuralgraph._tools.examples import add_parser as add_examples_parser
from neuralgraph._tools.modelcmd import add_parser as add_model_parser

EXIT_PATCH = 2  #: a bad patch (or bad arguments)
EXIT_ERROR = 1  #: anything else that went wrong


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    from neuralgraph._patch.loader import parse_override

    out = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except ValueError as exc:
            raise SystemExit(_fail(f"--set {item}: {exc}", EXIT_PATCH)) from None
        out[key] = value
    return out


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """The limit flags as ``load_patch`` keywords (None: config.toml or the environment decides)."""
    return {
        "allow_outside": True if getattr(args, "allow_outside_paths", False) else None,
        "max_nodes": getattr(args, "max_nodes", None),
        "memory_budget_mb": getattr(args, "memory_budget_mb", None),
    }


def _fail(message: str, code: int) -> int:
    print(f"neuralgraph: {message}", file=sys.stderr)
    return code


def _print_problems(error: PatchError) -> None:
    for problem in error.problems:
        print(problem.format(), file=sys.stderr)
    count = len(error.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)


def _settings(args: argparse.Namespace, patch: Any) -> tuple[int, int]:
    """Sample rate and block size: the flag, else config/environment, else the patch (0 is refused, not "unset")."""
    from neuralgraph._patch.config import AUDIO_RANGES, load_settings

    settings = load_settings()
    picked = []
    for flag, key, default in (
        ("--sample-rate", "sample_rate", patch.sample_rate),
        ("--block-size", "buffer_size", patch.block_size),
    ):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            lo, hi = AUDIO_RANGES[key]
            if not lo <= value <= hi:
                raise UsageError(f"{flag} {value} is out of range (valid: {lo}..{hi})")
        picked.append(int(value if value is not None else settings.get(key, default)))
    return picked[0], picked[1]


def _report_bad_values(engine: Any) -> None:
    """Warn about NaN/Inf the output guard replaced, naming the nodes that produced them."""
    guard = engine.plan.guard
    bad = engine.bad_values()
    if guard.non_finite:
        culprits = ", ".join(f"{b.node} ({b.non_finite})" for b in bad if b.non_finite)
        print(
            f"neuralgraph: warning: {guard.non_finite} NaN/Inf samples replaced by silence"
            + (f"; produced by {culprits}" if culprits else ""),
            file=sys.stderr,
        )
    subnormal = ", ".join(f"{b.node} ({b.subnormal})" for b in bad if b.subnormal)
    if subnormal:
        print(f"neuralgraph: warning: subnormal samples produced by {subnormal}", file=sys.stderr)


def _input_file(flag: str, path: str) -> str:
    """A file named on the command line, checked before any work: UsageError when unusable."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{flag} {path}: no such file")
    if p.is_dir():
        raise UsageError(f"{flag} {path}: is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{flag} {path}: permission denied (the file cannot be read)")
    return path


def _number(flag: str, value: float | None, *, minimum: float, strict: bool) -> None:
    """UsageError unless ``value`` is finite and above (``strict``) or at least ``minimum``."""
    if value is None:
        return
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise UsageError(f"{flag} must be a finite number {bound}, got {value:g}")


def _patch_inputs(engine: Any) -> tuple[list[str], list[str]]:
    """The patch's MIDI inputs (``node.port`` fed by the engine's MIDI) and io.input nodes."""
    from neuralgraph._nodes.ports import Rate

    spec = engine.patch.spec.nodes
    midi, audio = [], []
    for name, node in engine.plan.nodes.items():
        if node.type_name == "io.input":
            audio.append(name)
        for port, decl in node.inputs().items():
            wired = spec[name].inputs.get(port) if name in spec else None
            if decl.rate is Rate.EVENTS and decl.source == "midi" and not (wired and wired.sources):
                midi.append(f"{name}.{port}")
    return midi, audio


def _inputs_text(midi: list[str], audio: list[str]) -> str:
    parts = ([f"MIDI into {', '.join(midi)}"] if midi else []) + (
        [f"audio into {', '.join(audio)} (io.input)"] if audio else []
    )
    return "; ".join(parts) if parts else "none (it plays on its own)"


def _check_inputs(args: argparse.Namespace, engine: Any) -> None:
    """--midi/--input on a patch that cannot use them is an error; a patch that needs them warns."""
    midi, audio = _patch_inputs(engine)
    name = display_path(args.patch)
    if args.midi and not midi:
        raise UsageError(
            f"--midi {args.midi}: {name} has no MIDI input, so the file would be ignored "
            f"(the patch's inputs: {_inputs_text(midi, audio)})"
        )
    if args.input and not audio:
        raise UsageError(
            f"--input {args.input}: {name} has no io.input node, so the file would be ignored "
            f"(the patch's inputs: {_inputs_text(midi, audio)})"
        )
    if midi and not args.midi:
        _warn(f"{name} takes MIDI ({', '.join(midi)}) but no --midi file was given: it renders without notes")
    if audio and not args.input:
        _warn(f"{name} takes audio ({', '.join(audio)}, io.input) but no --input file was given: its input is silence")


def _warn(message: str) -> None:
    print(f"neuralgraph: warning: {message}", file=sys.stderr)


def _render_length(args: argparse.Namespace, rate: int, source: Any, max_seconds: float) -> float:
    """The length to render: --seconds, else the MIDI file or input plus --tail, else 5; capped."""
    seconds, why = args.seconds, f"--seconds {args.seconds:g}" if args.seconds is not None else ""
    if seconds is None and args.midi:
        from neuralgraph._io.midifile import midi_length

        seconds = midi_length(args.midi) + args.tail
        why = f"{display_path(args.midi)} plus --tail {args.tail:g}"
    if seconds is None and source is not None:
        seconds = source.shape[1] / rate + args.tail
        why = f"{display_path(args.input)} plus --tail {args.tail:g}"
    if seconds is None:
        seconds = 5.0
    if seconds > max_seconds:
        raise UsageError(
            f"the render would be {seconds:.1f} s long ({why}), more than the limit of "
            f"{max_seconds:g} s; raise it on purpose with --max-seconds, max_render_seconds in "
            "[limits] of config.toml or NEURALGRAPH_MAX_RENDER_SECONDS"
        )
    return seconds


def _check_render_args(args: argparse.Namespace) -> tuple[Path, Any]:
    """The numbers, input files, output and plot of ``render``, checked before anything is
    rendered; returns the output path and its checked target."""
    from neuralgraph._tools.render_file import check_target

    _number("--seconds", args.seconds, minimum=0.0, strict=True)
    _number("--tail", args.tail, minimum=0.0, strict=False)
    _number("--max-seconds", args.max_seconds, minimum=0.0, strict=True)
    for flag, path in (("--midi", args.midi), ("--input", args.input)):
        if path:
            _input_file(flag, path)
    out = Path(args.output or Path(args.patch).with_suffix(".wav").name)
    target = check_target(out, args.bits)  # before anything is rendered
    if args.plot:
        from neuralgraph._tools.plotting import check_plot_format
        from neuralgraph._tools.render_file import check_writable

        check_plot_format(args.plot)  # a missing matplotlib or folder fails now, not after the render
        check_writable(args.plot, "--plot")
    return out, target


def cmd_render(args: argparse.Namespace) -> int:
    from neuralgraph._io.audiofile import read_audio
    from neuralgraph._patch.config import load_limits
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine
    from neuralgraph._tools.progress import RenderProgress
    from neuralgraph._tools.render_file import render_to_file

    out, target = _check_render_args(args)
    max_seconds = args.max_seconds or load_limits().max_render_seconds
    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    rate, block = _settings(args, patch)
    engine = Engine(patch, sample_rate=rate, block_size=block)
    _check_inputs(args, engine)
    source = None
    if args.input:
        source, in_rate = read_audio(args.input)
        if in_rate != rate:
            return _fail(
                f"--input {args.input} is at {in_rate} Hz but the engine runs at {rate} Hz "
                f"(resample it, or render with --sample-rate {in_rate})",
                EXIT_PATCH,
            )
    seconds = _render_length(args, rate, source, max_seconds)
    removed = 0 if args.no_latency_compensation else max(0, int(engine.latency))
    progress = RenderProgress(f"rendering {display_path(args.patch)}", seconds, quiet=args.quiet)
    result = render_to_file(
        engine,
        target,
        seconds,
        midi=args.midi,
        input=source,
        progress=progress,
        keep_partial=args.keep_partial,
        skip=removed,
    )
    if removed:
        print(
            f"latency compensation: removed the patch's declared latency of {removed} samples "
            f"({1000.0 * removed / rate:.2f} ms) from the start (--no-latency-compensation keeps it)"
        )
    for fault in engine.faults():
        _warn(f"{fault.node} raised {fault.error!r} and was bypassed")
    for notice in engine.notices():
        _warn(f"{notice.node}: {notice.text}")
    _report_bad_values(engine)
    guard = engine.plan.guard
    if guard.clipped:
        _warn(f"{guard.clipped} samples clipped at the ±1.0 ceiling (peak {guard.peak:.2f}); lower the output level")
    factor = seconds / result.wall if result.wall > 0 else float("inf")
    print(
        f"wrote {display_path(out)}: {seconds:.2f} s, {engine.channels} ch, {rate} Hz, block {block}; "
        f"rendered in {result.wall:.2f} s ({factor:.1f}x real time)"
    )
    if args.plot:
        from neuralgraph._tools.plotting import plot_render, title_for

        audio, _ = read_audio(out)  # the picture needs the whole render: read it back from the file
        title = title_for(
            patch.name,
            [
                Path(args.patch).name,
                f"{rate} Hz",
                f"block {block}",
                f"{seconds:.2f} s",
                *([f"midi {Path(args.midi).name}"] if args.midi else []),
                *(f"--set {item}" for item in args.set),
            ],
        )
        plot_render(audio, rate, args.plot, title)
        print(f"wrote {display_path(args.plot)}: waveform and spectrogram")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from neuralgraph._compile.compiler import build_plan
    from neuralgraph._patch.patch import check_patch

    patch, problems = check_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    if problems:
        for problem in problems:
            print(problem.format(), file=sys.stderr)
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", file=sys.stderr)
        return EXIT_PATCH
    rate, block = _settings(args, patch)
    plan, _ = build_plan(patch, rate, block, fuse=False)  # check compiles no kernels
    print(f"{display_path(args.patch)}: ok — {patch.name!r}")
    print(plan.describe())
    return 0


def _plain(text: str) -> str:
    """A docstring for the terminal: reStructuredText ``code`` and :role:`x` shown as `code`."""
    return re.sub(r"``([^`]+)``", r"`\1`", re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text))


def _format_node(name: str, node_type: Any) -> str:
    cls = node_type.cls
    node = cls()
    lines = [f"{name}  ({node_type.plugin})"]
    doc = _plain((cls.__doc__ or "").strip())
    if doc:
        lines += ["    " + line.strip() for line in doc.splitlines()]

    def limits(lo: float | None, hi: float | None, unit: str) -> str:
        if lo is None and hi is None:
            return unit
        text = f"[{'' if lo is None else f'{lo:g}'}, {'' if hi is None else f'{hi:g}'}]"
        return f"{text} {unit}".strip()

    if node.inputs():
        lines.append("  inputs:")
        for port, decl in node.inputs().items():
            lines.append(
                f"    {port:<14} {decl.rate.value:<8} init {decl.init:g}  {limits(decl.min, decl.max, decl.unit)}"
                f"  {_plain(decl.doc)}".rstrip()
            )
    if node.outputs():
        lines.append("  outputs:")
        for port, decl in node.outputs().items():
            span = "" if decl.rate.value == "events" else f"span {decl.span[0]:g}..{decl.span[1]:g}"
            lines.append(f"    {port:<14} {decl.rate.value:<8} {span}  {_plain(decl.doc)}".rstrip())
    if cls.params():
        lines.append("  parameters:")
        for pname, decl in cls.params().items():
            flags = "" if decl.live else " (fixed while running)"
            lines.append(
                f"    {pname:<14} {decl.describe()}, init {decl.init!r} {decl.unit}{flags}  {_plain(decl.doc)}".rstrip()
            )
    return "\n".join(lines)


def cmd_nodes(args: argparse.Namespace) -> int:
    from neuralgraph._errors import did_you_mean
    from neuralgraph._plugins.registry import default_registry

    registry = default_registry()
    for failure in registry.failures:
        print(f"neuralgraph: warning: plugin {failure.plugin!r} skipped: {failure.error}", file=sys.stderr)
    if args.type:
        if args.type not in registry.node_types:
            hint = did_you_mean(args.type, registry.node_types)
            return _fail(f"no node type {args.type!r}" + (f" ({hint})" if hint else ""), EXIT_PATCH)
        print(_format_node(args.type, registry.node_types[args.type]))
        return 0
    width = max((len(n) for n in registry.node_types), default=0)
    for name in sorted(registry.node_types):
        node_type = registry.node_types[name]
        doc = _plain((node_type.cls.__doc__ or "").strip()).splitlines()
        print(f"{name:<{width}}  {doc[0] if doc else ''}  [{node_type.plugin}]")
    return 0


def _check_play_args(args: argparse.Namespace) -> None:
    """The numbers ``play`` takes, checked before the patch loads."""
    _number("--seconds", args.seconds, minimum=0.0, strict=True)
    if args.osc_port is not None and not 0 <= args.osc_port <= 65535:
        raise UsageError(f"--osc-port {args.osc_port} is not a UDP port (valid: 0..65535; 0 picks a free one)")
    if not 0.0 <= args.fade <= 10.0:
        raise UsageError(f"--fade {args.fade:g}: give a crossfade between 0 and 10 seconds")


def _open_play_backend(args: argparse.Namespace, engine: Any) -> Any:
    """The backend named by --backend (else config.toml, else sounddevice) with the flags' options."""
    from neuralgraph._io.backend import open_backend
    from neuralgraph._patch.config import load_settings

    settings = load_settings()
    name = args.backend or settings.get("backend") or "sounddevice"
    options: dict[str, Any] = {}
    device = args.device or settings.get("device")
    if device:
        options["device"] = device
    if args.midi_in:
        options["midi_in"] = args.midi_in
    if args.no_connect:
        options["connect"] = False
    if args.client_name:
        options["client_name"] = args.client_name
    return open_backend(name, engine, **options)


class _Playing:
    """What runs beside the backend while ``play`` plays: the OSC server, the patch watcher and
    the recorder, started and stopped together, and the warnings printed while it plays."""

    def __init__(self, args: argparse.Namespace, backend: Any, engine: Any, overrides: dict[str, Any]) -> None:
        self.args, self.backend, self.overrides = args, backend, overrides
        self.first_engine = engine
        self.osc: Any = None
        self.watcher: Any = None
        self.recorder: Any = None
        self.slow_named: set[str] = set()
        if args.osc_port is not None:
            from neuralgraph._io.osc import OscControl

            self.osc = OscControl(self.engine, port=args.osc_port, host=args.osc_host)

    def engine(self) -> Any:
        """The engine playing now: a backend may rebuild it for its device, a swap replaces it."""
        return getattr(self.backend, "engine", self.first_engine)

    def start(self) -> None:
        from neuralgraph._patch.patch import load_patch

        args = self.args
        if args.record:  # taps follow the engine into the one a backend rebuilds for its device
            from neuralgraph._tools.record import Recorder

            self.recorder = Recorder(self.first_engine, args.record)
        self.backend.start()
        if args.watch:
            from neuralgraph._tools.watch import PatchWatcher

            self.watcher = PatchWatcher(
                args.patch,
                self.engine,
                lambda path: load_patch(path, overrides=self.overrides, **_limits(args)),
                fade=args.fade,
                problems=_print_problems,
            ).start()
            print(
                f"watching {display_path(args.patch)}: every save is swapped in (crossfade {args.fade:g} s)",
                file=sys.stderr,
                flush=True,
            )
        if self.osc is not None:
            print(f"OSC: /node/param value on {self.osc.host}:{self.osc.port}", file=sys.stderr)

    def warn(self) -> None:
        """Print the faults, notices, slow nodes and OSC errors that came up since the last call."""
        engine = self.engine()
        for fault in engine.faults():
            print(f"\nneuralgraph: warning: {fault.node} raised {fault.error!r} and was bypassed", file=sys.stderr)
        for notice in engine.notices():
            print(f"\nneuralgraph: warning: {notice.node}: {notice.text}", file=sys.stderr)
        for slow in engine.slow_steps():
            if slow.name not in self.slow_named:  # once per node: the one making the xruns
                self.slow_named.add(slow.name)
                print(
                    f"\nneuralgraph: warning: {slow.name} took {slow.worst_ms:.1f} ms of a "
                    f"{slow.budget_ms:.1f} ms block (sampled); it is too slow for real time",
                    file=sys.stderr,
                )
        while self.osc is not None and self.osc.errors:
            print(f"\nneuralgraph: OSC: {self.osc.errors.popleft()}", file=sys.stderr)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.backend.stop()
        if self.recorder is not None:
            self.recorder.close()  # after the audio stopped: everything played is in the file
        if self.osc is not None:
            self.osc.close()


def _play_until_done(playing: _Playing, seconds: float | None, done: Any, live: bool) -> None:
    """Show the status until ``seconds`` pass, ``done`` is set (SIGTERM) or the backend stops."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not done.is_set():
        wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if wait <= 0:
            break
        done.wait(wait)
        status = playing.backend.status()
        if live:
            sys.stderr.write("\r" + status.line()[:200] + "\033[K")
            sys.stderr.flush()
        playing.warn()
        if not status.running:
            break


def _report_played(playing: _Playing) -> int:
    """What was played (and recorded), the bad values the guard replaced; exit 1 if the backend failed."""
    status = playing.backend.status()
    print(
        f"played {status.callbacks * status.period / max(status.sample_rate, 1):.2f} s: {status.line()}; "
        f"callbacks {status.callbacks}, silent {status.silent}, midi events {status.midi_events}"
    )
    recorder = playing.recorder
    if recorder is not None:
        print(
            f"wrote {display_path(recorder.path)}: {recorder.frames / status.sample_rate:.2f} s"
            + (f" ({recorder.lost} frames lost: the disk did not keep up)" if recorder.lost else "")
        )
    _report_bad_values(playing.engine())  # the stream has stopped: safe to read
    if status.message:
        return _fail(status.message, EXIT_ERROR)
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """Play a patch in real time through an audio backend until --seconds pass or Ctrl-C."""
    import signal
    import threading

    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine

    _check_play_args(args)
    overrides = _overrides(args.set)
    patch = load_patch(args.patch, overrides=overrides, **_limits(args))
    if args.record:
        from neuralgraph._tools.record import check_record_path

        check_record_path(args.record)
    rate, block = _settings(args, patch)
    engine = Engine(patch, sample_rate=rate, block_size=block)
    playing = _Playing(args, _open_play_backend(args, engine), engine, overrides)
    done = threading.Event()
    previous_term = signal.signal(signal.SIGTERM, lambda *_: done.set())
    live = sys.stderr.isatty()
    try:
        playing.start()
        _play_until_done(playing, args.seconds, done, live)
    except KeyboardInterrupt:
        pass
    finally:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        try:
            playing.stop()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    if live:
        sys.stderr.write("\n")
    return _report_played(playing)


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the patch: DOT text to stdout, or a .dot/.svg/.png/.pdf file (through Graphviz)."""
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._tools.drawing import draw_patch, patch_to_dot

    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    if args.output is None:
        sys.stdout.write(patch_to_dot(patch))
        return 0
    from neuralgraph._tools.render_file import check_writable

    check_writable(args.output)
    out = draw_patch(patch, args.output)
    print(f"wrote {display_path(out)}: {len(patch.spec.nodes)} nodes, {len(patch.topology.edges)} connections")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine
    from neuralgraph._tools.profiling import format_profile, hold_notes, profile

    _number("--seconds", args.seconds, minimum=0.0, strict=True)
    _number("--notes", args.notes, minimum=0.0, strict=False)
    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    rate, block = _settings(args, patch)
    engine = Engine(patch, sample_rate=rate, block_size=block, fuse=not args.no_fuse)
    if args.notes:
        hold_notes(engine, args.notes)
    blocks = max(1, int(round(args.seconds * rate / block)))
    print(format_profile(profile(engine, blocks), display_path(args.patch)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Play a patch and serve its control surface (a web page) on 127.0.0.1."""
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine
    from neuralgraph._tools.serve import run

    overrides = _overrides(args.set)
    folder = Path(args.patch).resolve().parent

    def load(source: Any) -> Any:  # the file at start, then the page editor's text (errors name the file)
        if isinstance(source, Path):
            return load_patch(source, overrides=overrides, **_limits(args))
        return load_patch(
            source, text_name=display_path(args.patch), base_dir=folder, overrides=overrides, **_limits(args)
        )

    patch = load(Path(args.patch))
    rate, block = _settings(args, patch)
    return run(args, load, Engine(patch, sample_rate=rate, block_size=block))


def _limit_flags(p: argparse.ArgumentParser) -> None:
    """--allow-outside-paths, --max-nodes and --memory-budget-mb: the limits a patch is loaded under."""
    p.add_argument(
        "--allow-outside-paths",
        action="store_true",
        help="let file parameters (models, tables) name files outside the patch's folder "
        "or absolute paths; refused by default (NG118)",
    )
    p.add_argument(
        "--max-nodes",
        type=int,
        metavar="N",
        help="refuse patches with more nodes (default: config [limits], env, 10000)",
    )
    p.add_argument(
        "--memory-budget-mb",
        type=int,
        metavar="MB",
        help="refuse plans needing more buffer and state memory (default: config [limits], env, 2048)",
    )


def _engine_flags(p: argparse.ArgumentParser) -> None:
    """--set, the limits, --sample-rate and --block-size: how a command builds its engine."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a parameter or input (TOML value syntax); repeatable",
    )
    _limit_flags(p)
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="sample rate (default: patch, config, env)")
    p.add_argument("--block-size", type=int, metavar="N", help="frames per block (default: patch, config, env)")


def _add_render_parser(sub: Any) -> None:
    p = sub.add_parser("render", help="render a patch offline to an audio file")
    p.add_argument("patch")
    p.add_argument("-o", "--output", metavar="OUT.wav", help="output file (default: PATCH name .wav)")
    p.add_argument("--seconds", type=float, help="length (default: the MIDI file or input plus --tail, else 5)")
    p.add_argument("--midi", metavar="FILE.mid", help="play a standard MIDI file through the patch")
    p.add_argument("--input", metavar="IN.wav", help="feed io.input from an audio file")
    p.add_argument("--tail", type=float, default=2.0, help="seconds rendered after the MIDI/input ends (2)")
    p.add_argument(
        "--bits",
        choices=["float", "16", "24", "32"],
        help="sample format (default: float where the format holds it; not for .ogg/.mp3)",
    )
    p.add_argument("--plot", metavar="OUT.png", help="also draw the waveform and spectrogram (needs matplotlib)")
    p.add_argument(
        "--no-latency-compensation",
        action="store_true",
        help="keep the patch's declared latency at the start (default: removed, so the file "
        "lines up with --input sample for sample)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        metavar="S",
        help="refuse renders longer than this (default: config [limits] max_render_seconds, "
        "env NEURALGRAPH_MAX_RENDER_SECONDS, 3600)",
    )
    p.add_argument(
        "--keep-partial",
        action="store_true",
        help="if the render stops early (Ctrl-C, SIGTERM, an error), keep what was rendered as OUT.partial.wav",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress lines")
    _engine_flags(p)
    p.set_defaults(func=cmd_render)


def _add_check_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="report every problem, or the compiled order, buffers and latency")
    p.add_argument("patch")
    _engine_flags(p)
    p.set_defaults(func=cmd_check)


def _add_nodes_parser(sub: Any) -> None:
    p = sub.add_parser("nodes", help="list node types, or describe one")
    p.add_argument("type", nargs="?")
    p.set_defaults(func=cmd_nodes)


def _add_play_parser(sub: Any) -> None:
    p = sub.add_parser("play", help="play a patch in real time (sounddevice or jack)")
    p.add_argument("patch")
    p.add_argument("--backend", help="audio backend: sounddevice or jack (default: config, env, sounddevice)")
    p.add_argument("--device", help="sounddevice: device number or name; jack: server name")
    p.add_argument("--midi-in", metavar="PORT", help="live MIDI input port (jack: a JACK MIDI output port or glob)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--no-connect", action="store_true", help="jack: do not connect to the physical ports")
    p.add_argument("--client-name", metavar="NAME", help="jack: the client's name (neuralgraph)")
    p.add_argument("--osc-port", type=int, metavar="N", help="accept /node/param VALUE over OSC on this UDP port")
    p.add_argument("--osc-host", default="127.0.0.1", help="address the OSC server binds to (127.0.0.1)")
    p.add_argument(
        "--watch",
        action="store_true",
        help="reload the patch file on every save, keeping the state of unchanged nodes (docs/live.md)",
    )
    p.add_argument(
        "--fade",
        type=float,
        default=0.05,
        metavar="S",
        help="--watch: crossfade for added or removed nodes, in seconds (0.05)",
    )
    p.add_argument("--record", metavar="FILE.wav|.flac", help="also write what is played to this file")
    _engine_flags(p)
    p.set_defaults(func=cmd_play)


def _add_serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="play a patch with a control surface in the web browser (docs/serve.md)")
    p.add_argument("patch")
    p.add_argument(
        "--backend",
        help="jack, sounddevice, or none (a real-time clock, no sound device); default: config, env, sounddevice",
    )
    p.add_argument("--port", type=int, default=0, metavar="N", help="TCP port (default: any free one)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1 only; anything else warns)")
    p.add_argument("--device", help="sounddevice: device number or name; jack: server name")
    p.add_argument("--no-connect", action="store_true", help="jack: do not connect to the physical ports")
    p.add_argument(
        "--fade",
        type=float,
        default=0.05,
        metavar="S",
        help="crossfade when a saved edit adds or removes nodes, in seconds (0.05)",
    )
    _engine_flags(p)
    p.set_defaults(func=cmd_serve)


def _add_graph_parser(sub: Any) -> None:
    p = sub.add_parser("graph", help="draw a patch: DOT text, or SVG/PNG through Graphviz")
    p.add_argument("patch")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.svg|.png|.pdf|.dot",
        help="file to write; the suffix picks the format (default: DOT text on stdout)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a parameter or input before drawing; repeatable",
    )
    _limit_flags(p)
    p.set_defaults(func=cmd_graph)


def _add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure a patch: real-time factor, CPU per block, cost of every node")
    p.add_argument("patch")
    p.add_argument("--seconds", type=float, default=10.0, help="audio rendered per pass (10)")
    p.add_argument("--notes", type=int, default=0, help="hold this many MIDI notes (voice patches)")
    p.add_argument(
        "--no-fuse", action="store_true", help="one step per node (no kernel fusion), to see every node's own cost"
    )
    _engine_flags(p)
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralgraph", description="Neural and classic DSP synth patches.")
    parser.add_argument("--version", action="version", version=f"neuralgraph {__import__('neuralgraph').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_render_parser(sub)
    _add_check_parser(sub)
    _add_nodes_parser(sub)
    _add_play_parser(sub)
    _add_serve_parser(sub)
    _add_graph_parser(sub)
    _add_bench_parser(sub)
    add_examples_parser(sub)
    add_batch_parser(sub)
    add_model_parser(sub)
    return parser


class _WatchedStdout:
    """stdout, noting whether a write to it failed (a full disk, a closed pipe)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            self.failed = True
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self.failed = True
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _drop_stdout(stream: Any) -> None:
    """Point a failed stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one message on stderr and an exit status, never a traceback
    (2: a bad patch, argument or input file; 1: a failure while running; 130/143: interrupted)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line, no source line: the message says it all
        return _main(argv)


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"neuralgraph: warning: {message}", file=sys.stderr)


def _main(argv: Sequence[str] | None = None) -> int:
    from neuralgraph._tools.render_file import RenderInterrupted, Terminated

    parser = build_parser()
    args = parser.parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = watched = _WatchedStdout(real_stdout)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk (> /dev/full) or a closed pipe fails here, not at exit
        return code
    except OSError as exc:  # a full disk, a vanished file, a device that went away
        if watched.failed:
            _drop_stdout(real_stdout)
            return _fail(f"cannot write to standard output: {exc.strerror or exc}", EXIT_ERROR)
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_ERROR)
    except PatchError as exc:
        _print_problems(exc)
        return EXIT_PATCH
    except UsageError as exc:
        return _fail(str(exc), EXIT_PATCH)
    except RenderInterrupted as exc:
        code = (
            143
            if isinstance(exc.cause, Terminated)
            else 130
            if isinstance(exc.cause, KeyboardInterrupt)
            else EXIT_ERROR
        )
        return _fail(str(exc), code)
    except NeuralgraphError as exc:  # PluginError, BackendError, ParameterError, ...
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory; lower --seconds, voices, or the memory budget (--memory-budget-mb)", EXIT_ERROR)
    except Exception as exc:  # a bug: still one line, with how to see the details
        if os.environ.get("NEURALGRAPH_DEBUG"):
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with NEURALGRAPH_DEBUG=1 for the "
            "traceback, and please report it)",
            EXIT_ERROR,
        )
    finally:
        sys.stdout = real_stdout
