"""What the tests share: the text of a patch file around its node tables, the smallest
polyphonic saw patch (keys -> saw -> gate -> sum -> level -> output) as a dict, and the node types
the project's own plugins register."""

from __future__ import annotations

from typing import Any

import neuralgraph as ng

#: The classic DSP families: oscillators, noise and filters.
CLASSIC_FAMILIES = ("osc", "noise", "filter")


def patch_toml(
    nodes: str, *, name: str | None = None, sample_rate: int = 48000, block_size: int = 128, spaced: bool = False
) -> str:
    """A patch file's text: ``schema = 1``, the name when given, the ``[engine]`` table, then
    ``nodes`` (the node tables, as TOML text). ``spaced`` leaves a blank line after the name and
    after the engine table, as a person writes a file (tests that check line numbers rely on it)."""
    gap = "\n" if spaced else ""
    named = f'name = "{name}"\n' if name is not None else ""
    return f"schema = 1\n{named}{gap}[engine]\nsample_rate = {sample_rate}\nblock_size = {block_size}\n{gap}{nodes}"


def saw_voices(count: int, gain: float) -> dict[str, Any]:
    """``count`` MIDI voices of a saw gated by their keys, summed and scaled by ``lvl.gain``."""
    return {
        "schema": 1,
        "nodes": {
            "keys": {"type": "midi.voices", "count": count},
            "osc": {"type": "osc.saw", "freq": "keys.freq"},
            "vca": {"type": "math.mul", "in": "osc", "gain": "keys.gate"},
            "mix": {"type": "voices.sum", "in": "vca"},
            "lvl": {"type": "math.mul", "in": "mix", "gain": gain},
            "out": {"type": "io.output", "channels": 1, "in": "lvl"},
        },
    }


def builtin_types(registry: ng.Registry) -> set[str]:
    """Node types registered by the project's own plugins (plugins/, shipped as neuralgraph_plugins).

    Third-party plugins installed alongside (examples/bitcrush) are not ours to cover; backends
    are not node types, so the registry keeps them apart and they do not appear here.
    """
    return {name for name, t in registry.node_types.items() if t.cls.__module__.startswith("neuralgraph_plugins.")}


def classic_types(registry: ng.Registry) -> list[str]:
    """The built-in oscillator, noise and filter types, sorted (a new one is covered by itself)."""
    return sorted(t for t in builtin_types(registry) if t.split(".")[0] in CLASSIC_FAMILIES)
