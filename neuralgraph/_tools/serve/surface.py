"""The control side of ``neuralgraph serve``: what the HTTP API reads and changes.

A :class:`Surface` wraps a playing backend and its patch file. It describes the patch (nodes,
ports, edges, every settable target with its declaration), sets parameters and sends notes
through the engine's command ring, swaps edited patch text in with :meth:`Engine.swap`, and
saves and recalls presets. Every method runs on a control thread; none touches the audio
thread except through the engine's own thread-safe entry points.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError, ParameterError, PatchError, Problem, display_path
from neuralgraph._io.backend import control_priority
from neuralgraph._nodes.ports import Input, Param, Rate
from neuralgraph._patch.patch import Patch

#: Preset names: what is safe in a file name on every system.
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PRESET_SUFFIX = ".preset.toml"


class RequestError(NeuralgraphError):
    """A request the surface refuses; ``status`` is the HTTP status, ``problems`` located details."""

    def __init__(self, message: str, status: int = 400, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


def slider(decl: Input | Param, value: float) -> tuple[float, float, str]:
    """A slider's range and curve ("lin" or "log") from a declaration.

    Declarations give a range when the node has one; an open end gets a range that suits the
    unit (audible frequencies for Hz, 1 ms to 5 s for times), widened to include ``value``.
    """
    lo, hi = decl.min, decl.max
    curve = "lin"
    if decl.unit == "Hz":
        low_freq = 0.0 < value < 20.0  # an LFO rate
        lo = max(lo or 0.0, 0.01 if low_freq else 20.0)
        top = 50.0 if low_freq else 20000.0  # a declared max of 100 kHz makes a poor slider
        hi = min(hi, top) if hi is not None else top
        curve = "log"
    elif decl.unit == "ms" and hi is None:
        lo, hi, curve = max(lo or 0.0, 1.0), 5000.0, "log"
    else:
        span = max(1.0, abs(value) * 2.0)
        lo = lo if lo is not None else (0.0 if value >= 0 and hi is not None and hi > 0 else -span)
        hi = hi if hi is not None else max(span, lo + 1.0)
    if curve == "log" and lo is not None and hi is not None and (lo <= 0 or hi / lo < 10):
        curve = "lin"
    lo, hi = min(lo, value), max(hi, value)
    return float(lo), float(hi), curve


def _describe_param(name: str, decl: Any, spec: Any) -> dict[str, Any]:
    """One parameter of a node in ``GET /api/patch``: its kind, range, liveness and value (a file
    parameter shows only the file's name)."""
    value = spec.params.get(name, decl.init)
    return {
        "name": name,
        "kind": _kind(decl),
        "min": decl.min,
        "max": decl.max,
        "unit": decl.unit,
        "choices": list(decl.choices) if decl.choices else None,
        "live": decl.live,
        "value": _json_value(value) if not decl.path else Path(str(value)).name,
        "doc": decl.doc,
    }


def _kind(decl: Input | Param) -> str:
    if isinstance(decl, Input):
        return "float"
    if decl.kind is str:
        return "choice" if decl.choices else "text"
    return {bool: "bool", int: "int"}.get(decl.kind, "float")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Surface:
    """The patch playing through ``backend``, as the web page and scripts see it.

    ``load(source)`` turns a path or patch text into a checked :class:`Patch` (with the command
    line's overrides and limits); ``fade`` is the crossfade of structural swaps.
    """

    def __init__(
        self, path: str | Path, backend: Any, load: Callable[[str | Path], Patch], *, fade: float = 0.05
    ) -> None:
        self.path = Path(path)
        self.backend = backend
        self.load = load
        self.fade = fade
        self.swaps = 0
        self.failed_swaps = 0

    @property
    def engine(self) -> Any:
        return self.backend.engine

    @property
    def patch(self) -> Patch:
        return self.engine.patch

    # ---- reading --------------------------------------------------------------------------------
    def _declaration(self, target: str) -> tuple[Input | Param, Any]:
        """A settable target's declaration and its value in the patch as written."""
        patch = self.patch
        name, _, key = target.partition(".")
        spec = patch.spec.nodes[name]
        cls = patch.registry.node_class(spec.type)
        params = cls.params()
        if key in params:
            return params[key], spec.params.get(key, params[key].init)
        decl = self.engine.plan.nodes[name].inputs()[key]
        written = spec.inputs.get(key)
        return decl, written.constant if written is not None else decl.init

    def values(self) -> dict[str, Any]:
        """The current value of every settable target (the patch's, then what was set since)."""
        settings = self.engine.settings
        out = {}
        for target in self.engine.targets:
            out[target] = _json_value(settings.get(target, self._declaration(target)[1]))
        return out

    def controls(self) -> list[dict[str, Any]]:
        """One control per settable target, in patch order, with what the page needs to draw it."""
        values = self.values()
        out = []
        for target in self.engine.targets:
            decl, _ = self._declaration(target)
            if isinstance(decl, Input) and decl.rate is Rate.EVENTS:
                continue
            kind = _kind(decl)
            value = values[target]
            item: dict[str, Any] = {
                "target": target,
                "node": target.split(".", 1)[0],
                "name": decl.name or target.split(".", 1)[1],
                "kind": kind,
                "value": value,
                "unit": decl.unit,
                "doc": decl.doc,
                "input": isinstance(decl, Input),
                "min": decl.min,
                "max": decl.max,
            }
            if kind in ("float", "int") and isinstance(value, (int, float)):
                item["slider"] = slider(decl, float(value))
            if kind == "choice":
                item["choices"] = list(decl.choices or ())
            out.append(item)
        return out

    def has_midi(self) -> bool:
        """True when the patch takes the engine's MIDI (an unconnected ``source = "midi"`` input)."""
        patch = self.patch
        for name, spec in patch.spec.nodes.items():
            node = self.engine.plan.nodes.get(name)
            if node is None:
                continue
            for port, decl in node.inputs().items():
                written = spec.inputs.get(port)
                if decl.source == "midi" and (written is None or not written.connected):
                    return True
        return False

    def describe(self) -> dict[str, Any]:
        """``GET /api/patch``: nodes with their ports and parameters, edges, controls."""
        patch, engine = self.patch, self.engine
        topo = patch.topology
        edges = [
            {
                "from": f"{e.src}.{e.src_port}",
                "to": f"{e.dst}.{e.dst_port}",
                "feedback": e.feedback,
                "range": list(e.source.range) if e.source.range else None,
                "curve": e.source.curve,
            }
            for e in topo.edges
        ]
        return {
            "name": patch.name,
            "file": self.path.name,
            "sample_rate": engine.sample_rate,
            "block_size": engine.block_size,
            "channels": engine.channels,
            "output": topo.output_node,
            "midi": self.has_midi(),
            "nodes": [self._describe_node(name, spec) for name, spec in patch.spec.nodes.items()],
            "edges": edges,
            "controls": self.controls(),
        }

    def _describe_node(self, name: str, spec: Any) -> dict[str, Any]:
        """One node of :meth:`describe`: its type, lanes, line, ports and parameters."""
        topo = self.patch.topology
        node = self.engine.plan.nodes.get(name)
        cls = self.patch.registry.node_class(spec.type)
        inputs = node.inputs() if node is not None else {}
        outputs = node.outputs() if node is not None else {}
        return {
            "name": name,
            "type": spec.type,
            "doc": (cls.__doc__ or "").strip().split("\n")[0],
            "lanes": topo.lanes.get(name, 1),
            "line": spec.loc.line,
            "inputs": [
                {
                    "name": p,
                    "rate": d.rate.value,
                    "unit": d.unit,
                    "min": d.min,
                    "max": d.max,
                    "connected": bool(spec.inputs.get(p) and spec.inputs[p].connected),
                }
                for p, d in inputs.items()
            ],
            "outputs": [
                {"name": p, "rate": d.rate.value, "unit": d.unit, "lanes": topo.output_lanes.get(name, {}).get(p, 1)}
                for p, d in outputs.items()
            ],
            "params": [_describe_param(p, d, spec) for p, d in cls.params().items()],
        }

    def status(self) -> dict[str, Any]:
        """``GET /api/status``: rate, block, CPU load, xruns, faults, latency, swaps."""
        s = self.backend.status()
        engine = self.engine
        return {
            "backend": s.backend,
            "running": s.running,
            "sample_rate": s.sample_rate,
            "block_size": s.block_size,
            "period": s.period,
            "callbacks": s.callbacks,
            "load": round(s.load, 4),
            "load_p50": round(s.load_p50, 4),
            "load_p99": round(s.load_p99, 4),
            "load_max": round(s.load_max, 4),
            "xruns": s.xruns,
            "faults": s.faults,
            "node_faults": int(engine.plan.fault_count),
            "silent": s.silent,
            "voices": s.active_voices,
            "latency_frames": int(engine.latency) + s.period,
            "latency_ms": round((int(engine.latency) + s.period) * 1000.0 / s.sample_rate, 2),
            "swaps": self.swaps,
            "failed_swaps": self.failed_swaps,
            "message": s.message,
        }

    def source(self) -> str:
        return self.path.read_text(encoding="utf-8-sig")

    # ---- changing -------------------------------------------------------------------------------
    def set_params(self, values: Any) -> dict[str, Any]:
        """``POST /api/params``: set each target; the first refused one stops and is reported."""
        if not isinstance(values, Mapping) or not values:
            raise RequestError('expected a JSON object of targets and values, e.g. {"osc.freq": 330}')
        engine = self.engine
        for target, value in values.items():
            try:
                engine.set(str(target), value)
            except ParameterError as exc:
                raise self._set_error(str(target), value, exc) from None
        now = self.values()
        return {"values": {k: now.get(k) for k in values}}

    def _set_error(self, target: str, value: Any, exc: ParameterError) -> RequestError:
        """The refusal as ``--set TARGET=VALUE`` words it (the loader's located problem) when the
        loader refuses it too; else the engine's reason (a connected input, a fixed parameter)."""
        from neuralgraph._patch.patch import check_patch

        _, problems = check_patch(self.path, overrides={target: value}, registry=self.patch.registry)
        mine = [p for p in problems if p.path in (target, f"nodes.{target}")]
        if not mine:
            return RequestError(str(exc))
        return RequestError("\n".join(p.format() for p in mine), problems=[_problem(p) for p in mine])

    def note(self, body: Any) -> dict[str, Any]:
        """``POST /api/notes``: ``{"note": 60, "velocity": 100, "on": true, "channel": 0}``."""
        if not isinstance(body, Mapping):
            raise RequestError('expected a JSON object like {"note": 60, "velocity": 100, "on": true}')
        if not self.has_midi():
            raise RequestError(
                f"{self.path.name} takes no MIDI: no node has an unconnected MIDI input "
                "(add a midi.voices node to play it from a keyboard)"
            )
        checks = {"note": (0, 127, None), "velocity": (0, 127, 100), "channel": (0, 15, 0)}
        got: dict[str, int] = {}
        for key, (lo, hi, default) in checks.items():
            value = body.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise RequestError(f"{key}: expected an integer {lo}..{hi}, got {json.dumps(value)}")
            got[key] = value
        on = body.get("on", True)
        if not isinstance(on, bool):
            raise RequestError(f"on: expected true or false, got {json.dumps(on)}")
        if on and got["velocity"] > 0:
            self.engine.note_on(got["note"], got["velocity"], got["channel"])
        else:
            self.engine.note_off(got["note"], 0, got["channel"])
        return {"note": got["note"], "on": on and got["velocity"] > 0}

    def put_source(self, text: str) -> dict[str, Any]:
        """``PUT /api/patch/source``: load ``text``, swap it in, then save it to the patch file.

        A text that does not load, compile or swap changes nothing (the old patch keeps playing)
        and raises :class:`RequestError` with every located problem."""
        try:
            with control_priority():  # parsing holds the GIL the audio callback needs, as compiling does
                patch = self.load(text)
                report = self.engine.swap(patch, fade=self.fade)
        except PatchError as exc:
            self.failed_swaps += 1
            problems = [_problem(p) for p in exc.problems]
            raise RequestError(
                f"{self.path.name} not swapped; still playing the last good version:\n{exc}", problems=problems
            ) from None
        except NeuralgraphError as exc:
            self.failed_swaps += 1
            raise RequestError(f"{self.path.name} not swapped: {exc}") from None
        _write_atomic(self.path, text)
        if report.kept or report.added:
            self.swaps += 1
        return {
            "swapped": bool(report.kept or report.added),
            "report": report.line(),
            "compile_ms": round(report.compile_s * 1000.0, 1),
        }

    # ---- presets --------------------------------------------------------------------------------
    def _preset_path(self, name: str) -> Path:
        if not isinstance(name, str) or not PRESET_NAME.match(name):
            raise RequestError(
                f"preset name {json.dumps(name)}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
            )
        return self.path.with_name(f"{self.path.stem}.{name}{PRESET_SUFFIX}")

    def presets(self) -> list[str]:
        """Preset names saved beside the patch (``PATCH.NAME.preset.toml``), sorted."""
        prefix = self.path.stem + "."
        names = (p.name[len(prefix) : -len(PRESET_SUFFIX)] for p in self.path.parent.glob(f"{prefix}*{PRESET_SUFFIX}"))
        return sorted(n for n in names if PRESET_NAME.match(n))

    def save_preset(self, name: str) -> dict[str, Any]:
        path = self._preset_path(name)
        lines = [
            f"# neuralgraph preset {name!r} for {self.path.name}",
            f"patch = {json.dumps(self.path.name)}",
            "",
            "[values]",
        ]
        for target, value in self.values().items():
            if value is not None:
                lines.append(f"{json.dumps(target)} = {_toml_value(value)}")
        _write_atomic(path, "\n".join(lines) + "\n")
        return {"name": name, "file": path.name}

    def recall_preset(self, name: str) -> dict[str, Any]:
        """Set every value the preset holds; targets the patch no longer has are listed, not fatal."""
        path = self._preset_path(name)
        shown = display_path(path)
        if not path.exists():
            raise RequestError(
                f"no preset {name!r} ({shown} does not exist; saved: {', '.join(self.presets()) or 'none'})", status=404
            )
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8")).get("values")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"{shown}: not a valid preset: {exc}") from None
        if not isinstance(values, dict):
            raise RequestError(f"{shown}: not a valid preset: it has no [values] table")
        applied, skipped = [], []
        for target, value in values.items():
            try:
                self.engine.set(target, value)
                applied.append(target)
            except ParameterError as exc:
                skipped.append({"target": target, "message": f"{shown}: {exc}"})
        return {"name": name, "applied": applied, "skipped": skipped}

    def delete_preset(self, name: str) -> dict[str, Any]:
        path = self._preset_path(name)
        if not path.exists():
            raise RequestError(f"no preset {name!r}", status=404)
        path.unlink()
        return {"name": name, "deleted": True}


def _problem(p: Problem) -> dict[str, Any]:
    return {
        "code": p.code,
        "message": p.message,
        "line": p.line,
        "col": p.col,
        "path": p.path,
        "hint": p.hint,
        "text": p.format(),
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)  # keep the file's permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
