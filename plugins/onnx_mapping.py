"""The ``[nodes.X.tensors.NAME]`` table of ``onnx.model``: what each model tensor is to the patch.

:func:`build_map` reads the node's rate, ``frame_size``, ``context`` and ``tensors`` table against
the model's signature and returns a :class:`ModelMap`: per tensor its role, axes, feature
selection, state partner, constant value and scaling, and the ports it becomes. Without a
table the conventions of earlier versions apply (batch on axis 0, state named
``state_in*``/``state_out*``, time on the last axis), so existing patches are unchanged.

Every mistake raises :class:`MappingError`, which names the key of the table it belongs to
(the loader reports it at that line), the model's actual signature, and a suggestion.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import numpy as np

from neuralgraph.plugin import ParamValueError, did_you_mean

from .onnx_signature import DTYPES, Signature, Tensor

ROLES = ("audio", "control", "state", "constant", "ignore")
KEYS = (
    "role",
    "batch_axis",
    "time_axis",
    "feature_axis",
    "select",
    "output",
    "init",
    "value",
    "interpolate",
    "scale",
    "offset",
)
INTERPOLATIONS = ("hold", "linear")
STATE_IN = "state_in"
STATE_OUT = "state_out"
PORT_ROLES = ("audio", "control")


class MappingError(ParamValueError):
    """A mapping mistake; ``subkey`` is the key path below ``tensors`` (empty: the model itself)."""

    def __init__(self, subkey: tuple[str, ...], message: str, hint: str | None = None) -> None:
        super().__init__("tensors" if subkey else "model", message)
        self.subkey = subkey
        self.hint = hint


def port_name(tensor_name: str) -> str:
    """A snake_case port name for an ONNX tensor name."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", tensor_name).strip("_").lower() or "x"
    return name if name[0].isalpha() else "t_" + name


@attrs.frozen
class TensorMap:
    """One tensor's mapping. Axes are the tensor's own (None: it has no such axis)."""

    tensor: Tensor
    is_input: bool
    role: str
    batch_axis: int | None
    time_axis: int | None = None
    feature_axis: int | None = None
    features: int = 1  # K, the feature axis' size
    select: tuple[int, ...] = (0,)  # 0-based features that have ports
    partner: str | None = None  # state: the output fed back as this input (or the input it feeds)
    init: float | str = 0.0
    value: Any = None
    interpolate: str = "hold"
    scale: float = 1.0
    offset: float = 0.0

    @property
    def name(self) -> str:
        return self.tensor.name

    def ports(self) -> list[tuple[str, int]]:
        """(port name, feature index) for a tensor with ports."""
        if self.role not in PORT_ROLES:
            return []
        base = port_name(self.name)
        if self.features == 1:
            return [(base, 0)]
        return [(f"{base}_{k + 1}", k) for k in self.select]


@attrs.frozen
class ModelMap:
    """The checked mapping of a whole model."""

    rate: str
    hop: int  # samples per call (frame rate); 0: the block size (stream) or one call per block
    context: int
    window: int | None  # static length of the audio inputs' time axis, when the model fixes it
    batched: bool  # lanes run as the batch of one call (else one call per lane)
    inputs: tuple[TensorMap, ...]
    outputs: tuple[TensorMap, ...]

    def in_ports(self) -> list[tuple[str, TensorMap, int]]:
        return [(p, tm, k) for tm in self.inputs for p, k in tm.ports()]

    def out_ports(self) -> list[tuple[str, TensorMap, int]]:
        return [(p, tm, k) for tm in self.outputs for p, k in tm.ports()]


def fits_dtype(value: Any, dtype: np.dtype) -> str | None:
    """Why ``value`` (a number or nested list) cannot be held by ``dtype``, or None when it can."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        return f"{value!r} is not a number"
    if dtype.kind == "b":
        if arr.dtype.kind != "b" and not np.isin(arr, (0, 1)).all():
            return f"a bool tensor holds true/false (or 0/1), not {value!r}"
        return None
    if dtype.kind in "iu":
        if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            return f"an {dtype.name} tensor holds whole numbers, not {value!r}"
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            return f"{value!r} is outside {dtype.name}'s range {info.min}..{info.max}"
        return None
    top = float(np.finfo(dtype).max)
    if arr.size and float(np.max(np.abs(arr.astype(np.float64)))) > top:
        return f"{value!r} is outside {dtype.name}'s range ±{top:g}"
    return None


class _Builder:
    def __init__(
        self, sig: Signature, rate: str, frame_size: int, context: int, tables: dict[str, Any], path: str
    ) -> None:
        self.sig, self.rate, self.frame_size, self.context = sig, rate, frame_size, context
        self.tables, self.path = tables, path
        self.legacy = not tables

    # ---- errors -------------------------------------------------------------------------------
    def fail(self, subkey: tuple[str, ...], problem: str, hint: str | None = None, expected: str | None = None) -> None:
        text = f"model {self.path!r}: {problem}"
        if expected:
            text += f"; rate {self.rate!r} expects {expected}"
        raise MappingError(subkey, f"{text}; the model has {self.sig.text()}", hint)

    def key(self, name: str, key: str) -> tuple[str, ...]:
        """The key path of ``tensors.NAME.KEY`` when the patch wrote it, else of the tensor's table
        (or of the model, for a tensor the patch leaves to the conventions)."""
        table = self.tables.get(name)
        if table is None:
            return ()
        return (name, key) if key in table else (name,)

    # ---- the table ----------------------------------------------------------------------------
    def check_tables(self) -> None:
        names = [t.name for t in self.sig.inputs + self.sig.outputs]
        for name, table in self.tables.items():
            if name not in names:
                self.fail(
                    (name,),
                    f"it has no tensor {name!r}",
                    did_you_mean(name, names) or "list them with `neuralgraph model inspect MODEL`",
                )
            if not isinstance(table, dict):
                self.fail(
                    (name,),
                    f"tensors.{name} must be a table of role, batch_axis, time_axis, ...",
                    f'write [nodes.NODE.tensors.{name}] then role = "..."',
                )
            for key in table:
                if key not in KEYS:
                    self.fail((name, key), f"unknown key {key!r} for tensor {name!r}", did_you_mean(key, KEYS))
            role = table.get("role")
            if role is not None and role not in ROLES:
                self.fail(
                    (name, "role"), f"role {role!r} of tensor {name!r} is not a role", "valid: " + ", ".join(ROLES)
                )
            is_input = name in [t.name for t in self.sig.inputs]
            for key in ("output", "init", "value") if not is_input else ():
                if key in table:
                    self.fail(
                        (name, key),
                        f"{key!r} belongs to an input tensor; {name!r} is an output",
                        "put it in the table of the state or constant input",
                    )
            if "output" in table and not isinstance(table["output"], str):
                self.fail(
                    (name, "output"),
                    f"output = {table['output']!r} must be the name of a model output",
                    "valid: " + ", ".join(f'"{t.name}"' for t in self.sig.outputs),
                )
            if "interpolate" in table and table["interpolate"] not in INTERPOLATIONS:
                self.fail(
                    (name, "interpolate"),
                    f"interpolate = {table['interpolate']!r} is not known",
                    'valid: "hold", "linear"',
                )
            for key in ("scale", "offset"):
                v = table.get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                    self.fail((name, key), f"{key} of tensor {name!r} must be a finite number, not {v!r}")

    def roles(self) -> dict[str, str]:
        """Each tensor's role: the table's, else state by name or pairing, else by rate."""
        roles: dict[str, str] = {}
        for name, table in self.tables.items():
            if "role" in table:
                roles[name] = table["role"]
        for name, table in self.tables.items():  # outputs named by a state input are state
            out = table.get("output")
            if isinstance(out, str) and out in [t.name for t in self.sig.outputs]:
                roles.setdefault(out, "state")
        default = "control" if self.rate == "block" else "audio"
        for t in self.sig.inputs:
            roles.setdefault(t.name, "state" if t.name.startswith(STATE_IN) else default)
        for t in self.sig.outputs:
            roles.setdefault(t.name, "state" if t.name.startswith(STATE_OUT) else default)
        return roles

    def axis(self, t: Tensor, key: str, value: Any) -> int | None:
        rank = len(t.shape)
        if value == "none" and key == "batch_axis":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not -rank <= value < rank:
            valid = f"0..{rank - 1}" if rank else "none (the tensor is a scalar)"
            extra = ' or "none"' if key == "batch_axis" and rank else ""
            self.fail(
                self.key(t.name, key) or (t.name, key),
                f"{key} = {value!r} is out of range for {t.named_text()} (rank {rank})",
                f"valid: {valid}{extra}",
            )
        return value % rank

    # ---- one tensor ---------------------------------------------------------------------------
    def tensor(self, t: Tensor, is_input: bool, role: str) -> TensorMap:
        table = self.tables.get(t.name, {})
        if t.dtype is None:
            self.fail(
                self.key(t.name, "role"),
                f"tensor {t.name!r} is {t.type}",
                "supported: " + ", ".join(k.replace("tensor(", "").rstrip(")") for k in DTYPES),
            )
        batch, table = self.batch_axis(t, is_input, table)
        if role in ("state", "constant", "ignore"):
            return self.no_ports(t, is_input, role, batch, table)
        time = self.axis(t, "time_axis", table["time_axis"]) if "time_axis" in table else None
        feature = self.axis(t, "feature_axis", table["feature_axis"]) if "feature_axis" in table else None
        time = self.time_axis(t, role, time, batch, feature)
        axes = [a for a in (batch, time, feature) if a is not None]
        if len(set(axes)) != len(axes):
            self.fail(
                self.key(t.name, "role"),
                f"tensor {t.name!r} uses one axis for two purposes (batch {batch}, time {time}, feature {feature})",
                "give batch_axis, time_axis and feature_axis different axes",
            )
        if feature is None:
            feature = self.implied_feature_axis(t, role, batch, time)
        elif t.shape[feature] is None:
            self.fail(
                self.key(t.name, "feature_axis"),
                f"feature axis {feature} of {t.named_text()} is dynamic",
                "a feature axis needs a static size (it becomes that many ports)",
            )
        k = 1 if feature is None else int(t.shape[feature])
        interpolate = table.get("interpolate", "hold")
        return TensorMap(
            t,
            is_input,
            role,
            batch,
            time,
            feature,
            k,
            self.selection(t, table, k),
            interpolate=interpolate,
            scale=float(table.get("scale", 1.0)),
            offset=float(table.get("offset", 0.0)),
        )

    def batch_axis(self, t: Tensor, is_input: bool, table: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        """The tensor's batch axis (given, else its state input's, else 0 from rank 2), checked to
        hold one item; and its table, with the batch axis a state output takes from its input."""
        if "batch_axis" not in table and not is_input:  # a state output takes its input's batch axis
            fed = [tb for tb in self.tables.values() if isinstance(tb, dict) and tb.get("output") == t.name]
            if fed and "batch_axis" in fed[0]:
                table = {**table, "batch_axis": fed[0]["batch_axis"]}
        rank = len(t.shape)
        batch = self.axis(t, "batch_axis", table["batch_axis"]) if "batch_axis" in table else (0 if rank >= 2 else None)
        if batch is not None and t.shape[batch] not in (None, 1):
            self.fail(
                self.key(t.name, "batch_axis"),
                f"axis {batch} of {t.named_text()} is taken as the batch but has size {t.shape[batch]}",
                'set batch_axis to the axis that holds the batch (size 1 or dynamic), or "none"',
            )
        return batch, table

    def time_axis(self, t: Tensor, role: str, time: int | None, batch: int | None, feature: int | None) -> int | None:
        """The time axis: ``time`` as given, or for audio the last axis longer than 1 that is not
        batch or feature; checked against the role (audio needs one and a rate that streams,
        control one frame)."""
        if role == "audio":
            if self.rate == "block":
                self.fail(
                    self.key(t.name, "role"),
                    f"tensor {t.name!r} has role audio but rate 'block' calls the model once per block",
                    'use role = "control", or rate = "stream" / "frame" for audio tensors',
                )
            if time is None:
                candidates = [a for a in range(len(t.shape)) if a not in (batch, feature) and t.shape[a] != 1]
                if not candidates:
                    self.fail(
                        self.key(t.name, "role"),
                        f"role audio does not fit {t.named_text()}: it has no time axis",
                        'set time_axis, or role = "control" for one value per call',
                    )
                time = candidates[-1]
        elif time is not None and t.shape[time] not in (None, 1):
            self.fail(
                self.key(t.name, "time_axis"),
                f"role control takes one value per call, but time axis {time} of {t.named_text()} has "
                f"{t.shape[time]} frames",
                'use role = "audio"',
            )
        return time

    def implied_feature_axis(self, t: Tensor, role: str, batch: int | None, time: int | None) -> int | None:
        """Without ``feature_axis``: the one remaining axis longer than 1 (it must be static), or none."""
        rest = [a for a in range(len(t.shape)) if a not in (batch, time)]
        big = [a for a in rest if t.shape[a] is None or t.shape[a] > 1]
        if any(t.shape[a] is None for a in big):
            axis = next(a for a in big if t.shape[a] is None)
            self.fail(
                self.key(t.name, "role"),
                f"{t.name!r} has a dynamic feature axis (axis {axis})",
                "export the model with a static size on that axis, or set time_axis to it",
                expected="[batch, K] with K static" if self.rate == "block" and self.legacy else None,
            )
        if len(big) > 1:
            self.fail(
                self.key(t.name, "role"),
                f"role {role} does not fit {t.named_text()}: axes {big} are all larger than 1",
                "name the feature axis (feature_axis = N) and the time axis (time_axis = N)",
            )
        return big[0] if big else None

    def selection(self, t: Tensor, table: dict[str, Any], k: int) -> tuple[int, ...]:
        """The features ``select`` keeps (0-based), all ``k`` by default."""
        if "select" not in table:
            return tuple(range(k))
        sel = table["select"]
        if (
            not isinstance(sel, list)
            or not sel
            or any(isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= k for i in sel)
        ):
            self.fail(
                (t.name, "select"),
                f"select = {sel!r} must list features of {t.name!r} in 1..{k}",
                f"e.g. select = [1, {k}]",
            )
        return tuple(sorted({i - 1 for i in sel}))

    def no_ports(self, t: Tensor, is_input: bool, role: str, batch: int | None, table: dict[str, Any]) -> TensorMap:
        if role == "constant":
            if not is_input:
                self.fail(
                    self.key(t.name, "role"),
                    f"output {t.name!r} cannot be a constant",
                    'use role = "ignore" for an output the patch does not need',
                )
            if "value" not in table:
                self.fail(
                    self.key(t.name, "role"),
                    f"constant {t.name!r} has no value",
                    f"add value = ... (a number, a list, or a .npy file) for {t.named_text()}",
                )
            self.check_value(t, "value", table["value"])
            return TensorMap(t, is_input, role, batch, value=table["value"])
        if role == "state" and is_input:
            init = table.get("init", 0.0)
            self.check_value(t, "init", init)
            return TensorMap(t, is_input, role, batch, init=init)
        return TensorMap(t, is_input, role, batch)

    def check_value(self, t: Tensor, key: str, value: Any) -> None:
        if isinstance(value, str):
            if not value.endswith(".npy"):
                self.fail(
                    (t.name, key),
                    f"{key} = {value!r} must be a number, a list or a .npy file",
                    "a .npy file is read from beside the patch",
                )
            return
        problem = fits_dtype(value, t.dtype)
        if problem:
            self.fail((t.name, key), f"{key} for {t.named_text()}: {problem}", f"write a value that fits {t.type_name}")
        shape = np.shape(value)
        try:
            np.broadcast_shapes(shape, tuple(1 if d is None else d for d in t.shape))
        except ValueError:
            self.fail(
                (t.name, key),
                f"{key} has shape {list(shape)}, which does not fit {t.named_text()}",
                "give a single number, or a list shaped like the tensor",
            )

    # ---- pairs and the whole ------------------------------------------------------------------
    def pair_states(self, maps: dict[str, TensorMap]) -> dict[str, TensorMap]:
        outputs = {t.name: t for t in self.sig.outputs}
        claimed: dict[str, str] = {}
        unpaired = []
        for t in self.sig.inputs:
            tm = maps[t.name]
            if tm.role != "state":
                continue
            out = self.state_output(t, outputs)
            if out is None:  # a legacy model's unnamed state: reported with the others below
                unpaired.append(t.name)
                continue
            if out in claimed:
                self.fail((t.name, "output"), f"output {out!r} already feeds state {claimed[out]!r}")
            claimed[out] = t.name
            self.check_pair(t, tm, outputs[out], maps[out])
            maps[t.name] = attrs.evolve(tm, partner=out)
            maps[out] = attrs.evolve(maps[out], partner=t.name)
        for o in self.sig.outputs:
            if maps[o.name].role == "state" and o.name not in claimed:
                unpaired.append(o.name)
        if unpaired:
            self.report_unpaired(unpaired)
        return maps

    def state_output(self, t: Tensor, outputs: dict[str, Tensor]) -> str | None:
        """The output that feeds state input ``t`` back: its ``output``, else ``state_out<suffix>``
        for ``state_in<suffix>``; None for a legacy model that names none."""
        out = self.tables.get(t.name, {}).get("output")
        if out is None:
            suffix = t.name[len(STATE_IN) :] if t.name.startswith(STATE_IN) else None
            out = STATE_OUT + suffix if suffix is not None and STATE_OUT + suffix in outputs else None
        if out is None:
            if self.legacy:
                return None
            same = [o.name for o in self.sig.outputs if o.shape == t.shape]
            self.fail(
                self.key(t.name, "role"),
                f"state {t.name!r} names no output to feed back",
                f'add output = "{same[0] if same else self.sig.outputs[0].name}"',
            )
        if out not in outputs:
            self.fail(
                (t.name, "output"), f"state {t.name!r}: the model has no output {out!r}", did_you_mean(out, outputs)
            )
        return out

    def check_pair(self, t: Tensor, tm: TensorMap, tout: Tensor, out_map: TensorMap) -> None:
        """State input ``t`` and the output ``tout`` feeding it: a state too, same shape and dtype."""
        out = tout.name
        if out_map.role != "state":
            self.fail(
                (t.name, "output"),
                f"state {t.name!r} is fed by {out!r}, whose role is {out_map.role}",
                f'give {out!r} role = "state" (or leave its role out)',
            )
        ours = [d for a, d in enumerate(t.shape) if a != tm.batch_axis]
        theirs = [d for a, d in enumerate(tout.shape) if a != out_map.batch_axis]
        if len(ours) != len(theirs) or any(a is not None and b is not None and a != b for a, b in zip(ours, theirs)):
            self.fail(
                self.key(t.name, "output"),
                f"state {t.named_text()} is fed by {tout.named_text()}, whose shape differs",
                "pair each state input with the output of the same shape (and batch_axis on both)",
            )
        if t.type != tout.type:
            self.fail(
                self.key(t.name, "output"),
                f"state {t.name!r} is {t.type_name} but {out!r} is {tout.type_name}",
                "a state's output must have its dtype",
            )

    def report_unpaired(self, unpaired: list[str]) -> None:
        """Fail for state tensors without a partner (all of them named, for a legacy model)."""
        if self.legacy:
            self.fail(
                (),
                f"unpaired state tensor(s) {', '.join(sorted(unpaired))}",
                'name the pair in the patch: [nodes.NODE.tensors.IN] role = "state", output = "OUT"',
                expected="each state_in<suffix> input to have a state_out<suffix> output of the same shape",
            )
        name = unpaired[0]
        self.fail(
            self.key(name, "role"),
            f"state output {name!r} is fed back to no input",
            f'name it in its input\'s table: output = "{name}", or give it role = "ignore"',
        )

    def build(self) -> ModelMap:
        if self.rate == "block" and self.context:
            raise MappingError((), "context (look-behind samples) needs rate 'frame' or 'stream'")
        self.check_tables()
        if not self.sig.outputs:
            self.fail((), "it has no outputs", "a model needs at least one output")
        roles = self.roles()
        maps = {t.name: self.tensor(t, True, roles[t.name]) for t in self.sig.inputs}
        maps.update({t.name: self.tensor(t, False, roles[t.name]) for t in self.sig.outputs})
        maps = self.pair_states(maps)
        inputs = tuple(maps[t.name] for t in self.sig.inputs)
        outputs = tuple(maps[t.name] for t in self.sig.outputs)
        if not any(tm.role in PORT_ROLES for tm in outputs):
            self.fail(
                (),
                "every output is state or ignored",
                "give at least one output role audio or control",
                expected="at least one signal output" if self.legacy else None,
            )
        batched = self.batching(inputs + outputs)
        window, hop = self.window(inputs, outputs)
        for ports in (
            [p for p, _, _ in ModelMap(self.rate, 0, 0, 0, batched, inputs, ()).in_ports()],
            [p for p, _, _ in ModelMap(self.rate, 0, 0, 0, batched, (), outputs).out_ports()],
        ):
            dup = sorted({p for p in ports if ports.count(p) > 1})
            if dup:
                self.fail((), f"two tensors map to the same port name {dup[0]!r}", "rename a tensor in the model")
        return ModelMap(self.rate, hop, self.context, window, batched, inputs, outputs)

    def batching(self, maps: tuple[TensorMap, ...]) -> bool:
        """One call for all lanes when every signal and state tensor has a dynamic batch axis."""
        active = [tm for tm in maps if tm.role in ("audio", "control", "state")]
        return bool(active) and all(
            tm.batch_axis is not None and tm.tensor.shape[tm.batch_axis] is None for tm in active
        )

    def window(self, inputs: tuple[TensorMap, ...], outputs: tuple[TensorMap, ...]) -> tuple[int | None, int]:
        """The static audio window (context + hop) and the hop, checked against frame_size."""
        audio = [tm for tm in inputs if tm.role == "audio"]
        sizes = sorted({tm.tensor.shape[tm.time_axis] for tm in audio} - {None})
        if len(sizes) > 1:
            self.fail(
                self.key(audio[0].name, "time_axis"),
                f"the audio inputs' time axes differ ({sizes})",
                "every audio input takes the same window",
                expected="one frame size on every signal tensor",
            )
        window = sizes[0] if sizes else None
        if self.rate == "stream":
            return window, 0
        if self.rate == "block":
            return None, 0
        if window is None and not audio:  # only outputs: their length, when the inputs fix none
            outs = sorted({tm.tensor.shape[tm.time_axis] for tm in outputs if tm.role == "audio"} - {None})
            window = outs[0] if len(outs) == 1 and not self.frame_size else None
        hop = self.frame_size
        if window is not None:
            if hop and window != hop + self.context:
                what = f"frame_size = {hop}" + (f" + context = {self.context}" if self.context else "")
                self.fail(
                    self.key(audio[0].name, "time_axis") if audio else (),
                    f"its frame axis is {window} but {what}",
                    f"set frame_size = {window - self.context}"
                    if window > self.context
                    else "the window must be longer than the context",
                    expected=f"[batch, {hop + self.context}]",
                )
            hop = hop or window - self.context
            if hop <= 0:
                self.fail(
                    (), f"its window of {window} samples leaves no hop after context = {self.context}", "lower context"
                )
        if not hop:
            self.fail(
                (),
                "its frame axis is dynamic and frame_size is 0",
                "set frame_size (the hop in samples)",
                expected="a frame_size parameter or a static frame axis",
            )
        return window, hop


def build_map(sig: Signature, rate: str, frame_size: int, context: int, tables: dict[str, Any], path: str) -> ModelMap:
    """Check the mapping of ``sig``; :class:`MappingError` at the table key that is wrong."""
    return _Builder(sig, rate, frame_size, context, tables, path).build()
