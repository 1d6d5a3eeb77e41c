"""``--ray ADDRESS``: the same renders as Ray tasks on a running cluster (the ``ray`` extra).

One actor per worker holds a :class:`~.render.Renderer` (the patch compiled once); the driver
keeps two renders queued per actor and streams the results (file bytes and metadata row) back
to write them itself. Actors are restarted and their tasks retried when a worker process or a
node is lost, so every render arrives exactly once. The workers read the patch and MIDI files at
the same absolute paths as the driver: a shared file system or identical checkouts (docs/batch.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from neuralgraph._errors import NeuralgraphError
from neuralgraph._tools.batch.render import Renderer, Result, render_one
from neuralgraph._tools.batch.spec import Job

try:
    import ray
except ImportError:  # pragma: no cover - reported by ray_results
    ray = None


class RenderActor:
    """A Ray actor: one worker process with the job's patch compiled."""

    def __init__(self, job: Job) -> None:
        self.renderer = Renderer(job)

    def render(self, index: int) -> Result:
        return render_one(self.renderer, index)

    def pid(self) -> int:
        return os.getpid()


def connect(address: str) -> Any:
    """``ray.init`` to a running cluster; a clear error when Ray is missing or the cluster is not there."""
    if ray is None:
        raise NeuralgraphError("--ray needs Ray: pip install 'neuralgraph[ray]' (or pip install ray)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise NeuralgraphError(f"--ray {address}: cannot connect to a Ray cluster: {exc}") from None
    return ray


def start_actors(job: Job, workers: int | None) -> list[Any]:
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    count = workers or cpus
    if count > cpus:  # an actor takes a CPU: one that cannot be placed would hold its queued renders forever
        print(
            f"neuralgraph: warning: {count} Ray workers asked for, the cluster has {cpus} CPUs; using {cpus}",
            file=sys.stderr,
        )
        count = cpus
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(RenderActor)
    return [actor.remote(job) for _ in range(count)]


def ray_results(job: Job, todo: list[int], address: str, workers: int | None) -> tuple[int, Iterator[Result]]:
    """(actor count, the results as they complete)."""
    connect(address)
    actors = start_actors(job, workers)

    def results() -> Iterator[Result]:
        pending = iter(todo)
        running: dict[Any, Any] = {}  # object ref -> the actor rendering it

        def give(actor: Any) -> None:
            index = next(pending, None)
            if index is not None:
                running[actor.render.remote(index)] = actor

        for actor in actors:
            give(actor)
            give(actor)
        try:
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    actor = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the render itself failed
                        cause = exc.as_instanceof_cause()
                        raise NeuralgraphError(
                            str(cause) if isinstance(cause, NeuralgraphError) else str(exc)
                        ) from None
                    except ray.exceptions.RayError as exc:  # e.g. an actor that cannot start on a node
                        raise NeuralgraphError(
                            f"Ray: {exc}".splitlines()[0] + " (is neuralgraph installed, and "
                            "the job's files at the same paths, on every node?)"
                        ) from None
                    give(actor)
                    yield result
        finally:
            for actor in actors:
                ray.kill(actor)

    return len(actors), results()
