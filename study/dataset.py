"""The Parquet dataset a batch writes: ``OUT/sessions`` and ``OUT/events``.

Layout (Hive partitioning by device serial, one file per session)::

    OUT/
      sessions/device_serial=KS-000001/<session_id>.parquet
      events/device_serial=KS-000001/<session_id>.parquet
      _batch.json        what the last run did (done, skipped, failed and why)

A session's two files are written under temporary names and renamed, events
first, so a crash never leaves a session that looks complete; a session
counts as present when its ``sessions`` file exists.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

from knotsense.errors import SessionFileError
from knotsense.study.schema import EVENT_COLUMNS, PARTITION, SESSION_COLUMNS, arrow_schema

__all__ = ["existing_sessions", "read_dataset", "write_session"]


def _partition_dir(root: Path, table: str, serial: str) -> Path:
    return root / table / f"{PARTITION}={urllib.parse.quote(serial, safe='-_.')}"


def _write(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_session(root: Path, session: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """Write one session's rows (its ``device_serial`` picks the partition)."""
    import pyarrow as pa

    serial = str(session.get(PARTITION) or "unknown")
    sid = session["session_id"]
    ev_schema = arrow_schema(EVENT_COLUMNS)
    ev_table = pa.Table.from_pylist(
        [{k: e.get(k) for k in ev_schema.names} for e in events], schema=ev_schema
    )
    _write(ev_table, _partition_dir(root, "events", serial) / f"{sid}.parquet")
    s_schema = arrow_schema(SESSION_COLUMNS)
    s_table = pa.Table.from_pylist([{k: session.get(k) for k in s_schema.names}], schema=s_schema)
    _write(s_table, _partition_dir(root, "sessions", serial) / f"{sid}.parquet")


def existing_sessions(root: Path) -> set[str]:
    """Ids of the sessions already in the dataset at *root*."""
    folder = root / "sessions"
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob(f"{PARTITION}=*/*.parquet")}


def read_dataset(root: str | os.PathLike[str], table: str = "sessions") -> Any:
    """One table of a dataset as a pyarrow Table (partition column included).

    Raises:
        SessionFileError: *root* holds no such table.
    """
    import pyarrow.dataset as ds

    if table not in ("sessions", "events"):
        raise SessionFileError(f"no table {table!r}: a dataset has 'sessions' and 'events'")
    folder = Path(root) / table
    if not folder.is_dir() or not any(folder.glob(f"{PARTITION}=*/*.parquet")):
        raise SessionFileError(f"{root}: not a knotsense batch dataset (no {table}/ tables)")
    columns = SESSION_COLUMNS if table == "sessions" else EVENT_COLUMNS
    schema = arrow_schema(columns)
    import pyarrow as pa

    full = schema.append(pa.field(PARTITION, pa.string()))
    data = ds.dataset(folder, format="parquet", partitioning="hive", schema=full)
    return data.to_table()
