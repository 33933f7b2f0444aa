"""The DSP chain: calibration -> spike rejection -> decimation -> filters -> detectors.

Only the cheap, per-sample work runs at the input rate (calibration or one
matrix product, the Hampel candidates, the bin sums); everything else runs on
``detector_rate`` bins (25 Hz by default), which is plenty for 0.4-3 Hz rocking
and for release timing, and is what makes an hour of 8 x 1 kHz cost about as
much as a single low-pass filter.

Live use: ``process(t, x)`` per chunk, ``finish()`` at the end. Offline use:
:func:`analyze`, which is the same object fed the whole record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.dsp.calibration_models import Calibration
from knotsense.dsp.detectors import (
    ContactDetector,
    Episode,
    Event,
    Onset,
    OverpressureDetector,
    ReleaseDetector,
    RockingDetector,
)
from knotsense.dsp.filters import BandPass, BinAverager, Binned, LowPass, SpikeFilter
from knotsense.dsp.signals import balance_axis, balance_force, centre_of_pressure
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = ["Analysis", "Pipeline", "PipelineConfig", "PipelineOutput", "QualityStats", "analyze"]

_KIND_ORDER = {"contact": 0, "release": 1, "overpressure": 2, "rocking": 3}


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of the chain, with the documented defaults (DESIGN.md).

    Attributes:
        release_threshold: release level (N); None disables release detection.
        hold: seconds a release must last (60; 60-90 s is the clinical range).
        gap: dips below the threshold up to this long are bridged (s).
        max_force: the user's maximum (N); None disables overpressure.
        overpressure_time: overpressure needs the level above max for this long (s).
        contact_floor: contact when the level is above this (N).
        rocking_*: band (Hz), swing ``max(min_p2p, rel_p2p * mean)`` and cycle count.
        rocking_source: "total" or "balance" (load moved along the sensor layout).
        detector_rate: rate of the decimated stream the detectors see (Hz).
        level_cutoff: low-pass cutoff for the pressure level (Hz).
        band: band-pass for oscillations (Hz).
        max_gap: a hole in the data longer than this restarts the filters (s);
            shorter holes are bridged by interpolation.
        quality_gap: holes longer than this are counted as gaps in the summary (s).
        spike_*: Hampel window (samples), threshold (MADs) and floor (N).
        positions: channel positions in mm (one row per channel), for the
            centre of pressure and the balance signal.
        saturation: (low, high) input values counted as saturated (counts when
            a calibration is given, N otherwise).
        calibration: raw counts -> N; None when the input is already in N.
    """

    release_threshold: float | None = None
    hold: float = 60.0
    gap: float = 2.0
    max_force: float | None = None
    overpressure_time: float = 1.0
    contact_floor: float = 5.0
    contact_gap: float = 0.5
    contact_min: float = 0.5
    rocking_min_freq: float = 0.4
    rocking_max_freq: float = 3.0
    rocking_min_p2p: float = 8.0
    rocking_rel_p2p: float = 0.15
    rocking_min_cycles: int = 3
    rocking_source: str = "total"
    detector_rate: float = 25.0
    level_cutoff: float = 1.0
    band: tuple[float, float] = (0.15, 6.0)
    max_gap: float = 0.5
    quality_gap: float = 0.1
    spike_window: int = 5
    spike_sigmas: float = 4.0
    spike_min_jump: float = 5.0
    positions: tuple[tuple[float, ...], ...] | None = None
    saturation: tuple[float, float] | None = None
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        def positive(name: str, value: float | None, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if value is None or not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")

        positive("release threshold", self.release_threshold, allow_none=True)
        positive("max force", self.max_force, allow_none=True)
        for name in ("hold", "overpressure_time", "contact_floor", "detector_rate"):
            positive(name.replace("_", " "), getattr(self, name))
        for name in ("level_cutoff", "max_gap", "quality_gap", "rocking_min_freq"):
            positive(name.replace("_", " "), getattr(self, name))
        if not (math.isfinite(self.gap) and self.gap >= 0):
            raise ConfigurationError(f"gap must be >= 0 s, got {self.gap!r}")
        if (
            self.max_force is not None
            and self.release_threshold is not None
            and self.max_force <= self.release_threshold
        ):
            raise ConfigurationError(
                f"max force {self.max_force} N must be above the release threshold "
                f"{self.release_threshold} N"
            )
        if self.rocking_source not in ("total", "balance"):
            raise ConfigurationError(
                f"rocking source must be total or balance, not {self.rocking_source!r}"
            )
        if self.rocking_source == "balance" and self.positions is None:
            raise ConfigurationError("rocking on the balance needs channel positions")
        if not self.rocking_min_freq < self.rocking_max_freq:
            raise ConfigurationError("rocking min frequency must be below the max frequency")
        if self.rocking_min_cycles < 1:
            raise ConfigurationError("rocking needs at least one cycle")
        if (
            self.rocking_max_freq * 1.1 >= self.detector_rate / 2
            or self.band[1] >= self.detector_rate / 2
        ):
            raise ConfigurationError(
                f"detector rate {self.detector_rate} Hz is too low for rocking up to "
                f"{self.rocking_max_freq} Hz and a band up to {self.band[1]} Hz"
            )


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


class Pipeline:
    """One stateful object for the whole chain; ``process``/``finish``/``reset``."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        c = config
        self.dt = 1.0 / c.detector_rate
        self._spikes = SpikeFilter(c.spike_window, c.spike_sigmas, c.spike_min_jump, c.max_gap)
        self._bins = BinAverager(c.detector_rate, c.max_gap)
        self._low = LowPass(c.level_cutoff, c.detector_rate, 2, c.max_gap)
        self._band = BandPass(c.band[0], c.band[1], c.detector_rate, 2, c.max_gap)
        delay = self._low.delay
        self.contact = ContactDetector(
            c.contact_floor, c.contact_gap, c.contact_min, self.dt, delay
        )
        self.release = (
            ReleaseDetector(c.release_threshold, self.dt, c.hold, c.gap, delay)
            if c.release_threshold is not None
            else None
        )
        self.overpressure = (
            OverpressureDetector(c.max_force, self.dt, c.overpressure_time, delay=delay)
            if c.max_force is not None
            else None
        )
        self.rocking = RockingDetector(
            self.dt,
            c.rocking_min_freq,
            c.rocking_max_freq,
            c.rocking_min_p2p,
            c.rocking_rel_p2p,
            c.rocking_min_cycles,
        )
        self._gains: FloatArray | None = None
        self._offsets: FloatArray | None = None
        if c.calibration is not None and c.calibration.is_linear:
            self._gains, self._offsets = c.calibration.linear_coefficients()
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new session."""
        for part in (self._spikes, self._bins, self._low, self._band, self.contact, self.rocking):
            part.reset()
        for det in (self.release, self.overpressure):
            if det is not None:
                det.reset()
        self.channels: int | None = None
        self._weights: FloatArray | None = None
        self._last_t = -math.inf
        self._last_valid_t = math.nan
        self._first_t = math.nan
        self._samples = self._nan = self._saturated = self._filled = 0
        self._gaps: list[tuple[float, float]] = []
        self._gap_time = 0.0
        self.band_bins = 0

    @property
    def detectors(self) -> list[Any]:
        """The active detectors (release and overpressure only when configured)."""
        dets: list[Any] = [self.contact, self.release, self.overpressure, self.rocking]
        return [d for d in dets if d is not None]

    @property
    def quality(self) -> QualityStats:
        return QualityStats(
            self._samples,
            self._nan,
            self._spikes.replaced,
            self._saturated,
            tuple(self._gaps),
            self._gap_time,
            self._first_t,
            self._last_valid_t,
            self._filled,
        )

    @property
    def band_time(self) -> float:
        """Seconds spent in the release band (threshold .. max force)."""
        return self.band_bins * self.dt

    def _setup_channels(self, channels: int) -> None:
        c = self.config
        if c.calibration is not None and c.calibration.channels != channels:
            raise ConfigurationError(
                f"calibration has {c.calibration.channels} channels, data has {channels}"
            )
        if c.positions is not None:
            if len(c.positions) != channels:
                raise ConfigurationError(f"{len(c.positions)} positions for {channels} channels")
            self._weights = balance_axis(np.asarray(c.positions, dtype=np.float64))
        self.channels = channels

    def process(self, t: ArrayLike, x: ArrayLike) -> PipelineOutput:
        """Feed samples: times *t* (s, increasing) and *x* ``(n, channels)`` (counts or N)."""
        tt = np.asarray(t, dtype=np.float64)
        xx = np.asarray(x)
        if xx.ndim == 1:
            xx = xx[:, None]
        if tt.ndim != 1 or xx.ndim != 2 or xx.shape[0] != tt.size:
            raise ConfigurationError(f"t has shape {tt.shape} but x has shape {xx.shape}")
        if self.channels is None:
            self._setup_channels(xx.shape[1])
        elif xx.shape[1] != self.channels:
            raise ConfigurationError(f"expected {self.channels} channels, got {xx.shape[1]}")
        if tt.size == 0:
            return self._run(self._bins.process(tt, np.empty((0, 1 + xx.shape[1]))))
        if not (np.isfinite(tt).all() and tt[0] > self._last_t and (tt[1:] > tt[:-1]).all()):
            raise ConfigurationError("sample times must be finite and strictly increasing")
        self._last_t = float(tt[-1])
        c = self.config
        n, ch = xx.shape
        stacked = np.empty((n, 1 + ch))
        chans = stacked[:, 1:]
        if c.calibration is None or self._gains is not None:
            chans[...] = xx  # linear calibration runs on the bins: it commutes with averaging
            total = chans @ self._gains + self._offsets.sum() if self._gains is not None else None
            if total is None:
                total = chans.sum(axis=1)
        else:
            chans[...] = c.calibration.apply(xx)
            total = chans.sum(axis=1)
        if c.saturation is not None:
            lo, hi = c.saturation
            self._saturated += int(((xx <= lo) | (xx >= hi)).any(axis=1).sum())
        bad = np.isnan(total)
        n_bad = int(bad.sum())
        self._samples += n
        self._nan += n_bad
        tv = tt[~bad] if n_bad else tt
        if tv.size:
            if math.isnan(self._first_t):
                self._first_t = float(tv[0])
            prev = self._last_valid_t if not math.isnan(self._last_valid_t) else tv[0]
            steps = np.empty_like(tv)
            steps[0] = tv[0] - prev
            np.subtract(tv[1:], tv[:-1], out=steps[1:])
            for i in np.flatnonzero(steps > c.quality_gap):
                a = float(tv[i - 1]) if i > 0 else float(prev)
                self._gaps.append((a, float(tv[i])))
                self._gap_time += float(tv[i]) - a
            self._last_valid_t = float(tv[-1])
        clean, flagged = self._spikes.process(tt, total)
        stacked[:, 0] = clean
        if flagged.any():
            chans[flagged] = np.nan  # a spike sample says nothing about any channel
        return self._run(self._bins.process(tt, stacked, drop=bad if n_bad else None))

    def finish(self) -> PipelineOutput:
        """End of data: flush the last bin and close every open episode."""
        out = self._run(self._bins.finish())
        closing: list[Event] = []
        for det in self.detectors:
            closing += det.finish()
        return replace(out, events=self._sorted(list(out.events) + closing))

    @staticmethod
    def _sorted(events: list[Event]) -> tuple[Event, ...]:
        return tuple(
            sorted(
                events,
                key=lambda e: (e.detected_at, isinstance(e, Episode), _KIND_ORDER[e.kind], e.start),
            )
        )

    def _run(self, b: Binned) -> PipelineOutput:
        ch = self.channels or 0
        if b.x.shape[1] != 1 + ch:
            b = Binned(np.empty(0), np.empty((0, 1 + ch)), np.empty(0, bool), np.empty(0, np.int64))
        tb, total = b.t, b.x[:, 0]
        chans = b.x[:, 1:]
        if self._gains is not None:
            chans = chans * self._gains + self._offsets
        self._filled += int(b.filled.sum())
        level = self._low.process(tb, total)
        if self.config.rocking_source == "balance" and self._weights is not None:
            osc = self._band.process(tb, balance_force(chans, self._weights))
        else:
            osc = self._band.process(tb, total)
        events: list[Event] = []
        for det in (self.contact, self.release, self.overpressure):
            if det is not None:
                events += det.process(tb, level)
        events += self.rocking.process(tb, osc, level)
        c = self.config
        if c.release_threshold is not None and tb.size:
            upper = c.max_force if c.max_force is not None else np.inf
            self.band_bins += int(
                np.count_nonzero((level >= c.release_threshold) & (level <= upper))
            )
        cop = None
        if c.positions is not None:
            cop = centre_of_pressure(
                chans, np.asarray(c.positions, dtype=np.float64), c.contact_floor
            )
        return PipelineOutput(tb, total, level, osc, chans, cop, self._sorted(events))


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


def analyze(
    t: ArrayLike,
    forces: ArrayLike,
    config: PipelineConfig | None = None,
    chunk: int | None = None,
) -> Analysis:
    """Run the live pipeline over a whole record (optionally in chunks of *chunk* samples)."""
    from knotsense.dsp.summary import summarize

    cfg = config or PipelineConfig()
    pipe = Pipeline(cfg)
    tt = np.asarray(t, dtype=np.float64)
    xx = np.asarray(forces)
    parts: list[PipelineOutput] = []
    step = chunk or max(tt.size, 1)
    for a in range(0, tt.size, step):
        parts.append(pipe.process(tt[a : a + step], xx[a : a + step]))
    parts.append(pipe.finish())
    signals = PipelineOutput.concat(parts)
    episodes = tuple(
        sorted(
            (e for e in signals.events if isinstance(e, Episode)), key=lambda e: (e.start, e.kind)
        )
    )
    onsets = tuple(e for e in signals.events if isinstance(e, Onset))
    summary = summarize(episodes, pipe.quality, cfg, band_time=pipe.band_time)
    return Analysis(episodes, onsets, summary, signals)
