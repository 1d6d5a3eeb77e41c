"""Batch rendering: a data set of renders of one patch over a parameter space and MIDI material.

``neuralgraph batch JOB.toml -o OUT_DIR`` (docs/batch.md). The pieces, one job each:

- :mod:`.spec`: the checked job (:class:`~.spec.Job`) and :class:`~.spec.JobError`;
- :mod:`.job`: the job file to a checked :class:`~.spec.Job`, every mistake located (file:line);
- :mod:`.checks`: the job's parameter names, values and taps checked against the patch;
- :mod:`.space`: the job's renders, each a :class:`~.space.Render` that its index and the job
  seed alone determine (parameter draws seeded per render, not by order of execution), and the
  check of every value against the patch before anything renders;
- :mod:`.render`: a :class:`~.render.Renderer` per worker: compiles the patch once, then per
  render sets the parameters, resets and renders, and encodes the files;
- :mod:`.store`: the output folder: atomic files, ``metadata.jsonl``, the job fingerprint, resume;
- :mod:`.run`: the drivers (in-process, a local process pool, Ray actors) and the progress bar;
- :mod:`.command`: the ``neuralgraph batch`` subcommand.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Job", "JobError", "load_job", "run_batch"]
#: Where each public name lives: imported on first use, so that ``import neuralgraph`` and a
#: render do not pay for the batch machinery (the process pool, 8 ms of a 0.17 s start-up).
_HOME = {"Job": "spec", "JobError": "spec", "load_job": "job", "run_batch": "run"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
