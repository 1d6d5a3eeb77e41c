"""Settings from ``config.toml`` and ``NEURALGRAPH_*`` environment variables.

Precedence, lowest first: built-in defaults, the patch's ``[engine]`` table, ``config.toml``
(the working directory's, else ``$XDG_CONFIG_HOME/neuralgraph/config.toml``), environment
variables, command-line flags. ``config.toml``::

    [audio]
    backend = "jack"          # or "sounddevice"
    buffer_size = 256
    sample_rate = 48000
    device = "system"

    [limits]                  # what a patch may ask for (docs/reliability.md)
    max_nodes = 10000         # more nodes than this: NG126, before any node is built
    memory_budget_mb = 2048   # buffers and node state estimated at compile time: NG127
    allow_outside_paths = false   # true lets a patch name files outside its own folder (NG118)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from neuralgraph._errors import NeuralgraphError

AUDIO_KEYS = {"backend": str, "buffer_size": int, "sample_rate": int, "device": str}
ENV = {
    "NEURALGRAPH_AUDIO_BACKEND": "backend",
    "NEURALGRAPH_BUFFER_SIZE": "buffer_size",
    "NEURALGRAPH_SAMPLE_RATE": "sample_rate",
    "NEURALGRAPH_AUDIO_DEVICE": "device",
}

#: ``[limits]`` settings, their types and the environment variables that override them.
LIMIT_KEYS = {"max_nodes": int, "memory_budget_mb": int, "allow_outside_paths": bool}
LIMIT_ENV = {
    "NEURALGRAPH_MAX_NODES": "max_nodes",
    "NEURALGRAPH_MEMORY_BUDGET_MB": "memory_budget_mb",
    "NEURALGRAPH_ALLOW_OUTSIDE_PATHS": "allow_outside_paths",
}
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}

DEFAULT_MAX_NODES = 10000
DEFAULT_MEMORY_BUDGET_MB = 2048


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NeuralgraphError(f"{attribute.name} must be a whole number of at least 1, not {value!r}")


@attrs.frozen
class Limits:
    """What a patch may ask for: checked before anything is allocated.

    ``max_nodes`` caps the node count (NG126); ``memory_budget_mb`` caps the buffers and node
    state the compiler estimates for a sample rate and block size (NG127);
    ``allow_outside_paths`` lets file parameters name files outside the patch's folder (NG118).
    """

    max_nodes: int = attrs.field(default=DEFAULT_MAX_NODES, validator=_positive)
    memory_budget_mb: int = attrs.field(default=DEFAULT_MEMORY_BUDGET_MB, validator=_positive)
    allow_outside_paths: bool = False

    @property
    def memory_budget_bytes(self) -> int:
        return self.memory_budget_mb * 1024 * 1024


def config_paths() -> list[Path]:
    """Where ``config.toml`` is looked for, first match wins."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path.cwd() / "config.toml", Path(base) / "neuralgraph" / "config.toml"]


def _read_config(paths: list[Path] | None) -> tuple[Path, dict[str, Any]] | None:
    """The first config file found and its parsed contents, or None."""
    for path in paths if paths is not None else config_paths():
        if path.is_file():
            try:
                return path, tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise NeuralgraphError(f"{path}: {exc}") from None
    return None


_KIND_TEXT = {bool: "true or false", int: "an integer", str: "a string"}


def _config_table(section: str, kinds: Mapping[str, type], paths: list[Path] | None) -> dict[str, Any]:
    """The checked ``[section]`` table of the first config file found ({} when there is none)."""
    found = _read_config(paths)
    if found is None:
        return {}
    path, data = found
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise NeuralgraphError(f"{path}: `{section}` must be a table")
    for key, value in table.items():
        if key not in kinds:
            raise NeuralgraphError(f"{path}: unknown setting {section}.{key} (valid: {', '.join(kinds)})")
        kind = kinds[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise NeuralgraphError(f"{path}: {section}.{key} must be {_KIND_TEXT[kind]}")
    return dict(table)


def load_limits(
    environ: Mapping[str, str] | None = None,
    paths: list[Path] | None = None,
    **overrides: Any,
) -> Limits:
    """The ``[limits]`` settings: defaults, then ``config.toml``, then ``NEURALGRAPH_*``
    variables, then ``overrides`` (keyword arguments and command-line flags; None is skipped)."""
    environ = os.environ if environ is None else environ
    values = _config_table("limits", LIMIT_KEYS, paths)
    for var, key in LIMIT_ENV.items():
        raw = environ.get(var, "")
        if raw == "":
            continue
        if LIMIT_KEYS[key] is bool:
            if raw.lower() not in TRUE | FALSE:
                raise NeuralgraphError(f"{var}={raw!r} is not a boolean (use 1 or 0)")
            values[key] = raw.lower() in TRUE
        else:
            try:
                values[key] = int(raw)
            except ValueError:
                raise NeuralgraphError(f"{var}={raw!r} is not an integer") from None
    for key, value in overrides.items():
        if key not in LIMIT_KEYS:
            raise TypeError(f"unknown limit {key!r} (valid: {', '.join(LIMIT_KEYS)})")
        if value is not None:
            values[key] = value
    return Limits(**values)


def load_settings(environ: Mapping[str, str] | None = None, paths: list[Path] | None = None) -> dict[str, Any]:
    """The ``[audio]`` settings from the first config file found, overridden by the environment."""
    environ = os.environ if environ is None else environ
    settings = _config_table("audio", AUDIO_KEYS, paths)
    for var, key in ENV.items():
        if var in environ and environ[var] != "":
            raw = environ[var]
            if AUDIO_KEYS[key] is int:
                try:
                    settings[key] = int(raw)
                except ValueError:
                    raise NeuralgraphError(f"{var}={raw!r} is not an integer") from None
            else:
                settings[key] = raw
    return settings
