"""Derived files from a recording: CSV and Parquet sample tables.

Columns: ``t`` (s from session start on the host-mapped timeline, microsecond
resolution), ``f0..fN-1`` (calibrated force in N, only when a calibration is
known), ``raw0..rawN-1`` (counts as on the wire). Missing samples are left out,
so gaps show as jumps in ``t``. Parquet adds ``device_time_us`` (the unwrapped
device clock) and ``epoch`` (device boot), and stores the session metadata as
JSON in the schema metadata (key ``knotsense``).

Files are written atomically: a temporary file next to the target, then a rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.session import Session

__all__ = ["column_names", "export_csv", "export_parquet"]

_CSV_ROWS_PER_CHUNK = 65536


def column_names(session: Session) -> list[str]:
    """The CSV columns for *session*: t, f0.. (when calibrated), raw0.."""
    c = session.n_channels
    forces = [f"f{i}" for i in range(c)] if session.forces is not None else []
    return ["t", *forces, *(f"raw{i}" for i in range(c))]


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[tuple[IO[Any], Path]]:
    """A temporary file in *path*'s folder, renamed over *path* when the block succeeds."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SessionFileError(f"{path}: cannot write: folder {folder} does not exist")
    if path.is_dir():
        raise SessionFileError(f"{path}: cannot write: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SessionFileError(f"{path}: cannot write: {exc.strerror}") from None
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as fh:
            yield fh, tmp_path
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise SessionFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def export_csv(
    session: Session,
    path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the CSV; returns the number of rows. *progress(done, total)* is called per chunk."""
    out = Path(path)
    names = column_names(session)
    n = session.n_samples
    c = session.n_channels
    has_f = session.forces is not None
    # t: 6 decimals (microseconds); forces: 6 significant-enough decimals; raw: integers.
    fmt_t = "%.6f"
    fmt_f = "%.6g"
    with _atomic(out, "w") as (fh, _):
        fh.write(",".join(names) + "\n")
        for a in range(0, n, _CSV_ROWS_PER_CHUNK):
            b = min(n, a + _CSV_ROWS_PER_CHUNK)
            cols: list[np.ndarray] = [np.char.mod(fmt_t, session.t[a:b])]
            if has_f:
                assert session.forces is not None
                f = session.forces[a:b]
                for i in range(c):
                    col = np.char.mod(fmt_f, f[:, i])
                    cols.append(np.where(np.isnan(f[:, i]), "", col))
            raw = session.raw[a:b]
            for i in range(c):
                col = raw[:, i].astype(str)
                if session.present is not None:
                    col = np.where(session.present[a:b, i], col, "")
                cols.append(col)
            rows = cols[0].astype(object)
            for col in cols[1:]:
                rows = rows + "," + col.astype(object)
            fh.write("\n".join(rows.tolist()))
            fh.write("\n")
            if progress is not None:
                progress(b, n)
    return n


def export_parquet(session: Session, path: str | os.PathLike[str]) -> int:
    """Write the Parquet file (needs pyarrow); returns the number of rows."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError(
            "Parquet export needs pyarrow: pip install 'knotsense[parquet]' (or pyarrow)"
        ) from None
    out = Path(path)
    columns: dict[str, Any] = {"t": pa.array(session.t, type=pa.float64())}
    c = session.n_channels
    if session.forces is not None:
        for i in range(c):
            columns[f"f{i}"] = pa.array(session.forces[:, i], type=pa.float64(), from_pandas=True)
    for i in range(c):
        mask = None if session.present is None else ~session.present[:, i]
        columns[f"raw{i}"] = pa.array(session.raw[:, i], type=pa.int32(), mask=mask)
    columns["device_time_us"] = pa.array(session.device_time_us, type=pa.int64())
    columns["epoch"] = pa.array(session.epoch, type=pa.int32())
    meta = {
        "knotsense": json.dumps(
            {
                "metadata": session.metadata,
                "channels": list(session.channel_names),
                "gaps": [[g.start_s, g.end_s, g.samples_lost, g.reason] for g in session.gaps],
            },
            default=str,
        )
    }
    table = pa.table(columns).replace_schema_metadata(meta)
    with _atomic(out, "wb") as (fh, _):
        pq.write_table(table, fh)
    return session.n_samples
