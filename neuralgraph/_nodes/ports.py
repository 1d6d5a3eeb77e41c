"""Declarations of a node's signal inputs, outputs and parameters.

A node class declares them as class attributes::

    class Saw(Node):
        type_name = "osc.saw"
        freq = Input(init=440.0, min=0.0, unit="Hz", doc="Frequency.")
        out = Output(span=(-1.0, 1.0))
        amp = Param(init=1.0, min=0.0, max=1.0)

*Inputs* carry signals: in a patch each takes a constant, a connection or a mapping, and inside
``process`` each arrives as a read-only array. *Parameters* configure the node (a count, a
waveform name, a file, a time in ms); inside the node they are plain attributes.
"""

from __future__ import annotations

import enum
import keyword
import math
from typing import Any

import attrs

#: The largest finite float32: signal values, constants included, must fit.
FLOAT32_MAX = 3.4028234663852886e38


class Rate(enum.Enum):
    """How often a signal has a new value."""

    AUDIO = "audio"  #: one value per frame: arrays of shape (lanes, frames)
    CONTROL = "control"  #: one value per block: arrays of shape (lanes, 1), which broadcast
    EVENTS = "events"  #: timed events (MIDI notes, triggers) in an EventBuffer


def _rate(value: Rate | str) -> Rate:
    return value if isinstance(value, Rate) else Rate(value)


def port_name(attribute: str) -> str:
    """The port name for a class attribute: ``in_`` declares the port ``in``."""
    if attribute.endswith("_") and keyword.iskeyword(attribute[:-1]):
        return attribute[:-1]
    return attribute


def _span(value: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    return (lo, hi)


@attrs.frozen(kw_only=True)
class Input:
    """A signal input.

    ``init`` is its value when the patch leaves it unset; ``min``/``max`` bound constants given in
    a patch or through ``Engine.set``; a constant changed while running ramps over ``ramp_ms``.
    ``source = "midi"`` on an events input means that, unconnected, it receives the engine's MIDI.
    """

    rate: Rate = attrs.field(default=Rate.AUDIO, converter=_rate)
    init: float = 0.0
    min: float | None = None
    max: float | None = None
    unit: str = ""
    ramp_ms: float = 20.0
    doc: str = ""
    source: str | None = None
    name: str = ""  # filled in from the attribute name

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", port_name(name))

    def check(self, value: float) -> str | None:
        """Why ``value`` is not a valid constant for this input, or None when it is."""
        try:
            value = float(value)
        except OverflowError:  # an integer beyond any float
            return f"must be a number within ±{FLOAT32_MAX:.4g} (signals are float32)"
        if not math.isfinite(value):
            return "must be a finite number"
        if abs(value) > FLOAT32_MAX:  # signals are float32: a larger constant would become inf
            return f"must be a number within ±{FLOAT32_MAX:.4g} (signals are float32)"
        if self.min is not None and value < self.min:
            return f"must be >= {self.min:g}{(' ' + self.unit) if self.unit else ''}"
        if self.max is not None and value > self.max:
            return f"must be <= {self.max:g}{(' ' + self.unit) if self.unit else ''}"
        return None


@attrs.frozen(kw_only=True)
class Output:
    """A signal output. ``span`` is the range its values normally cover, used by mappings."""

    rate: Rate = attrs.field(default=Rate.AUDIO, converter=_rate)
    span: tuple[float, float] = attrs.field(default=(-1.0, 1.0), converter=_span)
    unit: str = ""
    doc: str = ""
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", port_name(name))


class ParamTypeError(ValueError):
    """A parameter value of the wrong kind (a string where a number belongs, say)."""


class ParamRangeError(ValueError):
    """A parameter value of the right kind but outside its range or choices."""


class ParamValueError(ValueError):
    """A node's constructor refuses one parameter's value (a file that is not a model, say).

    ``param`` names it, so that the loader reports the problem at that key's line rather than
    at the node's table.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


_KINDS: dict[type, str] = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}


@attrs.frozen(kw_only=True)
class Param:
    """A parameter: configuration read by the node as a plain attribute.

    ``kind`` is float, int, str or bool. ``choices`` restricts strings. ``path = True`` marks a
    file name, resolved relative to the patch file. ``live = False`` marks parameters that shape
    ports or buffers (a voice count, a model file): they cannot change while the engine runs.
    """

    init: Any
    kind: type = float
    min: float | None = None
    max: float | None = None
    unit: str = ""
    choices: tuple[str, ...] | None = None
    path: bool = False
    live: bool = True
    ramp_ms: float = 0.0
    doc: str = ""
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # Class access returns the declaration; instance values live in the instance __dict__,
        # which wins over this non-data descriptor, so reading a parameter in process() is fast.
        if instance is None:
            return self
        return self.init

    def coerce(self, value: Any) -> Any:
        """``value`` converted to this parameter's kind.

        Raises :class:`ParamTypeError` or :class:`ParamRangeError` (both ValueError) saying what fits.
        """
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ParamTypeError("must be true or false")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise ParamTypeError("must be a string")
            if self.choices is not None and value not in self.choices:
                raise ParamRangeError(f"must be one of {', '.join(repr(c) for c in self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamTypeError(f"must be {_KINDS.get(self.kind, 'a number')}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ParamTypeError("must be an integer")
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an integer beyond any float (TOML allows 10**400)
                raise ParamRangeError(f"must be a number within ±{FLOAT32_MAX:.4g}") from None
            if not math.isfinite(value):
                raise ParamRangeError("must be a finite number")
            if abs(value) > FLOAT32_MAX:  # it would be inf as soon as a node makes it float32
                raise ParamRangeError(f"must be a number within ±{FLOAT32_MAX:.4g}")
        if self.min is not None and value < self.min:
            raise ParamRangeError(f"must be >= {self.min:g}{(' ' + self.unit) if self.unit else ''}")
        if self.max is not None and value > self.max:
            raise ParamRangeError(f"must be <= {self.max:g}{(' ' + self.unit) if self.unit else ''}")
        return value

    def describe(self) -> str:
        """A short human description of the valid values."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = _KINDS.get(self.kind, "a value")
        if self.min is not None or self.max is not None:
            lo = "" if self.min is None else f"{self.min:g}"
            hi = "" if self.max is None else f"{self.max:g}"
            text += f" in [{lo}, {hi}]"
        return text
