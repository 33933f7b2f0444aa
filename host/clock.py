"""Device time to host time.

The device stamps samples with a u32 microsecond counter that wraps every
71.6 minutes and runs off a crystal that is tens of ppm off the host clock.
:class:`DeviceClock` unwraps the counter into a continuous timeline;
:class:`ClockMapper` estimates offset and drift between that timeline and the
host clock, so an hour-long session does not drift by tens of milliseconds.

Receive latency is only ever positive (a frame cannot arrive before it was
sent), so the best evidence of the true offset is the *lower envelope* of
``host_rx - device_t``: the mapper keeps the minimum per window and fits a
line through those minima.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WRAP_US = 1 << 32
HALF_WRAP_US = 1 << 31


class DeviceClock:
    """Unwraps the device's u32 microsecond counter, across calls.

    A backwards jump of more than half the counter range is a wrap; a device
    reboot restarts the counter and needs :meth:`reset` (the caller knows,
    from the BOOT event or a sequence reset).
    """

    def __init__(self) -> None:
        self._last: int | None = None
        self._base = 0

    def unwrap(self, t_us: np.ndarray | list[int] | int) -> np.ndarray:
        """Continuous int64 microseconds for wrapped u32 stamps, in arrival order."""
        raw = np.atleast_1d(np.asarray(t_us, dtype=np.int64)) & 0xFFFFFFFF
        if raw.size == 0:
            return raw
        prev = np.empty_like(raw)
        prev[0] = raw[0] if self._last is None else self._last
        prev[1:] = raw[:-1]
        wraps = np.cumsum((raw - prev) < -HALF_WRAP_US)
        out = raw + self._base + wraps * WRAP_US
        self._base += int(wraps[-1]) * WRAP_US
        self._last = int(raw[-1])
        return out

    def reset(self, base_us: int = 0) -> None:
        """Start over after a device reboot; the new counter continues at *base_us*."""
        self._last = None
        self._base = base_us


@dataclass
class ClockMapper:
    """Maps device seconds to host seconds: ``host = device + offset + drift * device``.

    Args:
        window_s: device-time width of one envelope window; latency spikes
            shorter than a window are ignored.
        max_windows: envelope points kept for the fit (older ones are dropped).
    """

    window_s: float = 2.0
    max_windows: int = 4096
    _points_t: list[float] = field(default_factory=list, repr=False)
    _points_off: list[float] = field(default_factory=list, repr=False)
    _window_start: float | None = field(default=None, repr=False)
    _window_best: tuple[float, float] | None = field(default=None, repr=False)
    _offset: float | None = field(default=None, repr=False)
    _drift: float = field(default=0.0, repr=False)

    def add(self, device_s: float | np.ndarray, host_s: float | np.ndarray) -> None:
        """Add (device time, host receive time) observations."""
        d = np.atleast_1d(np.asarray(device_s, dtype=np.float64))
        h = np.atleast_1d(np.asarray(host_s, dtype=np.float64))
        for t, off in zip(d.tolist(), (h - d).tolist(), strict=True):
            if self._window_start is None or t - self._window_start >= self.window_s:
                self._close_window()
                self._window_start = t
            best = self._window_best
            if best is None or off < best[1]:
                self._window_best = (t, off)
            if self._offset is None or not self._points_t:
                # Until a window closes, the best guess is the smallest offset so far.
                self._offset = off if self._offset is None else min(self._offset, off)

    def _close_window(self) -> None:
        if self._window_best is None:
            return
        t, off = self._window_best
        self._points_t.append(t)
        self._points_off.append(off)
        if len(self._points_t) > self.max_windows:
            del self._points_t[0], self._points_off[0]
        self._window_best = None
        self._fit()

    def _fit(self) -> None:
        t = np.asarray(self._points_t)
        off = np.asarray(self._points_off)
        if t.size >= 3 and np.ptp(t) > 0:
            # Two passes: fit, drop points above the line (latency), refit.
            drift, offset = np.polyfit(t, off, 1)
            residual = off - (offset + drift * t)
            keep = residual <= np.median(residual)
            if keep.sum() >= 2 and np.ptp(t[keep]) > 0:
                drift, offset = np.polyfit(t[keep], off[keep], 1)
            self._drift, self._offset = float(drift), float(offset)
        else:
            self._offset = float(off.min()) - self._drift * float(t[off.argmin()])

    def map(self, device_s: float | np.ndarray) -> float | np.ndarray:
        """Host time for device time(s)."""
        offset = 0.0 if self._offset is None else self._offset
        return device_s + offset + self._drift * device_s

    @property
    def drift_ppm(self) -> float:
        """Estimated device clock error in parts per million (device slow > 0)."""
        return self._drift * 1e6

    @property
    def ready(self) -> bool:
        """True once an offset has been observed."""
        return self._offset is not None

    def reset_epoch(self) -> None:
        """The device clock restarted (reboot): keep the drift, re-learn the offset."""
        self._points_t.clear()
        self._points_off.clear()
        self._window_start = None
        self._window_best = None
        self._offset = None
