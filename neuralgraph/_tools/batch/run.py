"""Drivers: the job's pending renders through one process, a local process pool, or Ray actors.

Whatever runs the renders, the driver alone writes the output folder (:class:`~.store.Store`),
in the order results arrive; each result carries the bytes of its files, so the folder's
contents do not depend on the driver either.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

import attrs

from neuralgraph._errors import NeuralgraphError
from neuralgraph._tools.batch.render import Renderer, Result, render_one
from neuralgraph._tools.batch.space import render_at
from neuralgraph._tools.batch.spec import Job
from neuralgraph._tools.batch.store import Store

_renderer: Renderer | None = None  # one per pool worker, made by _start_worker


def _start_worker(job: Job) -> None:
    global _renderer
    _renderer = Renderer(job)


def _render_index(index: int) -> Result:
    assert _renderer is not None
    return render_one(_renderer, index)


def local_results(job: Job, todo: list[int]) -> Iterator[Result]:
    """Render in this process (``--workers 1``)."""
    renderer = Renderer(job)
    for index in todo:
        yield render_one(renderer, index)


def pool_results(job: Job, todo: list[int], workers: int) -> Iterator[Result]:
    """Render on ``workers`` processes, each starting once; at most two renders queued per worker."""
    import multiprocessing  # with the process pool: only a batch pays for their import
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["neuralgraph._tools.batch.render"])  # imported once, forked per worker
    pending = iter(todo)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(job,)) as pool:
        running: set[Future] = set()

        def fill() -> None:
            while len(running) < 2 * workers:
                index = next(pending, None)
                if index is None:
                    return
                running.add(pool.submit(_render_index, index))

        fill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.discard(future)
                yield future.result()
            fill()


def warnings(row: dict) -> list[str]:
    """What ``render`` would warn about for this render (faults, then the nodes' notices, such as
    a note outside an instrument's range), each line naming the render."""
    where = row["id"] + (f" ({row['midi']})" if row.get("midi") else "")
    return [f"neuralgraph: warning: render {where}: {fault} (bypassed)" for fault in row["faults"]] + [
        f"neuralgraph: warning: render {where}: {notice}" for notice in row["notices"]
    ]


@attrs.frozen
class Summary:
    total: int
    skipped: int
    rendered: int
    seconds: float
    workers: int

    def line(self, folder: Path) -> str:
        rate = self.rendered / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{folder}: {self.rendered} rendered, {self.skipped} already complete, {self.total} in all; "
            f"{self.seconds:.1f} s, {rate:.2f} renders/s on {self.workers} worker"
            f"{'s' if self.workers != 1 else ''}"
        )


def _engine_order(job: Job, todo: list[int]) -> list[int]:
    """Renders sharing buffer-shaping values next to each other, so each worker compiles rarely."""
    if all(a.live for a in job.axes):
        return todo
    return sorted(todo, key=lambda i: (repr(render_at(job, i).fixed_key(job)), i))


def _check_compiles(job: Job, todo: list[int]) -> None:
    """Load the patch once per combination of buffer-shaping values, before any render starts."""
    from neuralgraph._patch.patch import load_patch

    if all(a.live for a in job.axes):
        return
    for key in {render_at(job, i).fixed_key(job) for i in todo}:
        load_patch(job.patch, overrides=dict(key))


def run_batch(
    job: Job,
    folder: str | Path,
    *,
    workers: int | None = None,
    ray: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> Summary:
    """Render every pending render of ``job`` into ``folder``; returns what was done.

    ``workers``: processes (default: the CPU count; 1 renders in this process), or Ray actors
    (default: the cluster's CPUs) when ``ray`` is a cluster address (``"auto"``, ``"HOST:PORT"``).
    ``progress``: a tqdm bar (None: only on a terminal).
    """
    from tqdm import tqdm

    folder = Path(folder)
    with Store(folder, job, overwrite=overwrite) as store:
        todo = [i for i in range(job.total) if i not in store.done]
        skipped = job.total - len(todo)
        _check_compiles(job, todo)
        todo = _engine_order(job, todo)
        t0 = time.perf_counter()
        results: Iterable[Result]
        if ray is not None and todo:
            from neuralgraph._tools.batch.ray_pool import ray_results

            count, results = ray_results(job, todo, ray, workers)
        else:
            count = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
            results = local_results(job, todo) if count == 1 else pool_results(job, todo, count)
        bar = tqdm(
            total=job.total,
            initial=skipped,
            unit="render",
            desc="batch",
            disable=None if progress is None else not progress,
            file=sys.stderr,
            smoothing=0.1,
            dynamic_ncols=True,
        )
        rendered = 0
        try:
            for result in results:
                index = result["row"]["index"]
                if index in store.done:  # a retried task whose first attempt also arrived
                    continue
                store.add(result)
                rendered += 1
                bar.update(1)
                for line in warnings(result["row"]):
                    bar.write(line, file=sys.stderr)
        finally:
            bar.close()
        missing = job.total - len(store.done)
        if missing:
            raise NeuralgraphError(f"{missing} renders did not complete; run the same command again to finish")
        return Summary(job.total, skipped, rendered, time.perf_counter() - t0, count)
