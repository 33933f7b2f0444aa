"""Load a force table from a file, whatever its kind, for analysis and plots.

:func:`load_force_table` dispatches on the file type through ``LOADERS`` so a
second input kind (recorded sessions, ``.ksr``) is one more entry there. Every
loader returns a :class:`ForceTable`; every problem with the file is a one-line
:class:`~knotsense.errors.SessionFileError`.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knotsense.errors import SessionFileError
from knotsense.host.lab import FORCE_TYPE, TOTAL_LABEL, UNIT_COUNTS, UNIT_NEWTONS
from knotsense.host.xdf import MAGIC as XDF_MAGIC
from knotsense.host.xdf import XdfStream, read_xdf

__all__ = [
    "LOADERS",
    "ForceTable",
    "load_csv",
    "load_force_table",
    "load_recording",
    "load_xdf",
    "table_of_session",
]


@dataclass(frozen=True)
class ForceTable:
    """Sample times (s, increasing), channel values and what the file says about them.

    Attributes:
        t: sample times in the file's seconds.
        forces: ``(n, channels)`` forces in N (NaN where missing).
        names: the force column names.
        raw: ``(n, raw channels)`` raw counts, when the file has ``raw*`` columns.
        raw_names: their names.
        meta: session metadata (e.g. ``release_threshold``; ``positions``, the
            channel positions in mm from the device info); empty for a plain CSV.
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

    return table_of_session(load_session(path))


def table_of_session(session: Any) -> ForceTable:
    """A loaded :class:`~knotsense.host.session.Session` as a force table (see load_recording)."""
    if session.n_samples == 0:
        raise SessionFileError(f"{session.path}: the recording holds no samples")
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
        meta=_with_positions(dict(session.metadata), session),
    )


def _with_positions(meta: dict[str, Any], session: Any) -> dict[str, Any]:
    """*meta* plus ``positions`` (mm, per streamed channel) from the device info, if known."""
    channels = getattr(session.device_info, "channels", None)
    if "positions" in meta or not channels:
        return meta
    ids = session.channel_ids
    if any(i >= len(channels) for i in ids):
        return meta
    pos = [[float(channels[i].x_mm), float(channels[i].y_mm)] for i in ids]
    if any(x or y for x, y in pos):  # all at the origin: the device does not know them
        meta["positions"] = pos
    return meta


LOADERS[".ksr"] = load_recording


def load_force_table(path: str | Path) -> ForceTable:
    """Load *path* with the loader for its file type (recordings and XDF also by their magic)."""
    from knotsense.host.recording import is_recording

    p = Path(path)
    if not p.is_file():
        raise SessionFileError(f"{p}: no such file")
    if is_recording(p):
        return load_recording(p)
    if _starts_with(p, XDF_MAGIC):
        return load_xdf(p)
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


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def is_knotsense_force(stream: XdfStream) -> bool:
    """A Force stream written by knotsense (ours, or our live outlet via LabRecorder)."""
    desc = stream.desc
    return (
        stream.type == FORCE_TYPE
        and desc is not None
        and desc.find("knotsense") is not None
        and stream.channel_format != "string"
    )


def load_xdf(path: Path) -> ForceTable:
    """The knotsense Force stream of an XDF file as a force table on the session timeline.

    Forces (columns ``f0..``) when the stream is in newtons; raw counts only
    (``raw0..``) when it is in counts (analyze/plot then need
    ``--calibration``). The ``total`` channel is left out (the pipeline sums).
    ``meta`` is the session metadata stored in the stream's description.

    Raises:
        SessionFileError: not XDF, malformed, or no knotsense Force stream in it.
    """
    p = Path(path)
    streams = read_xdf(p)
    ours = [s for s in streams if is_knotsense_force(s)]
    if not ours:
        found = ", ".join(f"{s.name!r} ({s.type})" for s in streams) or "none"
        raise SessionFileError(f"{p}: no knotsense Force stream in this XDF file ({found})")
    stream = ours[0]
    desc = stream.desc
    assert desc is not None
    ks = desc.find("knotsense")
    assert ks is not None
    try:
        origin = float((ks.findtext("session_start_stream") or "0").strip())
        meta = json.loads(ks.findtext("metadata") or "{}")
    except ValueError as exc:
        raise SessionFileError(f"{p}: malformed knotsense description: {exc}") from None
    if not isinstance(meta, dict):
        meta = {}
    labels, units = [], []
    for ch in desc.findall("channels/channel"):
        labels.append((ch.findtext("label") or "").strip())
        units.append((ch.findtext("unit") or "").strip())
    if len(labels) != stream.channel_count:
        raise SessionFileError(
            f"{p}: stream {stream.name!r} describes {len(labels)} channels, "
            f"has {stream.channel_count}"
        )
    if stream.time_stamps.size == 0:
        raise SessionFileError(f"{p}: stream {stream.name!r} holds no samples")
    sensors = [k for k, label in enumerate(labels) if label != TOTAL_LABEL]
    unit = {units[k] for k in sensors}
    if len(unit) != 1 or unit - {UNIT_NEWTONS, UNIT_COUNTS}:
        raise SessionFileError(f"{p}: stream {stream.name!r} has channel units {sorted(unit)}")
    t = stream.time_stamps - origin
    steps = np.diff(t)
    if not np.all(np.isfinite(t)) or (steps.size and not np.all(steps > 0)):
        raise SessionFileError(f"{p}: stream {stream.name!r} timestamps are not increasing")
    x = np.asarray(stream.time_series, dtype=np.float64)[:, sensors]
    names = tuple(labels[k] for k in sensors)
    if unit == {UNIT_NEWTONS}:
        return ForceTable(t=t, forces=x, names=names, meta=meta)
    return ForceTable(
        t=t, forces=np.empty((t.size, 0)), names=(), raw=x, raw_names=names, meta=meta
    )


LOADERS[".xdf"] = load_xdf
