"""Load a force table from a file, whatever its kind, for analysis and plots.

:func:`load_force_table` dispatches on the file type through ``LOADERS`` so a
second input kind (recorded sessions, ``.ksr``) is one more entry there. Every
loader returns a :class:`ForceTable`; every problem with the file is a one-line
:class:`~knotsense.errors.SessionFileError`.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knotsense.errors import SessionFileError

__all__ = ["LOADERS", "ForceTable", "load_csv", "load_force_table", "load_recording"]


@dataclass(frozen=True)
class ForceTable:
    """Sample times (s, increasing), channel values and what the file says about them.

    Attributes:
        t: sample times in the file's seconds.
        forces: ``(n, channels)`` forces in N (NaN where missing).
        names: the force column names.
        raw: ``(n, raw channels)`` raw counts, when the file has ``raw*`` columns.
        raw_names: their names.
        meta: session metadata (e.g. ``release_threshold``); empty for a plain CSV.
    """

    t: NDArray[np.float64]
    forces: NDArray[np.float64]
    names: tuple[str, ...]
    raw: NDArray[np.float64] | None = None
    raw_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # (t, forces, names, meta), as the issue names it
        return iter((self.t, self.forces, self.names, self.meta))


def _check_times(path: Path, t: NDArray[np.float64]) -> None:
    if t.size == 0:
        raise SessionFileError(f"{path}: no samples")
    if not np.all(np.isfinite(t)):
        raise SessionFileError(f"{path}: column t has a missing or non-finite value")
    steps = np.diff(t)
    if steps.size and not np.all(steps > 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 3  # header is line 1, data from line 2
        raise SessionFileError(f"{path}: t is not increasing at line {row}")


def load_csv(path: Path) -> ForceTable:
    """A CSV with a header row; first column ``t`` (s), then forces (N); ``raw*`` kept apart."""
    try:
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionFileError(f"{path}: cannot read: {exc}") from None
    if not header:
        raise SessionFileError(f"{path}: empty file, expected a header row starting with t")
    names = [h.strip() for h in header]
    if names[0].lower() != "t":
        raise SessionFileError(f"{path}: first column must be t (seconds), got {names[0]!r}")
    if len(names) < 2:
        raise SessionFileError(f"{path}: no force columns after t")
    if len(set(names)) != len(names):
        raise SessionFileError(f"{path}: duplicate column names in the header")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise SessionFileError(f"{path}: malformed data: {str(exc).splitlines()[0]}") from None
    if data.size == 0:
        raise SessionFileError(f"{path}: no samples")
    if data.shape[1] != len(names):
        raise SessionFileError(f"{path}: {data.shape[1]} values per row, header has {len(names)}")
    t = data[:, 0]
    _check_times(path, t)
    raw_idx = [i for i, n in enumerate(names) if i and n.lower().startswith("raw")]
    force_idx = [i for i, n in enumerate(names) if i and i not in raw_idx]
    raw = data[:, raw_idx] if raw_idx else None
    return ForceTable(
        t=t,
        forces=data[:, force_idx],
        names=tuple(names[i] for i in force_idx),
        raw=raw,
        raw_names=tuple(names[i] for i in raw_idx),
        meta={},
    )


LOADERS: dict[str, Callable[[Path], ForceTable]] = {".csv": load_csv}
"""File suffix -> loader. Recorded sessions (``.ksr``) register here."""


def load_recording(path: Path) -> ForceTable:
    """A recorded session (``.ksr``, see docs/recording-format.md) as a force table.

    ``t`` is the host-mapped timeline (s from session start; gaps are jumps).
    With a calibration in the recording the forces are in N; without one the
    table has no force columns, only ``raw*`` counts (analyze/plot then need
    ``--calibration``). ``meta`` is the session metadata.
    """
    from knotsense.host.session import load_session

    session = load_session(path)
    if session.n_samples == 0:
        raise SessionFileError(f"{path}: the recording holds no samples")
    n, c = session.raw.shape
    raw = session.raw.astype(np.float64)
    if session.present is not None:
        raw[~session.present] = np.nan
    forces = session.forces if session.forces is not None else np.empty((n, 0))
    names = tuple(f"f{i}" for i in range(c)) if session.forces is not None else ()
    return ForceTable(
        t=session.t,
        forces=forces,
        names=names,
        raw=raw,
        raw_names=tuple(f"raw{i}" for i in range(c)),
        meta=dict(session.metadata),
    )


LOADERS[".ksr"] = load_recording


def load_force_table(path: str | Path) -> ForceTable:
    """Load *path* with the loader for its file type (recordings by their magic bytes)."""
    from knotsense.host.recording import is_recording

    p = Path(path)
    if not p.is_file():
        raise SessionFileError(f"{p}: no such file")
    if is_recording(p):
        return load_recording(p)
    loader = LOADERS.get(p.suffix.lower())
    if loader is None or loader is load_recording:
        kinds = ", ".join(sorted(LOADERS))
        if loader is load_recording:
            raise SessionFileError(f"{p}: not a knotsense recording (bad magic)")
        raise SessionFileError(
            f"{p}: unknown file type {p.suffix or '(none)'}; expected a recording or a table "
            f"(known: {kinds})"
        )
    return loader(p)
