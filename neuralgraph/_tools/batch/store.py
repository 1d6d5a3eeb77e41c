"""The output folder: atomic files, ``metadata.jsonl``, the job's fingerprint, resume.

Only the driver writes here. Every file goes to a hidden temporary name and is renamed when
complete; a render's metadata row is appended (one ``write``) only after all its files are in
place. So a job killed at any moment leaves no truncated file under a final name and no row for a
missing file; at worst a finished file without its row, which the next run renders again.

``job.json`` holds the fingerprint of everything the output depends on (the job's values, the
patch's and the MIDI files' hashes). A run into a folder holding another job's renders is
refused unless ``overwrite`` is given, which deletes the files the old metadata lists.

JSON Lines rather than Parquet: a row can be appended as each render completes and survives a
kill, it needs no dependency, and pandas (``read_json(..., lines=True)``) and ``datasets``
(``load_dataset("json", ...)``) load it in one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError, display_path
from neuralgraph._tools.batch.render import file_sha256, relative
from neuralgraph._tools.batch.spec import Job

JOB_FILE = "job.json"
METADATA = "metadata.jsonl"
LOCK = ".batch.lock"
TEMP_SUFFIX = ".part"


def fingerprint(job: Job) -> dict[str, Any]:
    """Everything a job's output depends on, as plain JSON values (paths relative to the job file)."""
    base = job.directory
    return {
        "patch": relative(job.patch, base),
        "patch_sha256": file_sha256(job.patch),
        "midi": [[relative(f, base), file_sha256(f)] for f in job.midi_files],
        "notes": list(job.notes),
        "velocities": list(job.velocities),
        "hold": job.hold,
        "seconds": job.seconds,
        "tail": job.tail,
        "sample_rate": job.sample_rate,
        "block_size": job.block_size,
        "seed": job.seed,
        "samples": job.samples,
        "params": [[a.name, a.kind, list(a.values)] for a in job.axes],
        "audio": job.audio,
        "bits": job.bits,
        "taps": list(job.taps),
        "total": job.total,
    }


def digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed when complete."""
    temp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)


class Store:
    """One output folder, opened for one job: which renders are done, and where new ones go."""

    def __init__(self, folder: str | Path, job: Job, *, overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.job = job
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        self.values = fingerprint(job)
        self.digest = digest(self.values)
        self._claim(overwrite)
        for stale in self.folder.glob(f".*{TEMP_SUFFIX}"):  # left by a run that was killed
            stale.unlink()
        self.rows: dict[int, dict[str, Any]] = self._verified_rows()
        self._metadata = open(self.folder / METADATA, "ab", buffering=0)

    def _take_lock(self) -> Any:
        import fcntl

        handle = open(self.folder / LOCK, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise NeuralgraphError(f"{display_path(self.folder)}: another batch is writing to this folder") from None
        return handle

    def _claim(self, overwrite: bool) -> None:
        record = self.folder / JOB_FILE
        if record.exists():
            try:
                old = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            if old.get("digest") != self.digest:
                if not overwrite:
                    before = old.get("job", {})
                    changed = sorted(k for k in set(before) | set(self.values) if before.get(k) != self.values.get(k))
                    raise NeuralgraphError(
                        f"{display_path(self.folder)} holds the renders of another job (changed: "
                        f"{', '.join(changed) or 'unreadable job.json'}); give a new folder, or --overwrite "
                        f"to delete those renders and start again"
                    )
                self._forget()
        elif not overwrite and any(p.name != LOCK for p in self.folder.iterdir()):
            raise NeuralgraphError(
                f"{display_path(self.folder)} is not empty and holds no batch job; "
                f"give an empty or new folder (or --overwrite to write into it anyway)"
            )
        text = json.dumps({"digest": self.digest, "job": self.values}, indent=1, sort_keys=True)
        write_atomic(record, text.encode())

    def _forget(self) -> None:
        """Delete the files the old metadata lists, and the metadata (``--overwrite``)."""
        for row in self._read_rows():
            for item in row.get("files", []):
                (self.folder / item["path"]).unlink(missing_ok=True)
        (self.folder / METADATA).unlink(missing_ok=True)

    def _read_rows(self) -> list[dict[str, Any]]:
        path = self.folder / METADATA
        if not path.exists():
            return []
        rows = []
        for line in path.read_bytes().split(b"\n"):
            try:
                rows.append(json.loads(line))
            except ValueError:  # empty, or the torn last line of a killed run
                continue
        return rows

    def _complete(self, row: dict[str, Any]) -> bool:
        for item in row.get("files", []):
            path = self.folder / item["path"]
            try:
                if path.stat().st_size != item["bytes"] or file_sha256(path) != item["sha256"]:
                    return False
            except OSError:
                return False
        return bool(row.get("files"))

    def _verified_rows(self) -> dict[int, dict[str, Any]]:
        """The rows whose files are all present with their recorded size and hash (the last row per
        render wins); the metadata file is rewritten when it held anything else."""
        lines = self._read_rows()
        rows: dict[int, dict[str, Any]] = {}
        for row in lines:
            index = row.get("index")
            if isinstance(index, int) and 0 <= index < self.job.total:
                rows[index] = row
        rows = {i: row for i, row in sorted(rows.items()) if self._complete(row)}
        path = self.folder / METADATA
        torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        if len(rows) != len(lines) or torn:
            write_atomic(path, b"".join(json.dumps(r).encode() + b"\n" for r in rows.values()))
        return rows

    @property
    def done(self) -> set[int]:
        return set(self.rows)

    def add(self, result: dict[str, Any]) -> None:
        """Write one render's files (atomically), then its metadata row."""
        for name, data in result["files"].items():
            write_atomic(self.folder / name, data)
        row = result["row"]
        self._metadata.write(json.dumps(row).encode() + b"\n")
        self.rows[row["index"]] = row

    def close(self) -> None:
        self._metadata.close()
        self._lock.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
