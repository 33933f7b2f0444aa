"""Firmware parts of the simulated device: NVM, sampler, on-device detectors.

Everything here runs on blocks of samples with numpy; Python loops run once
per state change (a threshold crossing), never once per sample.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.config import ChannelFault
from knotsense.firmware_sim.physics import SensorFrontEnd, UnitParams, unit_seed
from knotsense.protocol import (
    ChannelWeight,
    DeviceEvent,
    EventCode,
    ThresholdFlags,
    Thresholds,
)

NVM_FORMAT = "knotsense-sim-nvm/1"
DEFAULT_DEBOUNCE_MS = 250
DEFAULT_HOLD_S = 60
SAMPLER_CHUNK_S = 1.0
"""Samples are generated in chunks of this much device time, fixed by sample index."""


# --- NVM ----------------------------------------------------------------------------------


def default_thresholds(channels: int) -> Thresholds:
    """Thresholds of a fresh unit: detector disabled, zero weights."""
    return Thresholds(
        ThresholdFlags.NONE,
        DEFAULT_DEBOUNCE_MS,
        DEFAULT_HOLD_S,
        0,
        0,
        0,
        tuple(ChannelWeight(0, 0) for _ in range(channels)),
    )


@dataclass
class Nvm:
    """Non-volatile memory: survives reboots, and runs when ``path`` is set (a JSON file).

    Attributes:
        calibration_id: id of the stored calibration record (0 = none).
        calibration: the calibration record blob (opaque to the device).
        thresholds: the detector configuration, tare zeros included.
        writes: NVM write cycles (for tests and wear figures).
    """

    channels: int
    path: str | None = None
    calibration_id: int = 0
    calibration: bytes = b""
    thresholds: Thresholds | None = None
    writes: int = 0
    serial: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.thresholds is None:
            self.thresholds = default_thresholds(self.channels)
        if self.path and os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(Path(self.path).read_text(encoding="utf-8"))
            if data.get("format") != NVM_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, want {NVM_FORMAT!r}")
            calibration = bytes.fromhex(data["calibration"])
            thresholds = Thresholds.decode(bytes.fromhex(data["thresholds"]))
            cal_id = int(data["calibration_id"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"unusable NVM file {self.path}: {exc}") from None
        except Exception as exc:  # MessageError from a corrupt thresholds record
            raise ConfigurationError(f"unusable NVM file {self.path}: {exc}") from None
        if len(thresholds.channels) != self.channels:
            raise ConfigurationError(
                f"NVM file {self.path} is for {len(thresholds.channels)} channels, "
                f"this unit has {self.channels}"
            )
        self.calibration = calibration
        self.calibration_id = cal_id
        self.thresholds = thresholds
        self.writes = int(data.get("writes", 0))

    def commit(self) -> None:
        """Count a write cycle and, with a path, write the file atomically."""
        self.writes += 1
        if not self.path:
            return
        assert self.thresholds is not None
        data = {
            "format": NVM_FORMAT,
            "serial": self.serial,
            "calibration_id": self.calibration_id,
            "calibration": self.calibration.hex(),
            "thresholds": self.thresholds.encode().hex(),
            "writes": self.writes,
        }
        tmp = f"{self.path}.tmp"
        Path(tmp).write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


# --- sampler ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SampleChunk:
    """Samples taken by the sampler, in order."""

    k: np.ndarray
    """Sample index since the sampler started."""
    t_host: np.ndarray
    """Nominal host time of each sample (its timer tick)."""
    t_us: np.ndarray
    """Device clock at acquisition, microseconds since boot (not wrapped), int64."""
    raw: np.ndarray
    """Raw counts (n, C), int64, faults applied."""

    @property
    def n(self) -> int:
        return int(self.k.size)


class Sampler:
    """A timer at ``rate`` Hz on the device clock driving the ADC through the physics.

    The device clock runs ``ratio = 1 + ppm * 1e-6`` times faster than the host
    clock and starts at host time ``h_boot``. Sample k's timer tick is at
    device time ``start_dev + k / rate``; it is acquired a little later (ISR
    latency, a few microseconds of jitter) and stamped with that time.
    Chunks of samples are generated by index, so the same samples come out
    however the caller steps time.
    """

    def __init__(
        self,
        front: SensorFrontEnd,
        unit: UnitParams,
        seed: int,
        generation: int,
        rate: int,
        h_boot: float,
        ratio: float,
        start_dev: float,
        stuck: tuple[ChannelFault, ...] = (),
        saturate: tuple[ChannelFault, ...] = (),
    ) -> None:
        self.front = front
        self.unit = unit
        self.seed = seed
        self.generation = generation
        self.rate = rate
        self.h_boot = h_boot
        self.ratio = ratio
        self.start_dev = start_dev
        self.chunk = max(32, int(rate * SAMPLER_CHUNK_S))
        self.next_k = 0
        self._cache_index = -1
        self._cache: SampleChunk | None = None
        self._stuck = [f for f in stuck if f.channel < unit.channels]
        self._saturate = [f for f in saturate if f.channel < unit.channels]
        self._frozen: dict[int, int] = {}

    def host_time(self, k: int | np.ndarray) -> float | np.ndarray:
        """Nominal host time of sample k's timer tick."""
        return self.h_boot + (self.start_dev + np.asarray(k) / self.rate) / self.ratio

    def due(self, h: float) -> int:
        """Number of samples whose tick is at or before host time *h*."""
        x = ((h - self.h_boot) * self.ratio - self.start_dev) * self.rate
        return max(0, math.floor(x + 1e-7) + 1)

    def take_until(self, h: float) -> SampleChunk | None:
        """All samples not yet taken whose tick is at or before *h*."""
        end = self.due(h)
        if end <= self.next_k:
            return None
        parts = []
        k = self.next_k
        while k < end:
            j = k // self.chunk
            chunk = self._generate(j)
            a = k - j * self.chunk
            b = min(end, (j + 1) * self.chunk) - j * self.chunk
            parts.append(
                chunk
                if a == 0 and b == chunk.n
                else SampleChunk(chunk.k[a:b], chunk.t_host[a:b], chunk.t_us[a:b], chunk.raw[a:b])
            )
            k = j * self.chunk + b
        self.next_k = end
        if len(parts) == 1:
            return parts[0]
        return SampleChunk(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def _generate(self, j: int) -> SampleChunk:
        if j == self._cache_index and self._cache is not None:
            return self._cache
        unit = self.unit
        k = np.arange(j * self.chunk, (j + 1) * self.chunk, dtype=np.int64)
        rng = np.random.default_rng([self.seed, unit_seed(unit.serial), self.generation, j])
        jitter = np.abs(rng.standard_normal(k.size)) * (unit.jitter_us * 1e-6)
        noise = rng.standard_normal((k.size, unit.channels), dtype=np.float32)
        dev = self.start_dev + k / self.rate
        acquired = dev + jitter
        t_host = self.h_boot + dev / self.ratio
        _, raw, _ = self.front.process(
            self.h_boot + acquired / self.ratio, noise, self.rate, forces=False
        )
        for fault in self._stuck:
            hit = t_host >= fault.start
            if hit.any():
                first = int(np.argmax(hit))
                value = self._frozen.setdefault(fault.channel, int(raw[first, fault.channel]))
                raw[hit, fault.channel] = value
        for fault in self._saturate:
            raw[t_host >= fault.start, fault.channel] = unit.adc_max
        chunk = SampleChunk(k, t_host, np.rint(acquired * 1e6).astype(np.int64), raw)
        self._cache_index, self._cache = j, chunk
        return chunk


_FIELDS = ("k", "t_host", "t_us", "raw")


# --- on-device detectors ------------------------------------------------------------------


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
