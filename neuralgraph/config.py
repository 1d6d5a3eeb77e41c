"""Settings from ``config.toml`` and ``NEURALGRAPH_*`` environment variables.

Precedence, lowest first: built-in defaults, the patch's ``[engine]`` table, ``config.toml``
(the working directory's, else ``$XDG_CONFIG_HOME/neuralgraph/config.toml``), environment
variables, command-line flags. ``config.toml``::

    [audio]
    backend = "jack"          # or "sounddevice"
    buffer_size = 256
    sample_rate = 48000
    device = "system"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import NeuralgraphError

AUDIO_KEYS = {"backend": str, "buffer_size": int, "sample_rate": int, "device": str}
ENV = {
    "NEURALGRAPH_AUDIO_BACKEND": "backend",
    "NEURALGRAPH_BUFFER_SIZE": "buffer_size",
    "NEURALGRAPH_SAMPLE_RATE": "sample_rate",
    "NEURALGRAPH_AUDIO_DEVICE": "device",
}


def config_paths() -> list[Path]:
    """Where ``config.toml`` is looked for, first match wins."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path.cwd() / "config.toml", Path(base) / "neuralgraph" / "config.toml"]


def load_settings(environ: Mapping[str, str] | None = None, paths: list[Path] | None = None) -> dict[str, Any]:
    """The ``[audio]`` settings from the first config file found, overridden by the environment."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for path in paths if paths is not None else config_paths():
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise NeuralgraphError(f"{path}: {exc}") from None
            audio = data.get("audio", {})
            for key, value in audio.items():
                if key not in AUDIO_KEYS:
                    raise NeuralgraphError(f"{path}: unknown setting audio.{key} (valid: {', '.join(AUDIO_KEYS)})")
                if not isinstance(value, AUDIO_KEYS[key]) or isinstance(value, bool):
                    raise NeuralgraphError(f"{path}: audio.{key} must be {AUDIO_KEYS[key].__name__}")
                settings[key] = value
            break
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
