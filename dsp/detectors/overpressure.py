"""Overpressure: the level above the user's maximum for over a second."""

from __future__ import annotations

from typing import ClassVar

from knotsense.dsp.detectors.interval import FloatArray, IntervalDetector
from knotsense.dsp.detectors.records import Episode, OverpressureEpisode

__all__ = ["OverpressureDetector"]


class OverpressureDetector(IntervalDetector):
    """Overpressure: level above the user's maximum for longer than ``min_duration`` (1 s)."""

    kind: ClassVar[str] = "overpressure"

    def __init__(
        self,
        max_force: float,
        dt: float,
        min_duration: float = 1.0,
        gap: float = 0.25,
        delay: float = 0.0,
    ) -> None:
        super().__init__(max_force, gap, min_duration, dt, delay)

    def _episode(self, start: float, end: float, detected_at: float, vals: FloatArray) -> Episode:
        return OverpressureEpisode(start, end, detected_at, float(vals.max()), self.threshold)
