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

from neuralgraph._tools.batch.job import load_job
from neuralgraph._tools.batch.run import run_batch
from neuralgraph._tools.batch.spec import Job, JobError

__all__ = ["Job", "JobError", "load_job", "run_batch"]
