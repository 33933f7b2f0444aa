"""Session summary: what happened on the knob, in figures a person reads.

Built from the closed episodes and the pipeline's quality counters, so live
and offline summaries agree. ``to_dict()`` is JSON-safe (no NaN, no numpy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from knotsense.dsp.detectors import (
    ContactEpisode,
    Episode,
    OverpressureEpisode,
    ReleaseEpisode,
    RockingEpisode,
)
from knotsense.dsp.motion import CirclingEpisode

__all__ = ["SessionSummary", "summarize"]


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


@dataclass(frozen=True)
class SessionSummary:
    """Contacts, releases, release-band time, overpressure, rocking, circling and signal quality."""

    duration: float
    contacts: tuple[ContactEpisode, ...]
    releases: tuple[ReleaseEpisode, ...]
    overpressures: tuple[OverpressureEpisode, ...]
    rockings: tuple[RockingEpisode, ...]
    band_time: float
    release_threshold: float | None
    hold: float
    gap: float
    max_force: float | None
    quality: dict[str, Any]
    circlings: tuple[CirclingEpisode, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        rel = self.releases
        rock = self.rockings
        return {
            "duration_s": _r(self.duration),
            "contacts": {
                "count": len(self.contacts),
                "time_s": _r(sum(c.duration for c in self.contacts)),
            },
            "releases": {
                "count": len(rel),
                "threshold_n": self.release_threshold,
                "hold_s": self.hold,
                "gap_s": self.gap,
                "hold_times_s": [_r(r.duration) for r in rel],
                "mean_forces_n": [_r(r.mean_force, 2) for r in rel],
                "longest_s": _r(max((r.duration for r in rel), default=0.0)),
                "mean_force_n": _r(np.mean([r.mean_force for r in rel]), 2) if rel else None,
            },
            "time_in_release_band_s": _r(self.band_time),
            "overpressure": {
                "count": len(self.overpressures),
                "max_force_n": self.max_force,
                "time_s": _r(sum(o.duration for o in self.overpressures)),
                "peak_n": _r(max(o.peak_force for o in self.overpressures), 2)
                if self.overpressures
                else None,
            },
            "rocking": {
                "count": len(rock),
                "time_s": _r(sum(r.duration for r in rock)),
                "frequencies_hz": [_r(r.frequency) for r in rock],
                "cycles": [r.cycles for r in rock],
                "axes_deg": [None if r.axis is None else _r(r.axis, 1) for r in rock],
                "extents_mm": [None if r.extent is None else _r(r.extent, 2) for r in rock],
            },
            "circling": {
                "count": len(self.circlings),
                "time_s": _r(sum(c.duration for c in self.circlings)),
                "turns": [_r(c.turns, 2) for c in self.circlings],
                "directions": [c.direction for c in self.circlings],
                "radii_mm": [_r(c.radius, 2) for c in self.circlings],
            },
            "signal_quality": self.quality,
        }


def summarize(
    episodes: Iterable[Episode], quality: Any, config: Any, band_time: float = 0.0
) -> SessionSummary:
    """Summarise closed *episodes* with the pipeline's *quality* stats and *config*."""
    eps = sorted(episodes, key=lambda e: e.start)
    q = quality.to_dict()
    span = quality.last_t - quality.first_t if quality.samples > 1 else 0.0
    return SessionSummary(
        duration=float(span) if np.isfinite(span) else 0.0,
        contacts=tuple(e for e in eps if isinstance(e, ContactEpisode)),
        releases=tuple(e for e in eps if isinstance(e, ReleaseEpisode)),
        overpressures=tuple(e for e in eps if isinstance(e, OverpressureEpisode)),
        rockings=tuple(e for e in eps if isinstance(e, RockingEpisode)),
        band_time=band_time,
        release_threshold=config.release_threshold,
        hold=config.hold,
        gap=config.gap,
        max_force=config.max_force,
        quality=q,
        circlings=tuple(e for e in eps if isinstance(e, CirclingEpisode)),
    )
