"""What the pipeline returns: per-call output, quality figures and the offline analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knotsense.dsp.detectors import Episode, Event, Onset

FloatArray = NDArray[np.float64]

__all__ = ["Analysis", "PipelineOutput"]


@dataclass(frozen=True)
class PipelineOutput:
    """What one ``process`` call produced: new bins and the events they completed.

    Attributes:
        t: bin centres (s); ``total`` their mean total force, ``level`` the low-passed
            total, ``osc`` the band-passed rocking signal, ``channels`` per-channel
            means (N), ``cop`` the centre of pressure (mm) when positions are known.
        events: onsets and closed episodes, in the order they were detected.
    """

    t: FloatArray
    total: FloatArray
    level: FloatArray
    osc: FloatArray
    channels: FloatArray
    cop: FloatArray | None
    events: tuple[Event, ...] = field(default=())

    @staticmethod
    def concat(parts: list[PipelineOutput]) -> PipelineOutput:
        """Join consecutive outputs (offline)."""
        cops = [p.cop for p in parts if p.cop is not None]
        return PipelineOutput(
            np.concatenate([p.t for p in parts]),
            np.concatenate([p.total for p in parts]),
            np.concatenate([p.level for p in parts]),
            np.concatenate([p.osc for p in parts]),
            np.concatenate([p.channels for p in parts]),
            np.concatenate(cops) if cops and len(cops) == len(parts) else None,
            tuple(e for p in parts for e in p.events),
        )


@dataclass(frozen=True)
class Analysis:
    """Offline result: closed episodes (by start), onsets, summary and the decimated signals."""

    episodes: tuple[Episode, ...]
    onsets: tuple[Onset, ...]
    summary: Any
    signals: PipelineOutput

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON: ``{"events": [...], "summary": {...}}``."""
        return {
            "events": [e.to_dict() for e in self.episodes],
            "summary": self.summary.to_dict(),
        }
