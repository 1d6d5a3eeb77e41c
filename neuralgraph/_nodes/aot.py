"""Generated kernels compiled ahead of time, in a subprocess, and loaded without numba.

Every generated kernel (a fused run, the offline driver, the output guard, the swap's state
copy, ...) is Python source defining one numba function named ``fused`` plus the signature it
is called with. :func:`compiled` turns a batch of them into callables:

- **Cached:** the source's extension module (``ng_<digest>.so`` under ``<cache>/aot/<cpu>``) is
  imported: a ``dlopen``, about a millisecond, no numba, no LLVM.
- **Missing:** ONE subprocess (``python -m neuralgraph._nodes.aotbuild``) compiles every missing
  source with ``numba.pycc`` and moves each module into the cache atomically (a concurrent
  process sees a whole module or none). The calling thread waits on a pipe, without the GIL:
  a swap compiling a kernel for the first time no longer holds the lock the audio callback
  needs (LLVM took it for tens of ms, issue 15), and a render whose modules are cached never
  imports numba (0.3 s of CPU and 100 MB, issue 17).
- **Fallback:** where that cannot work (no C compiler, ``NEURALGRAPH_AOT=0``, a kernel defined
  in ``__main__`` that a subprocess cannot import, or a failed build) the source is compiled in
  this process by numba's JIT (cached on disk by numba), as before; the reason is reported once.

pycc's wrappers do not check argument types (a float64 array passed for an int64 one crashes the
process): every caller passes exactly the signature's types. The modules are compiled for this
machine's CPU (``target_cpu = "host"``) like the JIT's code, so they are kept per CPU model and
features (:func:`cpu_key`): a cache folder shared between machines never hands one another's.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neuralgraph._nodes.gcpause import audio_plays
from neuralgraph._nodes.lazyjit import realise_all

#: ``0`` turns ahead-of-time compilation off (every kernel then compiles in process by numba's JIT);
#: ``1`` builds modules even where the JIT is cheaper (numba imported already, no audio playing).
ENV = "NEURALGRAPH_AOT"
#: Bump to rebuild every module.
FORMAT = 1

_functions: dict[tuple[str, bool], Callable[..., Any]] = {}
#: missing modules noted inside :func:`batched_builds`, built together when it ends
_batch: dict[str, tuple[str, str]] | None = None
_reported: set[str] = set()
_numba_stamp: str | None = None


def cache_dir() -> Path:
    """Where generated kernels (sources, numba's cache of them, compiled modules) live.

    ``NEURALGRAPH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neuralgraph`` (``~/.cache/neuralgraph``).
    """
    env = os.environ.get("NEURALGRAPH_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuralgraph"


def numba_stamp() -> str:
    """numba's version file, hashed without importing numba (compiled code depends on it)."""
    global _numba_stamp
    if _numba_stamp is None:
        digest = hashlib.sha1(b"numba")
        spec = importlib.util.find_spec("numba")
        if spec is not None and spec.origin:
            version = Path(spec.origin).with_name("_version.py")
            digest.update(version.read_bytes() if version.exists() else spec.origin.encode())
        _numba_stamp = digest.hexdigest()[:16]
    return _numba_stamp


_stamps: dict[str, str] = {}


def module_stamp(module: str) -> str:
    """A hash of numba's version and every source file of an imported module's package folder (a
    compiled kernel's inputs). The whole folder, not the module's file alone: a kernel calls and
    inlines functions of its neighbours (``plugins/ddsp.py`` the oscillators' sine), and an edit or
    an upgrade that changed only those must still give its callers a new module."""
    if module not in _stamps:
        digest = hashlib.sha1(numba_stamp().encode())
        path = getattr(sys.modules.get(module), "__file__", None)
        if path:
            for source in sorted(Path(path).parent.glob("*.py")):
                digest.update(source.name.encode())
                digest.update(source.read_bytes())
        _stamps[module] = digest.hexdigest()[:16]
    return _stamps[module]


_cpu: str | None = None


def cpu_key() -> str:
    """This machine's CPU model and features, hashed: modules are compiled for the host CPU, so a
    cache folder shared by machines with other CPUs keeps each one's modules apart."""
    global _cpu
    if _cpu is None:
        digest = hashlib.sha1(os.uname().machine.encode())
        try:
            with open("/proc/cpuinfo") as info:
                seen = set()
                for line in info:
                    key = line.split(":", 1)[0].strip()
                    if key in ("model name", "flags", "Features", "CPU part") and key not in seen:
                        seen.add(key)
                        digest.update(line.encode())
        except OSError:  # not Linux: the machine's name only
            pass
        _cpu = digest.hexdigest()[:12]
    return _cpu


def compiled_functions(module: str, names: Sequence[str], signatures: Sequence[str]) -> list[Callable[..., Any]]:
    """Module-level Python functions compiled as kernels (ahead of time where possible, in one
    batch), each for one signature."""
    head = f"# generated by neuralgraph._nodes.aot (format {FORMAT}); do not edit\n# {module}: {module_stamp(module)}\n"
    sources = [
        f"{head}from numba import njit\nfrom {module} import {name}\nfused = njit(cache=True, nogil=True)({name})\n"
        for name in names
    ]
    return compiled(list(zip(sources, signatures)))


def digest_of(source: str, signature: str = "") -> str:
    """The content address of a kernel: its source and the signature it is compiled for."""
    return hashlib.sha1(f"{source}\n# {signature} {FORMAT}".encode()).hexdigest()[:20]


def source_path(digest: str) -> Path:
    """Where the source of ``digest`` is written (numba's JIT cache and the build need a real file)."""
    return cache_dir() / "fused" / f"fused_{digest}.py"


def _module_path(digest: str) -> Path:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]  # this interpreter's (".cpython-311-x86_64-linux-gnu.so")
    return cache_dir() / "aot" / cpu_key() / f"ng_{digest}{suffix}"


def write_source(source: str, digest: str) -> Path:
    """``source`` written once under ``digest``, atomically."""
    path = source_path(digest)
    if not path.exists():  # named by its content: an existing file holds it (written atomically)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    return path


def compiled(kernels: Sequence[tuple[str, str]]) -> list[Callable[..., Any]]:
    """The ``fused`` function of each ``(source, signature)``, ahead of time where possible.

    Missing modules are built in one subprocess, waited for without the GIL. The rest (no
    compiler, a build that failed, ``NEURALGRAPH_AOT=0``, or numba imported here already while
    no audio plays: :func:`_jit_is_cheaper`) compile in process with numba's JIT.
    """
    digests = [digest_of(source, signature) for source, signature in kernels]
    for digest, (source, _) in zip(digests, kernels):
        write_source(source, digest)  # a kernel calling this one compiles it from its source
    ahead = {d: k for d, k in zip(digests, kernels) if _aot_possible(k[0])}
    missing = {d: k for d, k in ahead.items() if (d, True) not in _functions and not _module_path(d).exists()}
    if missing and _batch is not None:
        _batch.update(missing)
    elif missing and not _jit_is_cheaper():
        _build(missing)
    found = []
    for digest, (source, signature) in zip(digests, kernels):
        key = (digest, digest in ahead)  # the JIT's function and the module's are kept apart
        if key not in _functions:
            # no module after a build: the build's failure was reported, the JIT takes over
            function = _load_module(digest) if digest in ahead and _module_path(digest).exists() else None
            _functions[key] = function if function is not None else jit(source, signature)
        found.append(_functions[key])
    return found


@contextmanager
def batched_builds() -> Iterator[None]:
    """Within it, kernels whose module is missing compile in process (numba's JIT) and the missing
    modules are noted; on leaving, ONE subprocess builds them all. For a process that prepares many
    plans for other processes (the test suite's warm-up, ``tests/kernel_warmup.py``): one numba
    import and one pycc set-up instead of one per plan."""
    global _batch
    _batch = {}
    try:
        yield
    finally:
        jobs, _batch = _batch, None
        if jobs:
            _build(jobs)


def _jit_is_cheaper() -> bool:
    """True when this process has numba imported already and no audio plays: a build subprocess
    would pay numba's import again (0.3-0.5 s a batch, and pycc's link), which the JIT here does
    not, and there is no audio callback whose GIL the JIT could hold up. The kernel then comes
    from numba's JIT and its disk cache; the next process that needs it without numba builds the
    module."""
    if os.environ.get(ENV) == "1":
        return False
    return "numba" in sys.modules and not audio_plays()


def _aot_possible(source: str) -> bool:
    if os.environ.get(ENV, "1") == "0":
        return False
    # a kernel defined in a script or a notebook cannot be imported by another process
    return "from __main__ import" not in source


def _load_module(digest: str) -> Callable[..., Any] | None:
    path = _module_path(digest)
    try:  # every module is named ng_aot (aotbuild.MODULE), each at its own path
        spec = importlib.util.spec_from_file_location("ng_aot", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, "fused")  # type: ignore[no-any-return]
    except Exception as exc:  # a damaged file: compile in process instead
        report_once("load", f"could not load {path.name} ({exc})")
        return None


def _compiler_missing() -> str | None:
    import shutil
    import sysconfig

    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc!r} is not on PATH)"
    include = sysconfig.get_paths().get("include", "")
    if not Path(include, "Python.h").exists():
        return f"no Python headers ({include}/Python.h)"
    return None


def _build(jobs: dict[str, tuple[str, str]]) -> None:
    """Compile ``jobs`` (digest -> source, signature) in one subprocess; failures are reported
    once and left to the JIT."""
    import json

    reason = _compiler_missing()
    if reason is not None:
        report_once("compiler", reason)
        return
    mixins = str(cache_dir() / "aot" / cpu_key() / f"mixins_{numba_stamp()}_{sys.implementation.cache_tag}")
    request = [
        {
            "digest": d,
            "source": str(write_source(s, d)),
            "signature": sig,
            "target": str(_module_path(d)),
            "mixins": mixins,
        }
        for d, (s, sig) in jobs.items()
    ]
    try:
        status, out, err = _spawn(json.dumps(request))
    except OSError as exc:
        report_once("run", f"the compile subprocess did not run ({exc})")
        return
    results = _results(out)
    for digest in jobs:
        error = results.get(digest, f"exit status {status}: {_last_line(err)}")
        if error:
            report_once(error, error)


def _sources_stamp(request: str) -> str:
    """A hash of the module stamps the request's sources carry (``# module: stamp`` lines; the
    stamps alone, so that every batch using the same package versions shares one cache)."""
    import json

    stamps: set[str] = set()
    for job in json.loads(request):
        text = Path(job["source"]).read_text()
        stamps.update(line.rsplit(": ", 1)[1] for line in text.splitlines() if line.startswith("# ") and ": " in line)
    return hashlib.sha1("\n".join(sorted(stamps)).encode()).hexdigest()[:12]


def _spawn(request: str) -> tuple[int, str, str]:
    """Run the compile subprocess on ``request``; its exit status, stdout and stderr.

    The calling thread must not hold the GIL while the child starts: a swap runs this while
    audio plays, and the audio callback needs the lock. ``os.posix_spawn`` and ``subprocess``
    keep it while the parent waits for the child to ``exec`` (a vfork); a busy machine made
    that 6-12 ms, and pinned to the audio CPU, up to 120 ms (5-23 xruns at a cold swap). libc's
    ``posix_spawn`` called through ctypes lets the GIL go for the whole call (:mod:`.spawn`).
    The child starts at normal scheduling policy (a swap's thread runs at SCHED_FIFO); files,
    not pipes, carry the data; ``waitpid`` lets the GIL go while the compile runs."""
    import tempfile  # imported here: a render whose modules are cached starts none

    from neuralgraph._nodes.spawn import spawn

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    # numba's own cache of the plugins' kernels, which the build compiles into the modules, checks
    # only each kernel's own file: kept per version of the sources, it cannot hand a build a kernel
    # that inlined an older neighbour
    env.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba" / _sources_stamp(request)))
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        env["NEURALGRAPH_AOT_BACKGROUND"] = "1"  # the child nices itself and leaves the audio CPU
    with tempfile.TemporaryDirectory(prefix="neuralgraph-aot-") as tmp:
        files = {name: os.path.join(tmp, name) for name in ("request", "out", "err")}
        Path(files["request"]).write_text(request)
        pid = spawn(
            [sys.executable, "-m", "neuralgraph._nodes.aotbuild"], env, files["request"], files["out"], files["err"]
        )
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), Path(files["out"]).read_text(), Path(files["err"]).read_text()


def _results(stdout: str) -> dict[str, str]:
    import json

    for line in reversed(stdout.splitlines()):
        try:
            return dict(json.loads(line))
        except ValueError:
            continue
    return {}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def report_once(key: str, reason: str) -> None:
    """Say once per process why kernels compile in process instead of ahead of time."""
    if key in _reported:
        return
    _reported.add(key)
    warnings.warn(f"neuralgraph: kernels compile in process (numba JIT): {reason}", stacklevel=3)


def jit(source: str, signature: str) -> Callable[..., Any]:
    """The ``fused`` function of ``source`` compiled in this process by numba (its disk cache
    used when the source asks for it), for ``signature``."""
    realise_all()  # the kernels it calls become numba dispatchers first
    digest = digest_of(source, signature)
    write_source(source, digest)
    function = jit_function(digest)
    function.disable_compile(False)  # the offline driver freezes its function (_compile/driver.py)
    function.compile(signature)
    return function


def jit_function(digest: str) -> Callable[..., Any]:
    """The numba function of a source written under ``digest`` (a generated kernel calling
    another one compiles it in: the offline driver calls the fused runs)."""
    realise_all()
    name = f"neuralgraph_fused_{digest}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, source_path(digest))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module.fused  # type: ignore[no-any-return]
