"""``neuralgraph model inspect MODEL.onnx [--patch FILE]``: a model's signature and the mapping
``onnx.model`` would need, guessed from shapes, names and a few probe calls; with ``--patch`` a
runnable ``io.input -> model -> io.output`` patch with a comment on every guess.

Guesses: an input and an output of the same static shape with similar names are a state pair
(``state``/``stateN``, ``h0``/``hn``); an integer or bool scalar is a constant (a sample rate
when named so); a tensor with a dynamic axis besides the batch, or an input with a static axis of
at least 64, is audio (time on that axis); the rest is control. Models with a dynamic time axis are
called with zeros at a few lengths: the shortest length that runs gives the hop when the model
needs multiples (``[1, 1, T]`` with a compression ratio), and an output shorter than its input by
a constant gives the look-behind (``context``).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .onnx_mapping import port_name
from .onnx_signature import Signature, Tensor, open_session, quiet_run_options, read_signature

WINDOW_MIN = 64  #: a static axis at least this long on an input is taken as a window of samples
PROBE_LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
BATCH_NAMES = re.compile(r"^(batch|batch_size|n|b|bs|N|B)$|batch", re.IGNORECASE)
RATE_NAMES = re.compile(r"(^|_)(sr|sample_?rate|rate|fs)($|_)", re.IGNORECASE)


@attrs.define
class Guess:
    """What one tensor is taken to be, and why."""

    tensor: Tensor
    is_input: bool
    role: str = "control"
    batch_axis: int | None = None
    time_axis: int | None = None
    feature_axis: int | None = None
    partner: str | None = None
    value: Any = None
    why: str = ""


@attrs.define
class Report:
    path: Path
    signature: Signature
    opset: str
    size: int
    guesses: list[Guess]
    rate: str = "block"
    frame_size: int = 0
    context: int = 0
    rate_why: str = ""
    sample_rate: int = 48000

    def guess(self, name: str) -> Guess:
        return next(g for g in self.guesses if g.tensor.name == name)


def _opset(path: Path) -> str:
    try:
        import onnx
    except ImportError:  # an optional dependency: the signature comes from onnxruntime anyway
        return "unknown (pip install onnx to read it)"
    model = onnx.load(str(path), load_external_data=False)
    sets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return f"{sets}; IR {model.ir_version}" + (f"; producer {model.producer_name}" if model.producer_name else "")


def _batch_axis(t: Tensor) -> int | None:
    for a, name in enumerate(t.dims):
        if name and BATCH_NAMES.search(name):
            return a
    if len(t.shape) >= 2 and t.shape[0] in (None, 1):
        return 0
    return None


def _similar(a: str, b: str) -> float:
    def norm(s: str) -> str:
        return re.sub(r"(_?(in|out|0|n|new|next|prev)$)", "", s.lower())

    if norm(a) == norm(b):
        return 1.0
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _pairs(sig: Signature) -> dict[str, tuple[str, float]]:
    """State pairs: equal shapes (static besides the batch) and similar names, best first."""
    scored = []
    for i in sig.inputs:
        for o in sig.outputs:
            if i.shape != o.shape or i.type != o.type or len(i.shape) == 0:
                continue
            b = _batch_axis(i)
            if any(d is None for a, d in enumerate(i.shape) if a != b):
                continue
            score = _similar(i.name, o.name)
            if score >= 0.5 or "state" in i.name.lower():
                scored.append((score, i.name, o.name))
    pairs: dict[str, tuple[str, float]] = {}
    used: set[str] = set()
    for score, i, o in sorted(scored, reverse=True):
        if i not in pairs and o not in used:
            pairs[i] = (o, score)
            used.add(o)
    return pairs


def _signal(g: Guess, window_inputs: bool) -> None:
    """Audio or control, and the axes, for a float tensor that is not state or constant."""
    t = g.tensor
    g.batch_axis = _batch_axis(t)
    rest = [a for a in range(len(t.shape)) if a != g.batch_axis]
    dynamic = [a for a in rest if t.shape[a] is None]
    big = [a for a in rest if t.shape[a] is not None and t.shape[a] > 1]
    if dynamic:
        g.role, g.time_axis = "audio", dynamic[-1]
        g.why = f"axis {g.time_axis} ({t.dim_text(g.time_axis)}) is dynamic: samples"
    elif g.is_input and any(t.shape[a] >= WINDOW_MIN for a in big):
        g.role, g.time_axis = "audio", max(big, key=lambda a: t.shape[a])
        g.why = f"axis {g.time_axis} holds a window of {t.shape[g.time_axis]} samples"
    elif not g.is_input and len(big) >= 2:
        g.role, g.time_axis, g.feature_axis = "audio", big[0], big[1]
        g.why = (
            f"{t.shape[big[0]]} frames of {t.shape[big[1]]} features per call (time axis {big[0]}, "
            f"feature axis {big[1]}), held over the hop"
        )
    elif not g.is_input and len(big) == 1 and len(t.shape) >= 3:
        g.role, g.time_axis = "audio", big[0]
        g.why = f"{t.shape[big[0]]} frames per call on axis {big[0]}, held over the hop"
    else:
        g.role = "control"
        g.feature_axis = big[0] if big else None
        k = t.shape[big[0]] if big else 1
        g.why = "one value per call" if k == 1 else f"{k} values per call (ports {port_name(t.name)}_1..{k})"
        if window_inputs and not g.is_input:
            g.why += ", held over the hop"
    if g.batch_axis is not None:
        g.why += f"; batch on axis {g.batch_axis} ({t.dim_text(g.batch_axis)})"
    elif t.shape:
        g.why += "; no batch axis (one call per lane)"


def inspect_model(path: str | Path) -> Report:
    """Read ``path`` and guess the mapping (probing the model with zeros when its time axis is dynamic)."""
    path = Path(path)
    session = open_session(str(path))
    sig = read_signature(session)
    pairs = _pairs(sig)
    partners = {o: i for i, (o, _) in pairs.items()}
    guesses: list[Guess] = []
    sample_rate = 48000
    for t in sig.inputs:
        g = Guess(t, True)
        if t.name in pairs:
            out, score = pairs[t.name]
            g.role, g.partner, g.batch_axis = "state", out, _batch_axis(t)
            g.why = (
                f"fed back from {out!r} (same shape {t.named_text().split(' ', 2)[2]}, names "
                f"{'alike' if score >= 0.99 else f'{score:.0%} alike'})"
            )
            if g.batch_axis is not None:
                g.why += f"; batch on axis {g.batch_axis} ({t.dim_text(g.batch_axis)})"
        elif t.dtype is not None and t.dtype.kind in "iub" and int(np.prod([d or 1 for d in t.shape])) == 1:
            g.role = "constant"
            if RATE_NAMES.search(t.name):
                g.value, sample_rate = 16000, 16000
                g.why = "an integer scalar named like a sample rate: the patch runs at 16000 Hz"
            else:
                g.value = 0
                g.why = "an integer scalar is a setting: check its value"
        else:
            _signal(g, False)
        guesses.append(g)
    windows = any(g.role == "audio" and g.tensor.shape[g.time_axis] is not None for g in guesses)
    for t in sig.outputs:
        g = Guess(t, False)
        if t.name in partners:
            g.role, g.partner, g.batch_axis = "state", partners[t.name], _batch_axis(t)
            g.why = f"fed back as {partners[t.name]!r}"
        else:
            _signal(g, windows)
        guesses.append(g)
    report = Report(path, sig, _opset(path), path.stat().st_size, guesses, sample_rate=sample_rate)
    _rate(report, session)
    return report


def _feeds(report: Report, length: int) -> dict[str, np.ndarray]:
    feeds = {}
    for g in report.guesses:
        if not g.is_input:
            continue
        shape = [
            length if a == g.time_axis and d is None else (1 if d is None else d) for a, d in enumerate(g.tensor.shape)
        ]
        feeds[g.tensor.name] = np.full(shape, g.value or 0, g.tensor.dtype)
    return feeds


def _rate(report: Report, session: Any) -> None:
    audio_in = [g for g in report.guesses if g.is_input and g.role == "audio"]
    if not audio_in:
        report.rate, report.rate_why = "block", "no audio input: one call per block, control ports"
        return
    static = {g.tensor.shape[g.time_axis] for g in audio_in} - {None}
    if static:
        report.rate, report.frame_size = "frame", min(static)
        report.rate_why = (
            f"the audio input takes a window of {report.frame_size} samples: one call per "
            f"{report.frame_size} (if part of it is look-behind, set context to it and "
            f"frame_size to the rest)"
        )
        return
    outputs = [g for g in report.guesses if not g.is_input and g.role == "audio" and g.time_axis is not None]
    quiet = quiet_run_options()  # a refused length is expected here, not an error to print
    for length in PROBE_LENGTHS:
        try:
            got = session.run([g.tensor.name for g in outputs], _feeds(report, length), quiet)
        except Exception:  # noqa: BLE001 - a length the model refuses: try a longer one
            continue
        shorter = {length - a.shape[g.time_axis] for g, a in zip(outputs, got)}
        if len(shorter) == 1 and 0 < next(iter(shorter)) < length:
            report.context = next(iter(shorter))
            report.rate_why = (
                f"the output is {report.context} samples shorter than the input: "
                f"context = {report.context} samples of look-behind"
            )
        if length == PROBE_LENGTHS[0]:
            report.rate = "stream"
            report.rate_why = "a dynamic time axis: one call per block" + (
                f"; {report.rate_why}" if report.rate_why else ""
            )
        else:
            report.rate, report.frame_size = "frame", length
            report.rate_why = (
                f"the model runs on {length} samples but not on fewer (a compression ratio): one call per {length}"
            )
        return
    report.rate, report.rate_why = "stream", "the probe calls failed; check the mapping by hand"


def format_report(report: Report) -> str:
    lines = [f"{report.path.name}: {report.size / 1024:.1f} KB, opset {report.opset}"]
    width = max(len(g.tensor.name) for g in report.guesses)
    for title, is_input in (("inputs", True), ("outputs", False)):
        lines.append(f"{title}:")
        for g in (g for g in report.guesses if g.is_input is is_input):
            t = g.tensor
            shape = "[" + ", ".join(t.dim_text(a) for a in range(len(t.shape))) + "]"
            extra = f" = {g.value}" if g.role == "constant" else ""
            lines.append(f"  {t.name:<{width}}  {t.type_name:<8} {shape:<20} guess: {g.role}{extra} — {g.why}")
    rate = f"rate = {report.rate!r}"
    if report.frame_size:
        rate += f", frame_size = {report.frame_size}"
    if report.context:
        rate += f", context = {report.context}"
    lines.append(f"guess: {rate} — {report.rate_why}")
    return "\n".join(lines)


def _axis(value: int | None) -> str:
    return '"none"' if value is None else str(value)


def patch_text(report: Report, patch_path: Path) -> str:
    """A runnable patch for the report's model, with a comment on every guess."""
    rel = Path(os.path.relpath(report.path.resolve(), patch_path.resolve().parent)).as_posix()
    audio_in = [g for g in report.guesses if g.is_input and g.role == "audio"]
    outs = [g for g in report.guesses if not g.is_input and g.role in ("audio", "control")]
    main = next((g for g in outs if g.role == "audio"), outs[0] if outs else None)
    lanes = 1
    w = []
    w.append(f"# Written by `neuralgraph model inspect {report.path.name} --patch {patch_path.name}`.")
    w.append("# Every line marked `guess:` was inferred from the model's signature: check it.")
    w.append("schema = 1")
    w.append(f'name = "{report.path.stem}"')
    w.append("")
    w.append("[engine]")
    w.append(
        f"sample_rate = {report.sample_rate}"
        + ("  # guess: the model takes a sample rate of 16000" if report.sample_rate != 48000 else "")
    )
    w.append("block_size = 128")
    w.append("")
    if audio_in:
        w += ["[nodes.src]", 'type = "io.input"', f"channels = {lanes}", ""]
    w += [
        "[nodes.model]",
        'type = "onnx.model"',
        f'model = "{rel}"',
        f'rate = "{report.rate}"  # guess: {report.rate_why}',
    ]
    if report.frame_size:
        w.append(f"frame_size = {report.frame_size}  # guess: samples per call (the hop)")
    if report.context:
        w.append(f"context = {report.context}  # guess: look-behind samples the model consumes")
    for g in audio_in:
        for p in _ports(g):
            w.append(f'{p} = "src"  # the model\'s audio input, fed by io.input')
    for g in report.guesses:
        w.append("")
        w.append(f"[nodes.model.tensors.{_key(g.tensor.name)}]")
        w.append(f'role = "{g.role}"  # guess: {g.why}')
        if g.role != "constant":
            w.append(f"batch_axis = {_axis(g.batch_axis)}")
        if g.time_axis is not None:
            w.append(f"time_axis = {g.time_axis}")
        if g.feature_axis is not None:
            w.append(f"feature_axis = {g.feature_axis}")
        if g.role == "state" and g.is_input:
            w.append(f'output = "{g.partner}"')
            w.append("init = 0.0")
        if g.role == "constant":
            w.append(f"value = {g.value}")
    w.append("")
    w += ["[nodes.out]", 'type = "io.output"', f"channels = {lanes}"]
    if main is not None:
        w.append(f'in = "model.{_ports(main)[0]}"  # the first {main.role} output')
    return "\n".join(w) + "\n"


def _ports(g: Guess) -> list[str]:
    base = port_name(g.tensor.name)
    k = 1 if g.feature_axis is None else g.tensor.shape[g.feature_axis]
    return [base] if k == 1 else [f"{base}_{i + 1}" for i in range(k)]


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else '"' + name.replace('"', '\\"') + '"'
