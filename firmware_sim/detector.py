"""The on-device detectors: threshold events (release, overpressure) and stuck channels.

Everything here runs on blocks of samples with numpy; Python loops run once
per state change (a threshold crossing), never once per sample.
"""

from __future__ import annotations

import numpy as np

from knotsense.protocol import DeviceEvent, EventCode, ThresholdFlags, Thresholds


class Debounced:
    """A boolean that must hold for ``debounce_us`` before the debounced state follows it."""

    def __init__(self, debounce_us: int) -> None:
        self.debounce_us = debounce_us
        self.raw = False
        self.raw_since = 0
        self.state = False

    def process(self, cond: np.ndarray, t_us: np.ndarray) -> list[tuple[int, bool, int]]:
        """Feed one block; returns (sample index, new state, raw run start in us) per change."""
        out: list[tuple[int, bool, int]] = []
        if cond.size == 0:
            return out
        change = np.flatnonzero(cond[1:] != cond[:-1]) + 1
        starts = [0, *change.tolist()]
        ends = [*change.tolist(), cond.size]
        for a, b in zip(starts, ends, strict=True):
            value = bool(cond[a])
            if value != self.raw:
                self.raw = value
                self.raw_since = int(t_us[a])
            if value != self.state:
                fire = self.raw_since + self.debounce_us
                j = a + int(np.searchsorted(t_us[a:b], fire, side="left"))
                if j < b:
                    self.state = value
                    out.append((j, value, self.raw_since))
        return out


class ThresholdDetector:
    """The on-device release/overpressure detector of :class:`Thresholds`, in integer arithmetic.

    Load index per sample: ``L = sum((raw_i - zero_i) * weight_q16_i) >> 16``
    (int64, arithmetic shift), exactly :meth:`Thresholds.load_index`.

    * Release-level pressure is a latch: on when ``L >= release_on``, off when
      ``L < release_off``. RELEASE_ENTER fires when the latch has been on for
      ``debounce_ms``; RELEASE_EXIT when it has been off for ``debounce_ms``
      (so dips shorter than the debounce are bridged). RELEASE_HOLD_REACHED
      fires once per episode ``hold_s`` after the latch turned on (the start
      of the episode), if the episode is still on.
    * Overpressure is ``L > overpressure_on``, debounced the same way
      (OVERPRESSURE_ENTER / OVERPRESSURE_EXIT).

    Events carry the device time of the sample that fired them, ``arg`` 0xFF and
    the load index of that sample as ``value`` (clamped to int32).
    """

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        c = len(thresholds.channels)
        self.zero = np.array([ch.zero for ch in thresholds.channels], dtype=np.int64).reshape(1, c)
        self.weight = np.array([ch.weight_q16 for ch in thresholds.channels], dtype=np.int64)
        self.release_enabled = bool(thresholds.flags & ThresholdFlags.RELEASE_ENABLED)
        self.over_enabled = bool(thresholds.flags & ThresholdFlags.OVERPRESSURE_ENABLED)
        debounce = thresholds.debounce_ms * 1000
        self.latch = False
        self.release = Debounced(debounce)
        self.over = Debounced(debounce)
        self.episode_start: int | None = None
        self.hold_fired = False

    @property
    def enabled(self) -> bool:
        return self.release_enabled or self.over_enabled

    def load_index(self, raw: np.ndarray) -> np.ndarray:
        """Load index of every sample (n,), int64."""
        return ((raw - self.zero) * self.weight).sum(axis=1) >> 16

    def process(self, raw: np.ndarray, t_us: np.ndarray) -> list[tuple[int, DeviceEvent]]:
        """Feed a block; returns (sample index in the block, event) in order."""
        if not self.enabled or raw.shape[0] == 0:
            return []
        th = self.thresholds
        load = self.load_index(raw)
        events: list[tuple[int, int, EventCode]] = []
        if self.release_enabled:
            s = np.where(load >= th.release_on, 1, np.where(load < th.release_off, 0, -1))
            idx = np.where(s >= 0, np.arange(s.size), -1)
            last = np.maximum.accumulate(idx)
            latch = np.where(last >= 0, s[np.maximum(last, 0)], int(self.latch)).astype(bool)
            self.latch = bool(latch[-1])
            pos = 0
            for j, on, since in self.release.process(latch, t_us):
                if on:
                    events.append((j, 0, EventCode.RELEASE_ENTER))
                    self.episode_start, self.hold_fired = since, False
                else:
                    self._hold(events, t_us, pos, j)
                    events.append((j, 0, EventCode.RELEASE_EXIT))
                    self.episode_start = None
                pos = j
            self._hold(events, t_us, pos, t_us.size)
        if self.over_enabled:
            for j, on, _ in self.over.process(load > th.overpressure_on, t_us):
                code = EventCode.OVERPRESSURE_ENTER if on else EventCode.OVERPRESSURE_EXIT
                events.append((j, 1, code))
        events.sort(key=lambda e: (e[0], e[1]))
        return [
            (
                j,
                DeviceEvent(
                    int(t_us[j]) & 0xFFFFFFFF,
                    code,
                    0xFF,
                    int(np.clip(load[j], -(2**31), 2**31 - 1)),
                ),
            )
            for j, _, code in events
        ]

    def _hold(self, events: list, t_us: np.ndarray, a: int, b: int) -> None:
        """Fire RELEASE_HOLD_REACHED in samples [a, b) if the episode's hold is due there."""
        hold = self.thresholds.hold_s
        if self.episode_start is None or self.hold_fired or hold == 0:
            return
        due = self.episode_start + hold * 1_000_000
        j = a + int(np.searchsorted(t_us[a:b], due, side="left"))
        if j < b:
            events.append((j, 0, EventCode.RELEASE_HOLD_REACHED))
            self.hold_fired = True


class StuckDetector:
    """Flags a channel whose raw value has not changed for ``window`` samples.

    Real ADC noise never repeats a value that long; a value at the ADC limit
    is saturation, not a stuck sensor, and is not flagged.
    """

    def __init__(self, channels: int, window: int, adc_min: int, adc_max: int) -> None:
        self.window = window
        self.adc_min, self.adc_max = adc_min, adc_max
        self.run = np.zeros(channels, dtype=np.int64)
        self.last = np.full(channels, np.iinfo(np.int64).min, dtype=np.int64)
        self.stuck = np.zeros(channels, dtype=bool)

    def process(self, raw: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Returns (stuck flags (n, C), [(sample index, channel)] where a fault starts)."""
        n = raw.shape[0]
        prev = np.empty_like(raw)
        prev[0] = self.last
        prev[1:] = raw[:-1]
        same = raw == prev
        if not self.stuck.any() and int(self.run.max()) + n < self.window - 1:
            # Fast path: no run can reach the window in this block.
            self._carry(same)
            self.last = raw[-1].copy()
            return np.zeros(raw.shape, dtype=bool), []
        same &= (raw != self.adc_max) & (raw != self.adc_min)
        idx = np.arange(n)[:, None]
        reset = np.where(~same, idx, -1)
        last_reset = np.maximum.accumulate(reset, axis=0)
        run = np.where(last_reset >= 0, idx - last_reset, idx + 1 + self.run[None, :])
        stuck = run >= self.window
        starts = stuck & ~np.vstack((self.stuck[None, :], stuck[:-1]))
        self.run = run[-1].copy()
        self.last = raw[-1].copy()
        self.stuck = stuck[-1].copy()
        where = np.argwhere(starts)
        return stuck, [(int(i), int(c)) for i, c in where]

    def _carry(self, same: np.ndarray) -> None:
        """Update the per-channel run length from a block's equality flags."""
        n = same.shape[0]
        broken = ~same
        any_break = broken.any(axis=0)
        last_break = n - 1 - np.argmax(broken[::-1], axis=0)
        self.run = np.where(any_break, n - 1 - last_break, self.run + n)
