"""The compile subprocess of :mod:`neuralgraph._nodes.aot`: generated sources to extension modules.

Reads a JSON list of ``{digest, source, signature, target, mixins}`` on stdin; for each, imports the
source file, compiles its ``fused`` function with ``numba.pycc`` for this machine's CPU into a
temporary folder beside ``target`` and renames the module onto ``target`` (atomic). Prints one
JSON line ``{digest: error or ""}``. A failed kernel does not stop the others.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any


def _background() -> None:
    """Started by a swap while audio plays (``NEURALGRAPH_AOT_BACKGROUND``, set by the parent
    when its thread ran at real-time priority, pinned to the audio CPU): compile on any CPU and
    niced, as background work beside the playing patch. The policy is normal already
    (``posix_spawn`` set it)."""
    if os.environ.pop("NEURALGRAPH_AOT_BACKGROUND", "") != "1":
        return
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
        os.nice(10)
    except (AttributeError, OSError):
        pass


#: Every module has this name (and exports ``fused``): pycc's C helpers, compiled with the module's
#: name, are then compiled once and re-used (3.3 of the 5 s a small module took).
MODULE = "ng_aot"


def _compiler(mixins: Path) -> Any:
    """numba's ``CC`` with its C helper objects kept in ``mixins`` after the first build."""
    from numba.pycc import CC

    class CachedMixinsCC(CC):  # type: ignore[misc]
        def _compile_mixins(self, build_dir: str) -> list[str]:
            done = sorted(str(p) for p in mixins.glob("*.o")) if (mixins / "complete").exists() else []
            if done:
                return done
            objects = super()._compile_mixins(build_dir)
            work = Path(tempfile.mkdtemp(prefix=".mixins.", dir=mixins.parent))
            for k, obj in enumerate(objects):
                shutil.copy(obj, work / f"{k}_{Path(obj).name}")
            (work / "complete").touch()
            try:
                os.replace(work, mixins)  # a concurrent build may have got there first: either is whole
            except OSError:
                shutil.rmtree(work, ignore_errors=True)
            return list(objects)

    return CachedMixinsCC(MODULE)


def build_one(source: Path, signature: str, target: Path, mixins: Path) -> None:
    """Compile ``fused`` of ``source`` for ``signature`` into the extension module ``target``."""
    from neuralgraph._nodes.lazyjit import realise_all

    realise_all()  # plugin modules imported before numba hold lazy kernels
    name = target.name.split(".", 1)[0]
    spec = importlib.util.spec_from_file_location(f"neuralgraph_fused_{name[3:]}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    function = getattr(module.fused, "py_func", module.fused)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        cc = _compiler(mixins)
        cc.output_dir = str(work)
        cc.target_cpu = "host"
        cc.export("fused", signature)(function)
        cc.compile()
        built = next(work.glob(f"{MODULE}.*"))
        os.replace(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    _background()
    jobs = json.loads(sys.stdin.read())
    results: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's deprecation notice: the fallback is ours to report
        for job in jobs:
            try:
                build_one(Path(job["source"]), job["signature"], Path(job["target"]), Path(job["mixins"]))
                results[job["digest"]] = ""
            except Exception as exc:
                results[job["digest"]] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
