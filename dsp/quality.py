"""Signal quality seen by the pipeline: samples, NaNs, spikes, saturation and holes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["QualityCounter", "QualityStats"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class QualityStats:
    """Signal quality seen so far (for the summary)."""

    samples: int
    nan_samples: int
    spikes: int
    saturated: int
    gaps: tuple[tuple[float, float], ...]
    gap_time: float
    first_t: float
    last_t: float
    filled_bins: int

    def to_dict(self) -> dict[str, Any]:
        longest = max((b - a for a, b in self.gaps), default=0.0)
        span = self.last_t - self.first_t if self.samples > 1 else 0.0
        rate = (
            (self.samples - self.nan_samples - 1) / (span - self.gap_time)
            if span > self.gap_time
            else 0.0
        )
        return {
            "samples": self.samples,
            "sample_rate_hz": round(rate, 2),
            "gaps": len(self.gaps),
            "gap_time_s": round(self.gap_time, 3),
            "longest_gap_s": round(longest, 3),
            "nan_samples": self.nan_samples,
            "spikes_removed": self.spikes,
            "saturated_samples": self.saturated,
        }


class QualityCounter:
    """The running counts behind :class:`QualityStats` (holes longer than ``quality_gap``
    among the valid sample times, NaN and saturated samples, interpolated bins)."""

    def __init__(self, quality_gap: float, saturation: tuple[float, float] | None) -> None:
        self.quality_gap = quality_gap
        self.saturation = saturation
        self.reset()

    def reset(self) -> None:
        self.last_valid_t = math.nan
        self.first_t = math.nan
        self.samples = self.nan = self.saturated = self.filled = 0
        self.gaps: list[tuple[float, float]] = []
        self.gap_time = 0.0

    def stats(self, spikes: int) -> QualityStats:
        return QualityStats(
            self.samples,
            self.nan,
            spikes,
            self.saturated,
            tuple(self.gaps),
            self.gap_time,
            self.first_t,
            self.last_valid_t,
            self.filled,
        )

    def count_saturated(self, xx: NDArray) -> None:
        if self.saturation is not None:
            lo, hi = self.saturation
            self.saturated += int(((xx <= lo) | (xx >= hi)).any(axis=1).sum())

    def clean(self, t0: float, t1: float, dmax: float, tt: FloatArray) -> None:
        """Bookkeeping for a chunk without NaN whose largest step *dmax* is known."""
        if math.isnan(self.first_t):
            self.first_t = t0
        prev = self.last_valid_t if not math.isnan(self.last_valid_t) else t0
        qg = self.quality_gap
        if t0 - prev > qg or dmax > qg:
            self.steps(tt)
        self.last_valid_t = t1

    def steps(self, tv: FloatArray) -> None:
        """Count the holes longer than ``quality_gap`` among valid sample times *tv*."""
        if not tv.size:
            return
        if math.isnan(self.first_t):
            self.first_t = float(tv[0])
        prev = self.last_valid_t if not math.isnan(self.last_valid_t) else tv[0]
        steps = np.empty_like(tv)
        steps[0] = tv[0] - prev
        np.subtract(tv[1:], tv[:-1], out=steps[1:])
        for i in np.flatnonzero(steps > self.quality_gap):
            a = float(tv[i - 1]) if i > 0 else float(prev)
            self.gaps.append((a, float(tv[i])))
            self.gap_time += float(tv[i]) - a
        self.last_valid_t = float(tv[-1])
