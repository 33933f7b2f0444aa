"""Contact: someone on the knob (level above a small floor, default 5 N)."""

from __future__ import annotations

from typing import ClassVar

from knotsense.dsp.detectors.interval import FloatArray, IntervalDetector
from knotsense.dsp.detectors.records import ContactEpisode, Episode

__all__ = ["ContactDetector"]


class ContactDetector(IntervalDetector):
    """Contact: level above a small floor (default 5 N); splits a session into contacts."""

    kind: ClassVar[str] = "contact"

    def _episode(self, start: float, end: float, detected_at: float, vals: FloatArray) -> Episode:
        return ContactEpisode(start, end, detected_at, float(vals.mean()), float(vals.max()))
