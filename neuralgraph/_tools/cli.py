"""The ``neuralgraph`` command: render, check, nodes."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError, PatchError, PluginError, display_path
from neuralgraph._tools.examples import add_parser as add_examples_parser

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
    return {"allow_outside": True if getattr(args, "allow_outside_paths", False) else None,
            "max_nodes": getattr(args, "max_nodes", None),
            "memory_budget_mb": getattr(args, "memory_budget_mb", None)}


def _fail(message: str, code: int) -> int:
    print(f"neuralgraph: {message}", file=sys.stderr)
    return code


def _print_problems(error: PatchError) -> None:
    for problem in error.problems:
        print(problem.format(), file=sys.stderr)
    count = len(error.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)


def _settings(args: argparse.Namespace, patch: Any) -> tuple[int, int]:
    from neuralgraph._patch.config import load_settings

    settings = load_settings()
    rate = args.sample_rate or settings.get("sample_rate") or patch.sample_rate
    block = args.block_size or settings.get("buffer_size") or patch.block_size
    return int(rate), int(block)


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, label: str) -> None:
        self.enabled = sys.stderr.isatty()
        self.label = label

    def __call__(self, fraction: float) -> None:
        if self.enabled:
            filled = int(fraction * 30)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * (len(self.label) + 42) + "\r")


def _report_bad_values(engine: Any) -> None:
    """Warn about NaN/Inf the output guard replaced, naming the nodes that produced them."""
    guard = engine.plan.guard
    bad = engine.bad_values()
    if guard.non_finite:
        culprits = ", ".join(f"{b.node} ({b.non_finite})" for b in bad if b.non_finite)
        print(f"neuralgraph: warning: {guard.non_finite} NaN/Inf samples replaced by silence"
              + (f"; produced by {culprits}" if culprits else ""), file=sys.stderr)
    subnormal = ", ".join(f"{b.node} ({b.subnormal})" for b in bad if b.subnormal)
    if subnormal:
        print(f"neuralgraph: warning: subnormal samples produced by {subnormal}", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    from neuralgraph._io.audiofile import read_audio, write_audio
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine

    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    if args.plot:
        from neuralgraph._tools.plotting import pyplot

        pyplot()  # fail before rendering when matplotlib is missing
    rate, block = _settings(args, patch)
    engine = Engine(patch, sample_rate=rate, block_size=block)
    seconds = args.seconds
    if args.midi and seconds is None:
        from neuralgraph._io.midifile import midi_length

        seconds = midi_length(args.midi) + args.tail
    source = None
    if args.input:
        source, in_rate = read_audio(args.input)
        if in_rate != rate:
            return _fail(f"{args.input} is at {in_rate} Hz but the engine runs at {rate} Hz", EXIT_ERROR)
        if seconds is None:
            seconds = source.shape[1] / rate + args.tail
    if seconds is None:
        seconds = 5.0
    out = Path(args.output or Path(args.patch).with_suffix(".wav").name)
    progress = Progress(f"rendering {display_path(args.patch)}")
    t0 = time.perf_counter()
    audio = engine.render(seconds, midi=args.midi, input=source, progress=progress)
    wall = time.perf_counter() - t0
    progress.done()
    write_audio(out, audio, rate, args.bits)
    for fault in engine.faults():
        print(f"neuralgraph: warning: {fault.node} raised {fault.error!r} and was bypassed", file=sys.stderr)
    _report_bad_values(engine)
    guard = engine.plan.guard
    if guard.clipped:
        print(f"neuralgraph: warning: {guard.clipped} samples clipped at the ±1.0 ceiling "
              f"(peak {guard.peak:.2f}); lower the output level", file=sys.stderr)
    factor = seconds / wall if wall > 0 else float("inf")
    print(f"wrote {display_path(out)}: {seconds:.2f} s, {engine.channels} ch, {rate} Hz, block {block}; "
          f"rendered in {wall:.2f} s ({factor:.1f}x real time)")
    if args.plot:
        from neuralgraph._tools.plotting import plot_render, title_for

        title = title_for(patch.name, [Path(args.patch).name, f"{rate} Hz", f"block {block}", f"{seconds:.2f} s",
                                       *([f"midi {Path(args.midi).name}"] if args.midi else []),
                                       *(f"--set {item}" for item in args.set)])
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


def _format_node(name: str, node_type: Any) -> str:
    cls = node_type.cls
    node = cls()
    lines = [f"{name}  ({node_type.plugin})"]
    doc = (cls.__doc__ or "").strip()
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
            lines.append(f"    {port:<14} {decl.rate.value:<8} init {decl.init:g}  {limits(decl.min, decl.max, decl.unit)}"
                         f"  {decl.doc}".rstrip())
    if node.outputs():
        lines.append("  outputs:")
        for port, decl in node.outputs().items():
            span = "" if decl.rate.value == "events" else f"span {decl.span[0]:g}..{decl.span[1]:g}"
            lines.append(f"    {port:<14} {decl.rate.value:<8} {span}  {decl.doc}".rstrip())
    if cls.params():
        lines.append("  parameters:")
        for pname, decl in cls.params().items():
            flags = "" if decl.live else " (fixed while running)"
            lines.append(f"    {pname:<14} {decl.describe()}, init {decl.init!r} {decl.unit}{flags}  {decl.doc}".rstrip())
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
        doc = (node_type.cls.__doc__ or "").strip().splitlines()
        print(f"{name:<{width}}  {doc[0] if doc else ''}  [{node_type.plugin}]")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """Play a patch in real time through an audio backend until --seconds pass or Ctrl-C."""
    import signal
    import threading

    from neuralgraph._io.backend import open_backend
    from neuralgraph._patch.config import load_settings
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine

    overrides = _overrides(args.set)
    patch = load_patch(args.patch, overrides=overrides, **_limits(args))
    if args.record:
        from neuralgraph._tools.record import check_record_path

        check_record_path(args.record)
    if not 0.0 <= args.fade <= 10.0:
        return _fail(f"--fade {args.fade:g}: give a crossfade between 0 and 10 seconds", EXIT_PATCH)
    settings = load_settings()
    rate, block = _settings(args, patch)
    engine = Engine(patch, sample_rate=rate, block_size=block)
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
    backend = open_backend(name, engine, **options)
    osc = None
    if args.osc_port is not None:
        from neuralgraph._io.osc import OscControl

        osc = OscControl(lambda: getattr(backend, "engine", engine), port=args.osc_port, host=args.osc_host)
    done = threading.Event()
    previous_term = signal.signal(signal.SIGTERM, lambda *_: done.set())
    live = sys.stderr.isatty()
    status = None
    watcher = recorder = None
    try:
        if args.record:  # taps follow the engine into the one a backend rebuilds for its device
            from neuralgraph._tools.record import Recorder

            recorder = Recorder(engine, args.record)
        backend.start()
        if args.watch:
            from neuralgraph._tools.watch import PatchWatcher

            watcher = PatchWatcher(args.patch, lambda: getattr(backend, "engine", engine),
                                   lambda path: load_patch(path, overrides=overrides, **_limits(args)),
                                   fade=args.fade, problems=_print_problems).start()
            print(f"watching {display_path(args.patch)}: every save is swapped in (crossfade {args.fade:g} s)",
                  file=sys.stderr, flush=True)
        if osc is not None:
            print(f"OSC: /node/param value on {osc.host}:{osc.port}", file=sys.stderr)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not done.is_set():
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0:
                break
            done.wait(wait)
            status = backend.status()
            if live:
                sys.stderr.write("\r" + status.line()[:200] + "\033[K")
                sys.stderr.flush()
            for fault in getattr(backend, "engine", engine).faults():
                print(f"\nneuralgraph: warning: {fault.node} raised {fault.error!r} and was bypassed", file=sys.stderr)
            while osc is not None and osc.errors:
                print(f"\nneuralgraph: OSC: {osc.errors.popleft()}", file=sys.stderr)
            if not status.running:
                break
    except KeyboardInterrupt:
        pass
    finally:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        try:
            if watcher is not None:
                watcher.stop()
            backend.stop()
            if recorder is not None:
                recorder.close()  # after the audio stopped: everything played is in the file
            if osc is not None:
                osc.close()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    if live:
        sys.stderr.write("\n")
    status = backend.status()
    print(f"played {status.callbacks * status.period / max(status.sample_rate, 1):.2f} s: {status.line()}; "
          f"callbacks {status.callbacks}, silent {status.silent}, midi events {status.midi_events}")
    if recorder is not None:
        print(f"wrote {display_path(recorder.path)}: {recorder.frames / status.sample_rate:.2f} s"
              + (f" ({recorder.lost} frames lost: the disk did not keep up)" if recorder.lost else ""))
    _report_bad_values(getattr(backend, "engine", engine))  # the stream has stopped: safe to read
    if status.message:
        return _fail(status.message, EXIT_ERROR)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the patch: DOT text to stdout, or a .dot/.svg/.png/.pdf file (through Graphviz)."""
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._tools.drawing import draw_patch, patch_to_dot

    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    if args.output is None:
        sys.stdout.write(patch_to_dot(patch))
        return 0
    out = draw_patch(patch, args.output)
    print(f"wrote {display_path(out)}: {len(patch.spec.nodes)} nodes, {len(patch.topology.edges)} connections")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from neuralgraph._patch.patch import load_patch
    from neuralgraph._runtime.engine import Engine
    from neuralgraph._tools.profiling import format_profile, hold_notes, profile

    patch = load_patch(args.patch, overrides=_overrides(args.set), **_limits(args))
    rate, block = _settings(args, patch)
    if args.seconds <= 0 or args.notes < 0:
        return _fail("--seconds must be > 0 and --notes >= 0", EXIT_PATCH)
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
        return load_patch(source, text_name=display_path(args.patch), base_dir=folder, overrides=overrides,
                          **_limits(args))

    patch = load(Path(args.patch))
    rate, block = _settings(args, patch)
    return run(args, load, Engine(patch, sample_rate=rate, block_size=block))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralgraph", description="Neural and classic DSP synth patches.")
    parser.add_argument("--version", action="version", version=f"neuralgraph {__import__('neuralgraph').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def limit_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--allow-outside-paths", action="store_true",
                       help="let file parameters (models, tables) name files outside the patch's folder "
                            "or absolute paths; refused by default (NG118)")
        p.add_argument("--max-nodes", type=int, metavar="N",
                       help="refuse patches with more nodes (default: config [limits], env, 10000)")
        p.add_argument("--memory-budget-mb", type=int, metavar="MB",
                       help="refuse plans needing more buffer and state memory (default: config [limits], env, 2048)")

    def engine_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                       help="override a parameter or input (TOML value syntax); repeatable")
        limit_flags(p)
        p.add_argument("--sample-rate", type=int, metavar="HZ", help="sample rate (default: patch, config, env)")
        p.add_argument("--block-size", type=int, metavar="N", help="frames per block (default: patch, config, env)")

    p = sub.add_parser("render", help="render a patch offline to an audio file")
    p.add_argument("patch")
    p.add_argument("-o", "--output", metavar="OUT.wav", help="output file (default: PATCH name .wav)")
    p.add_argument("--seconds", type=float, help="length (default: the MIDI file or input plus --tail, else 5)")
    p.add_argument("--midi", metavar="FILE.mid", help="play a standard MIDI file through the patch")
    p.add_argument("--input", metavar="IN.wav", help="feed io.input from an audio file")
    p.add_argument("--tail", type=float, default=2.0, help="seconds rendered after the MIDI/input ends (2)")
    p.add_argument("--bits", choices=["float", "16", "24", "32"], default="float", help="sample format (float)")
    p.add_argument("--plot", metavar="OUT.png", help="also draw the waveform and spectrogram (needs matplotlib)")
    engine_flags(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("check", help="report every problem, or the compiled order, buffers and latency")
    p.add_argument("patch")
    engine_flags(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("nodes", help="list node types, or describe one")
    p.add_argument("type", nargs="?")
    p.set_defaults(func=cmd_nodes)

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
    p.add_argument("--watch", action="store_true",
                   help="reload the patch file on every save, keeping the state of unchanged nodes (docs/live.md)")
    p.add_argument("--fade", type=float, default=0.05, metavar="S",
                   help="--watch: crossfade for added or removed nodes, in seconds (0.05)")
    p.add_argument("--record", metavar="FILE.wav|.flac", help="also write what is played to this file")
    engine_flags(p)
    p.set_defaults(func=cmd_play)

    p = sub.add_parser("serve", help="play a patch with a control surface in the web browser (docs/serve.md)")
    p.add_argument("patch")
    p.add_argument("--backend", help="jack, sounddevice, or none (a real-time clock, no sound device); "
                                     "default: config, env, sounddevice")
    p.add_argument("--port", type=int, default=0, metavar="N", help="TCP port (default: any free one)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1 only; anything else warns)")
    p.add_argument("--device", help="sounddevice: device number or name; jack: server name")
    p.add_argument("--no-connect", action="store_true", help="jack: do not connect to the physical ports")
    p.add_argument("--fade", type=float, default=0.05, metavar="S",
                   help="crossfade when a saved edit adds or removes nodes, in seconds (0.05)")
    engine_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("graph", help="draw a patch: DOT text, or SVG/PNG through Graphviz")
    p.add_argument("patch")
    p.add_argument("-o", "--output", metavar="OUT.svg|.png|.pdf|.dot",
                   help="file to write; the suffix picks the format (default: DOT text on stdout)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override a parameter or input before drawing; repeatable")
    limit_flags(p)
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("bench", help="measure a patch: real-time factor, CPU per block, cost of every node")
    p.add_argument("patch")
    p.add_argument("--seconds", type=float, default=10.0, help="audio rendered per pass (10)")
    p.add_argument("--notes", type=int, default=0, help="hold this many MIDI notes (voice patches)")
    p.add_argument("--no-fuse", action="store_true",
                   help="one step per node (no kernel fusion), to see every node's own cost")
    engine_flags(p)
    p.set_defaults(func=cmd_bench)
    add_examples_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line, no source line: the message says it all
        return _main(argv)


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"neuralgraph: warning: {message}", file=sys.stderr)


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PatchError as exc:
        _print_problems(exc)
        return EXIT_PATCH
    except PluginError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except NeuralgraphError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
