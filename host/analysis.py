"""A session file to an analysis in one call: what ``knotsense.load`` and ``knotsense.analyze`` do.

The same path as ``knotsense analyze FILE``: the file becomes a
:class:`~knotsense.host.tables.ForceTable` (a recording through
:func:`~knotsense.host.session.load_session`, a CSV through its loader), and
the whole record goes through the dsp pipeline
(:func:`knotsense.dsp.pipeline.analyze`) with the options given, so the result
equals the CLI's ``--json`` output (``result.to_dict()``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.recording import is_recording
from knotsense.host.session import Session, load_session
from knotsense.host.tables import ForceTable, load_force_table, table_of_session

if TYPE_CHECKING:
    from knotsense.dsp.calibration_models import Calibration
    from knotsense.dsp.results import Analysis

__all__ = ["analyze", "load"]

Source = Session | ForceTable | str | os.PathLike[str]


def load(path: str | os.PathLike[str], *, salvage: bool = False) -> Session | ForceTable:
    """Open a session file: a recording (``.ksr``, by its magic) or a force table (CSV).

    Args:
        path: the file.
        salvage: for a recording, skip corrupt regions inside it instead of failing.

    Returns:
        A :class:`~knotsense.host.session.Session` for a recording (samples on the
        host timeline, gaps, events, metadata), else a
        :class:`~knotsense.host.tables.ForceTable` (times, forces, raw counts).

    Raises:
        SessionFileError: missing, unknown kind, or malformed (one line, with the path).
    """
    p = Path(path)
    if not p.is_file():
        raise SessionFileError(f"{p}: no such file")
    if is_recording(p):
        return load_session(p, salvage=salvage)
    return load_force_table(p)


def analyze(source: Source, **options: Any) -> Analysis:
    """Releases, rocking, overpressure and contacts of a whole session.

    Args:
        source: a path (as :func:`load` takes), a loaded Session or a ForceTable.
        **options: :class:`~knotsense.dsp.config.PipelineConfig` fields
            (``release_threshold``, ``hold``, ``gap``, ``max_force`` ...).
            ``release_threshold`` defaults to the one in the session metadata.
            ``calibration`` (a dsp Calibration, its ``to_dict()``, or a
            calibration record) analyses the raw counts instead of the forces.

    Returns:
        The :class:`~knotsense.dsp.results.Analysis` (episodes, onsets, summary,
        signals); ``to_dict()`` is ``knotsense analyze --json``'s output.

    Raises:
        SessionFileError: the file cannot be read, or has no forces to analyse.
        ConfigurationError: an unknown option, or no release threshold anywhere.
        CalibrationError: the calibration given is not usable.
    """
    from knotsense.dsp.config import PipelineConfig
    from knotsense.dsp.pipeline import analyze as run_pipeline

    table = _table(source)
    known = {f.name for f in dataclasses.fields(PipelineConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown analysis option(s) {', '.join(unknown)} (see PipelineConfig)"
        )
    if options.get("release_threshold") is None:
        options["release_threshold"] = table.meta.get("release_threshold")
    if options["release_threshold"] is None:
        raise ConfigurationError("release_threshold is required (the session metadata has none)")
    x = table.forces
    if options.get("calibration") is not None:
        options["calibration"] = _calibration(options["calibration"])
        if table.raw is None:
            raise SessionFileError("a calibration was given but the session has no raw counts")
        x = table.raw
    elif table.forces.shape[1] == 0:
        raise SessionFileError(
            "the session has only raw counts (no calibration): pass calibration=..."
        )
    config = PipelineConfig(**options)
    return run_pipeline(table.t, np.asarray(x), config)


def _table(source: Source) -> ForceTable:
    if isinstance(source, ForceTable):
        return source
    if isinstance(source, Session):
        return table_of_session(source)
    if isinstance(source, str | os.PathLike):
        loaded = load(source)
        return loaded if isinstance(loaded, ForceTable) else table_of_session(loaded)
    raise ConfigurationError(
        f"analyze() takes a path, a Session or a ForceTable, not {type(source).__name__}"
    )


def _calibration(value: Any) -> Calibration:
    from knotsense.dsp.calibration_models import Calibration
    from knotsense.dsp.calibration_record import calibration_of, is_record, parse_record

    if isinstance(value, Calibration):
        return value
    if is_record(value):
        return calibration_of(parse_record(value))
    if isinstance(value, Mapping):
        return Calibration.from_dict(value)
    raise ConfigurationError(
        f"calibration must be a Calibration, its dict or a calibration record, "
        f"not {type(value).__name__}"
    )
