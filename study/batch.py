"""``knotsense batch``: many sessions analysed on ``dask.distributed`` into a dataset.

Each session is one task: the worker reads the file, runs the same pipeline
as ``knotsense analyze`` and writes the session's Parquet files itself, so
only a few hundred bytes of status travel back to the client. By default the
job runs on a :class:`distributed.LocalCluster` sized to the machine (one
single-threaded worker process per core); given a scheduler address it runs
on that cluster instead, whose workers must see the same files and OUT folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knotsense.errors import ConfigurationError, KnotsenseError
from knotsense.host.analysis_options import AnalysisOptions
from knotsense.study.dataset import existing_sessions, write_session
from knotsense.study.sources import expand_sources, session_id

__all__ = ["BatchResult", "Failure", "analyse_into", "run_batch"]


@dataclass(frozen=True)
class Failure:
    """A session that could not be analysed: which file, and why (one line)."""

    source: str
    reason: str


@dataclass(frozen=True)
class BatchResult:
    """What a run did. ``done`` and ``skipped`` hold session ids."""

    out: Path
    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()
    events: int = 0
    workers: int = 0
    scheduler: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": [{"source": f.source, "reason": f.reason} for f in self.failed],
            "events": self.events,
            "workers": self.workers,
            "scheduler": self.scheduler,
        }


def analyse_into(source: str, out: str, options: AnalysisOptions) -> dict[str, Any]:
    """The task a worker runs for one session: analyse *source*, write it under *out*.

    Never raises for a bad session: the failure comes back as ``{"error": ...}``
    so one broken file does not stop the study.
    """
    from knotsense._version import __version__
    from knotsense.study.session_result import analyse_source

    try:
        result = analyse_source(source, options)
        row = {
            **result.session,
            "analysed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "knotsense_version": __version__,
        }
        write_session(Path(out), row, result.events)
        return {"source": source, "session_id": result.session_id, "events": len(result.events)}
    except KnotsenseError as exc:
        return {"source": source, "error": str(exc)}
    except (OSError, ValueError, MemoryError) as exc:
        return {"source": source, "error": f"{type(exc).__name__}: {exc}"}


def _cluster(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as exc:
            why = f"cannot reach the Dask scheduler {scheduler}: {exc}"
            raise ConfigurationError(why) from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=40,
    )
    return Client(cluster), cluster


def run_batch(
    sources: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: AnalysisOptions | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Analyse every session named by *sources* into the dataset at *out*.

    Args:
        sources: files, folders and globs (see :func:`expand_sources`).
        out: the dataset folder (created).
        options: detector parameters; None fields come from each recording.
        scheduler: ``tcp://HOST:8786`` of an existing cluster; None starts a local one.
        workers: local worker processes (default: one per core).
        force: analyse sessions already in the dataset again.
        progress: called as ``progress(done, total, status)`` after each session.

    Raises:
        ConfigurationError: no sources, a source naming nothing, an unreachable scheduler.
    """
    options = options or AnalysisOptions()
    files = expand_sources(sources)
    if not files:
        raise ConfigurationError("no session files found in the sources given")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigurationError(f"{root}: exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    present = set() if force else existing_sessions(root)
    todo: list[str] = []
    skipped: list[str] = []
    failed: list[Failure] = []
    seen: set[str] = set()
    for f in files:
        try:
            sid = session_id(f)
        except OSError as exc:
            failed.append(Failure(str(f), f"cannot read: {exc.strerror or exc}"))
            continue
        if sid in present or sid in seen:
            skipped.append(sid)
        else:
            seen.add(sid)
            todo.append(str(f))
    done: list[str] = []
    events = 0
    n_workers = 0
    address = ""
    if todo:
        from distributed import as_completed

        client, cluster = _cluster(scheduler, workers)
        try:
            n_workers = len(client.scheduler_info().get("workers", {}))
            address = client.scheduler.address if client.scheduler else ""
            futures = [
                client.submit(analyse_into, src, str(root), options, key=f"knotsense-{i}-{src}")
                for i, src in enumerate(todo)
            ]
            for count, future in enumerate(as_completed(futures), start=1):
                status = future.result()
                if "error" in status:
                    failed.append(Failure(status["source"], status["error"]))
                else:
                    done.append(status["session_id"])
                    events += int(status["events"])
                if progress is not None:
                    progress(count, len(todo), status)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    result = BatchResult(
        root,
        tuple(done),
        tuple(skipped),
        tuple(sorted(failed, key=lambda f: f.source)),
        events,
        n_workers,
        address,
    )
    (root / "_batch.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
