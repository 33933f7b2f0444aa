"""Device time to host time, one epoch (device boot) at a time.

Per epoch, device time is mapped to host time with
:class:`~knotsense.host.clock.ClockMapper` (a line through the lower envelope
of ``host_rx - device_t``; receive latency is only ever positive), so crystal
drift of tens of ppm does not accumulate.
"""

from __future__ import annotations

import numpy as np

from knotsense.host.clock import ClockMapper

__all__ = ["EpochClock", "fit_epoch_clock"]


class EpochClock:
    """One epoch's ClockMapper, lowered so that no frame maps after its receive time."""

    def __init__(self, mapper: ClockMapper, correction: float) -> None:
        self.mapper = mapper
        self.correction = correction

    def map(self, device_s: np.ndarray | float) -> np.ndarray | float:
        return self.mapper.map(device_s) + self.correction

    @property
    def drift_ppm(self) -> float:
        return self.mapper.drift_ppm


def fit_epoch_clock(device_s: np.ndarray, host_s: np.ndarray) -> EpochClock:
    """Device-to-host mapping for one epoch's (device time, receive time) pairs.

    The envelope window grows with the session (about 300 windows, 0.5-30 s)
    and is at least four times the typical spacing of receive times, so even a
    bursty link puts a promptly received frame in most windows. Observations
    are reduced to their lower envelope per quarter window first (vectorised);
    the ClockMapper only sees those minima, which does not change its fit.
    Finally the line is lowered, if needed, below every observation: a frame
    cannot be received before its last sample was taken.
    """
    span = float(device_s[-1] - device_s[0]) if device_s.size else 0.0
    distinct = np.diff(np.unique(host_s))
    burst = float(np.median(distinct)) if distinct.size else 0.0
    window = min(30.0, max(0.5, span / 300, 4 * burst))
    mapper = ClockMapper(window_s=window)
    if device_s.size == 0:
        return EpochClock(mapper, 0.0)
    offset = host_s - device_s
    bins = np.floor((device_s - device_s[0]) / (window / 4)).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    group = np.repeat(np.arange(starts.size), np.diff(np.append(starts, bins.size)))
    lowest = np.minimum.reduceat(offset, starts)
    at = np.flatnonzero(offset == lowest[group])
    first = at[np.concatenate(([True], group[at][1:] != group[at][:-1]))]
    mapper.add(device_s[first], host_s[first])
    correction = min(0.0, float(np.min(host_s - mapper.map(device_s))))
    return EpochClock(mapper, correction)
