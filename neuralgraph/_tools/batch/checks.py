"""A job's values checked against its patch: settable targets, ranges, taps.

Every value that would be refused at render time is refused here, before anything renders, at
its line in the job file; a grid value names the first render that would use it.
"""

from __future__ import annotations

from typing import Any

import attrs

from neuralgraph._errors import did_you_mean
from neuralgraph._nodes.ports import Input, Param, Rate
from neuralgraph._patch.loader import Problems
from neuralgraph._tools.batch.spec import Axis, Job, is_number


def _declaration(patch: Any, target: str) -> tuple[Param | Input | None, str | None]:
    """The declaration ``target`` sets in ``patch``, or (None, why not)."""
    node_name, _, port = target.partition(".")
    spec = patch.spec.nodes.get(node_name)
    if spec is None:
        hint = did_you_mean(node_name, patch.spec.nodes)
        return None, f"the patch has no node `{node_name}`" + (f" ({hint})" if hint else "")
    cls = patch.registry.node_class(spec.type)
    if port in cls.params():
        return cls.params()[port], None
    inputs = cls(**spec.params).inputs()
    if port in inputs:
        if spec.inputs.get(port) is not None and spec.inputs[port].connected:
            return None, f"`{target}` is connected in the patch; only unconnected inputs can be set"
        if inputs[port].rate is Rate.EVENTS:
            return None, f"`{target}` is an event input"
        return inputs[port], None
    hint = did_you_mean(port, [*cls.params(), *inputs])
    return None, f"`{spec.type}` has no parameter or input `{port}`" + (f" ({hint})" if hint else "")


def check_target(axis: Axis, patch: Any, problems: Problems) -> Axis:
    decl, why = _declaration(patch, axis.name)
    if decl is None:
        problems.add("NG203", ("params", axis.name), why or "", at_value=False)
        return axis
    if isinstance(decl, Param):
        if axis.kind in ("uniform", "log_uniform") and decl.kind not in (int, float):
            problems.add(
                "NG204",
                ("params", axis.name),
                f"{axis.kind} draws numbers but `{axis.name}` is "
                f"{'a string' if decl.kind is str else 'true or false'}; use a list or choice",
            )
        return attrs.evolve(axis, integer=decl.kind is int, live=decl.live)
    return axis


def _reason(decl: Param | Input, value: Any) -> str | None:
    if isinstance(decl, Param):
        try:
            decl.coerce(value)
        except ValueError as exc:
            return str(exc)
        return None
    if not is_number(value):
        return "must be a number"
    return decl.check(value)


def check_ranges(job: Job, patch: Any, problems: Problems) -> None:
    """Refuse values outside what each parameter accepts, naming the first render that has one."""
    grid = job.grid
    for axis in job.axes:
        decl, _ = _declaration(patch, axis.name)
        if decl is None:
            continue
        for i, value in enumerate(axis.values):
            reason = _reason(decl, value)
            if reason is None:
                continue
            key = ("params", axis.name) + (
                (i,) if axis.kind == "grid" else (axis.kind, i) if axis.kind != "fixed" else ()
            )
            if axis.kind == "grid":
                combo = ", ".join(f"{a.name} = {value if a is axis else a.values[0]!r}" for a in grid)
                share = job.total // len(axis.values)
                message = (
                    f"{value!r} {reason}; {share} of {job.total} renders use it, the first "
                    f"#{_first_index(job, axis, i)}: {combo}"
                )
            elif axis.kind == "fixed":
                message = f"{value!r} {reason}; every render uses it"
            else:
                message = f"{value!r} {reason}; {axis.kind} draws may reach it"
            problems.add("NG204", key, message, value=value)


def _first_index(job: Job, axis: Axis, position: int) -> int:
    """Index of the first render whose grid point has ``axis`` at ``position`` (others at their first)."""
    stride = job.samples * job.midi_count
    for later in reversed(job.grid):
        if later is axis:
            break
        stride *= len(later.values)
    return position * stride


def check_taps(taps: list[str], patch: Any, problems: Problems) -> None:
    for i, tap in enumerate(taps):
        node_name, _, port = tap.partition(".")
        key = ("outputs", "taps", i)
        spec = patch.spec.nodes.get(node_name)
        if spec is None:
            hint = did_you_mean(node_name, patch.spec.nodes)
            problems.add("NG205", key, f"the patch has no node `{node_name}`", value=tap, hint=hint)
            continue
        outputs = patch.registry.node_class(spec.type)(**spec.params).outputs()
        if port not in outputs or outputs[port].rate is Rate.EVENTS:
            valid = [p for p, o in outputs.items() if o.rate is not Rate.EVENTS]
            problems.add(
                "NG205",
                key,
                f"`{spec.type}` has no audio or control output `{port}`",
                value=tap,
                hint=did_you_mean(port, valid),
            )
