"""Release: sustained release-level pressure held for ``hold`` seconds (DESIGN.md)."""

from __future__ import annotations

import math
from typing import ClassVar

from knotsense.dsp.detectors.interval import FloatArray, IntervalDetector
from knotsense.dsp.detectors.records import Episode, ReleaseEpisode
from knotsense.errors import ConfigurationError

__all__ = ["ReleaseDetector"]


class ReleaseDetector(IntervalDetector):
    """Release: level >= threshold, dips <= ``gap`` bridged, lasting >= ``hold``."""

    kind: ClassVar[str] = "release"

    def __init__(
        self,
        threshold: float,
        dt: float,
        hold: float = 60.0,
        gap: float = 2.0,
        delay: float = 0.0,
    ) -> None:
        if not (math.isfinite(hold) and hold > 0):
            raise ConfigurationError(f"release hold must be > 0 s, got {hold!r}")
        super().__init__(threshold, gap, hold, dt, delay)

    def _episode(self, start: float, end: float, detected_at: float, vals: FloatArray) -> Episode:
        return ReleaseEpisode(
            start,
            end,
            detected_at,
            float(vals.mean()),
            float(vals.min()),
            float(vals.max()),
            self.threshold,
        )
