"""An on-disk index of which entry-point plugin registers which node type and backend.

Importing every plugin module to learn its type names cost a third of a short render's start-up
(issue 17). After a clean full load the registry writes this index; the next process that reads
a valid one imports a plugin only when one of its names is asked for. An index is valid while:

- the directories on ``sys.path`` (after the first entry, the script's folder or the working
  directory) keep their modification times: installing, upgrading or removing a distribution
  adds or removes entries there;
- every indexed plugin's source files keep their modification times and sizes (the module's
  file, or every ``.py`` file of its package's folder): an edited editable install is re-read.

Anything else (a missing, stale or unreadable index) falls back to the full load, which writes
a new one. The files live under the kernel cache folder, one per ``sys.path`` layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from neuralgraph._nodes.aot import cache_dir

#: Bump when the file's layout changes.
FORMAT = 1


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _path_key() -> str:
    dirs = [(entry, _stamp(entry)) for entry in sys.path[1:] if entry and os.path.isdir(entry)]
    text = json.dumps([FORMAT, sys.version, dirs])
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _index_file() -> Path:
    return cache_dir() / "registry" / f"{_path_key()}.json"


def source_files(module: Any) -> list[str]:
    """The files whose change may change what ``module`` registers."""
    file = getattr(module, "__file__", None)
    if not file:
        return []
    if not getattr(module, "__package__", None):
        return [file]
    folder = os.path.dirname(file)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".py"))


def read() -> dict[str, Any] | None:
    """The valid index for this interpreter's ``sys.path``, or None."""
    try:
        data = json.loads(_index_file().read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or any(_stamp(path) != stamp for path, stamp in files.items()):
        return None
    return data


def write(entry_points: dict[str, str], types: dict[str, str], backends: dict[str, str], files: list[str]) -> None:
    """Record a clean full load: entry point name -> value, type and backend name -> entry point."""
    data = {
        "entry_points": entry_points,
        "types": types,
        "backends": backends,
        "files": {path: _stamp(path) for path in files},
    }
    target = _index_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(data))
        os.replace(partial, target)
    except OSError:
        pass  # a read-only cache costs the next start-up the full load, nothing else
