"""The DSP chain: calibration -> spike rejection -> decimation -> filters -> detectors.

Only the cheap, per-sample work runs at the input rate (calibration or one
matrix product, the Hampel candidates, the bin sums); everything else runs on
``detector_rate`` bins (25 Hz by default), which is plenty for 0.4-3 Hz rocking
and for release timing, and is what makes an hour of 8 x 1 kHz cost about as
much as a single low-pass filter.

Live use: ``process(t, x)`` per chunk, ``finish()`` at the end. Offline use:
:func:`analyze`, which is the same object fed the whole record. The settings
live in :mod:`knotsense.dsp.config`, the records returned in
:mod:`knotsense.dsp.results` (both re-exported here). A new detector kind
implements :class:`~knotsense.dsp.detectors.BinDetector` and is appended to
``Pipeline.extra_detectors``: it then sees every bin and is finished and reset
with the others.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.dsp.config import LIVE_BLOCK_S, PipelineConfig
from knotsense.dsp.detectors import (
    BinDetector,
    ContactDetector,
    DetectorInput,
    Episode,
    Event,
    Onset,
    OverpressureDetector,
    ReleaseDetector,
    RockingDetector,
)
from knotsense.dsp.filters import (
    BandPass,
    BinAverager,
    Binned,
    BinState,
    LowPass,
    SpikeFilter,
    SpikeState,
)
from knotsense.dsp.motion import MotionTracker
from knotsense.dsp.quality import QualityCounter, QualityStats
from knotsense.dsp.results import Analysis, PipelineOutput
from knotsense.dsp.signals import _row_sum, balance_axis, centre_of_pressure
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = [
    "LIVE_BLOCK_S",
    "Analysis",
    "Pipeline",
    "PipelineConfig",
    "PipelineOutput",
    "QualityStats",
    "analyze",
]

_MIN, _MAX = np.minimum.reduce, np.maximum.reduce
_SMALL_BINS = 32  # up to this many bins per call, filters and detectors run on floats
_SMALL_CHUNK = 16  # up to this many samples per call, times are checked on floats
_KIND_ORDER = {"contact": 0, "release": 1, "overpressure": 2, "rocking": 3, "circling": 4}


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
            band=(self._band.sos, c.detector_rate),
        )
        self._gains: FloatArray | None = None
        self._offsets: FloatArray | None = None
        self._offset_sum = 0.0
        if c.calibration is not None and c.calibration.is_linear:
            self._gains, self._offsets = c.calibration.linear_coefficients()
            self._offset_sum = self._offsets.sum()
        self._fast_ok = c.calibration is None or self._gains is not None
        self._balance = c.rocking_source == "balance" and c.positions is not None
        # Every step of a chunk spanning at most this long is short enough for the fast path.
        self._span_ok = min(c.quality_gap, c.max_gap)
        self._quality = QualityCounter(c.quality_gap, c.saturation)
        self._counts: dict[tuple[int, ...], FloatArray] = {}  # bin sizes -> divisor column
        self._band_upper = c.max_force if c.max_force is not None else np.inf
        self._positions = (
            np.asarray(c.positions, dtype=np.float64) if c.positions is not None else None
        )
        # Detectors that see every bin through BinDetector.process_bins (new kinds go here).
        self.extra_detectors: list[BinDetector] = []
        self.motion: MotionTracker | None = None
        pos = self._positions
        if c.motion and pos is not None and pos.ndim == 2 and pos.shape[1] >= 2 and len(pos) >= 2:
            self.motion = MotionTracker(
                c.detector_rate, max_gap=c.max_gap, min_radius=c.circling_min_radius
            )
            self.extra_detectors.append(self.motion)
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new session."""
        for part in (self._spikes, self._bins, self._low, self._band):
            part.reset()
        for det in self.detectors:
            det.reset()
        cal = self.config.calibration
        self._calstream = cal.stream() if cal is not None and cal.stateful else None
        self.channels: int | None = None
        self._wvec: FloatArray | None = None
        self._empty: PipelineOutput | None = None
        self._tail_clean = False  # the rows of the open bin are known to be finite
        self._weights: FloatArray | None = None
        self._weights_l: list[float] | None = None
        self._last_t = -math.inf
        self._pending: list[tuple[FloatArray, NDArray]] = []  # queued input (block > 0)
        self._pending_t0 = self._pending_dmax = 0.0
        self._quality.reset()
        self.band_bins = 0

    @property
    def detectors(self) -> list[Any]:
        """The active detectors (release and overpressure only when configured)."""
        dets: list[Any] = [self.contact, self.release, self.overpressure, self.rocking]
        return [d for d in dets if d is not None] + list(self.extra_detectors)

    @property
    def quality(self) -> QualityStats:
        return self._quality.stats(self._spikes.replaced)

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
            self._weights_l = self._weights.tolist()
        self.channels = channels
        self._wvec = self._gains if self._gains is not None else np.ones(channels)
        self._empty = self._empty_output()

    def process(self, t: ArrayLike, x: ArrayLike) -> PipelineOutput:
        """Feed samples: times *t* (s, increasing) and *x* ``(n, channels)`` (counts or N).

        Returns the bins and events this call completed; with ``block`` set, a
        call that only queues its input returns none.
        """
        tt = t if type(t) is np.ndarray and t.dtype == np.float64 else np.asarray(t, np.float64)
        xx = x if type(x) is np.ndarray else np.asarray(x)
        if xx.ndim == 1:
            xx = xx[:, None]
        if tt.ndim != 1 or xx.ndim != 2 or xx.shape[0] != tt.size:
            raise ConfigurationError(f"t has shape {tt.shape} but x has shape {xx.shape}")
        n, ch = xx.shape
        if self.channels is None:
            self._setup_channels(ch)
        elif ch != self.channels:
            raise ConfigurationError(f"expected {self.channels} channels, got {ch}")
        if n == 0:
            return self._empty_output()
        # Finite and strictly increasing: the ends are finite and every step is > 0
        # (a NaN step fails the test too), with one reduction per direction.
        t0, t1 = tt.item(0), tt.item(-1)
        if 1 < n <= _SMALL_CHUNK:  # a sample frame: plain floats beat two array calls
            tl = tt.tolist()
            steps = [b - a for a, b in pairwise(tl)]
            dmin = min(steps) if all(d > 0 for d in steps) else -1.0  # (NaN fails too)
            span = t1 - t0
            dmax = span if 0 <= span <= self._span_ok else max(steps)
        elif n > 1:
            d = tt[1:] - tt[:-1]
            dmin = float(_MIN(d))
            span = t1 - t0
            # With every step > 0, none is longer than the span: no second reduction
            # when the span alone shows that the steps are short.
            dmax = span if 0 <= span <= self._span_ok else float(_MAX(d))
        else:
            dmin = dmax = 0.0
        if not (math.isfinite(t0) and math.isfinite(t1) and t0 > self._last_t and dmin >= 0):
            raise ConfigurationError("sample times must be finite and strictly increasing")
        if n > 1 and not dmin > 0:
            raise ConfigurationError("sample times must be finite and strictly increasing")
        if self.config.block:
            return self._queue(tt, xx, t0, t1, dmax)
        return self._process(tt, xx, t0, t1, dmax)

    def _queue(
        self, tt: FloatArray, xx: NDArray, t0: float, t1: float, dmax: float
    ) -> PipelineOutput:
        """Hold valid input until it covers ``block`` seconds, then run it all at once.

        The queue covers its first sample to its last plus one sample period
        (within half a period, so 100 ms chunks make 0.2 s blocks of two).
        """
        n = tt.size
        step = (t1 - t0) / (n - 1) if n > 1 else t0 - self._last_t
        if self._pending:
            dmax = max(dmax, t0 - self._last_t, self._pending_dmax)
        else:
            self._pending_t0 = t0
        self._pending.append((tt, xx))
        self._pending_dmax = dmax
        self._last_t = t1
        if t1 - self._pending_t0 + 1.5 * step < self.config.block:
            assert self._empty is not None
            return self._empty
        return self._flush()

    def _flush(self) -> PipelineOutput:
        parts, self._pending = self._pending, []
        if len(parts) == 1:
            tt, xx = parts[0]
        else:
            tt = np.concatenate([p[0] for p in parts])
            xx = np.concatenate([p[1] for p in parts])
        return self._process(tt, xx, self._pending_t0, self._last_t, self._pending_dmax)

    def _process(
        self, tt: FloatArray, xx: NDArray, t0: float, t1: float, dmax: float
    ) -> PipelineOutput:
        """The chain on validated input (finite, strictly increasing times)."""
        n, ch = xx.shape
        if self._fast_ok:
            out = self._fast(tt, xx, t0, t1, dmax)
            if out is not None:
                return out
        self._last_t = t1
        self._tail_clean = False
        c = self.config
        stacked = np.empty((n, 1 + ch))
        chans = stacked[:, 1:]
        if c.calibration is None or self._gains is not None:
            chans[...] = xx  # linear calibration runs on the bins: it commutes with averaging
            total = np.vecdot(chans, self._wvec)
            if self._gains is not None:
                total += self._offset_sum
        else:
            if self._calstream is not None:  # hysteresis / creep: the live, causal model
                chans[...] = self._calstream.process(tt, xx)
            else:
                chans[...] = c.calibration.apply(xx)
            total = np.vecdot(chans, self._wvec)
        quality = self._quality
        quality.count_saturated(xx)
        quality.samples += n
        if xx.dtype.kind in "iub" and self._gains is not None:
            n_bad = 0  # integer counts through an affine calibration: no NaN possible
        else:
            bad = np.isnan(total)
            n_bad = int(np.count_nonzero(bad))
        if n_bad:
            quality.nan += n_bad
            quality.steps(tt[~bad])
            clean, flagged = self._spikes.process(tt, total)
            stacked[:, 0] = clean
            if flagged.any():
                chans[flagged] = np.nan  # a spike sample says nothing about any channel
            return self._run(self._bins.process(tt, stacked, drop=bad))
        # The common case: no NaN. Gaps are known from the steps already computed.
        quality.clean(t0, t1, dmax, tt)
        spikes = self._spikes
        if t0 - spikes.last_t <= spikes.max_gap and dmax <= spikes.max_gap:
            clean, hit = spikes.process_continuous(t1, total)
            stacked[:, 0] = clean
            if hit is not None:
                chans[hit] = np.nan
        else:
            clean, flagged = spikes.process(tt, total)
            stacked[:, 0] = clean
            if flagged.any():
                chans[flagged] = np.nan
        return self._run(self._bins.process(tt, stacked))

    def _fast(
        self, tt: FloatArray, xx: NDArray, t0: float, t1: float, dmax: float
    ) -> PipelineOutput | None:
        """The steady live case in as few array calls as possible, or None (nothing changed).

        It applies when the chunk continues the data without a hole (every step,
        and the one from the previous chunk, within ``max_gap``), has no NaN or
        inf, the spike filter has a full window and replaces nothing, and the
        bins it completes follow the last one without an empty bin. The
        arithmetic is that of the general path (same calls on the same rows:
        the tail of the open bin is copied in front of the chunk and each bin is
        summed at once), so the output is the same bit for bit.
        """
        spikes, bins = self._spikes, self._bins
        w = spikes.window
        bs = bins.state
        last_k, tail_x = bs.last_k, bs.tail_x
        if (
            not spikes.ready
            or t0 - spikes.last_t > spikes.max_gap
            or dmax > spikes.max_gap
            or last_k is None
            or bs.tail_drop is not None
            or tail_x is None
        ):
            return None
        n, ch = xx.shape
        nt = tail_x.shape[0]
        if nt and not self._tail_clean:
            if not np.isfinite(tail_x).all():
                return None  # a spike row of the open bin: its channels do not count
            self._tail_clean = True
        # Channels (raw; a linear calibration runs on the bins) after the open bin's rows.
        stacked = np.empty((nt + n, 1 + ch))
        if nt:
            stacked[:nt] = tail_x
        chans = stacked[nt:, 1:]
        chans[...] = xx
        # The total (calibrated) behind the spike filter's history.
        ext = np.empty(w - 1 + n)
        ext[: w - 1] = spikes.history
        total = ext[w - 1 :]
        np.vecdot(chans, self._wvec, out=total)
        if self._gains is not None:
            total += self._offset_sum
        # No spike candidate (a jump > min_jump from one of the `half` previous
        # samples) when the values in reach differ by less than that. NaN or inf
        # fails the test and takes the general path.
        half, jump = w // 2, spikes.min_jump
        reach = ext[w - 1 - half :]
        if not _MAX(reach) - _MIN(reach) <= jump:
            steps = np.abs(reach[1:] - reach[:-1])
            # With every step below jump / half (a margin for rounding), no pair in
            # reach differs by more than jump.
            if not _MAX(steps) < 0.999 * jump / half:
                return None
        stacked[nt:, 0] = total
        rate = bins.rate
        first = bs.tail_t.item(0) if nt else t0
        kf, kl = math.floor(first * rate), math.floor(t1 * rate)
        if kf != kl:
            if kf - last_k != 1:
                return None
            # Bin K starts at the first sample with t * rate >= K (floor is monotone).
            ks = np.arange(kf + 1, kl + 1, dtype=np.float64)
            cuts = (tt * rate).searchsorted(ks).tolist()
            starts, sizes, prev = [0], [], 0
            for i in cuts:
                i += nt
                if i <= prev:
                    return None  # an empty bin: the general path fills it
                starts.append(i)
                sizes.append(i - prev)
                prev = i
        # Committed: every state below changes as the general path would change it.
        self._last_t = t1
        quality = self._quality
        quality.samples += n
        quality.count_saturated(xx)
        quality.clean(t0, t1, dmax, tt)
        hist = ext[-(w - 1) :]
        spikes.set_state(SpikeState(hist if n <= 4096 else hist.copy(), t1, w))
        self._tail_clean = True
        if kf == kl:  # no bin completes: the open bin grows
            tail_t = np.concatenate((bs.tail_t, tt)) if nt else tt
            bins.set_state(BinState(tail_t, stacked, None, last_k, bs.last_x))
            assert self._empty is not None
            return self._empty
        last = starts.pop()
        key = tuple(sizes)
        counts = self._counts.get(key)
        if counts is None:
            if len(self._counts) > 64:
                self._counts.clear()
            counts = self._counts[key] = np.array(key, np.float64)[:, None]
        means = np.add.reduceat(stacked[:last], starts, axis=0)
        means /= counts
        bins.set_state(BinState(tt[last - nt :], stacked[last:], None, kl - 1, means[-1].copy()))
        return self._run_bins(kf, kl, means, counts)

    def _run_bins(self, kf: int, kl: int, means: FloatArray, counts: FloatArray) -> PipelineOutput:
        """:meth:`_run` for the contiguous, finite bins ``kf .. kl - 1`` of :meth:`_fast`."""
        dt = self.dt
        nb = kl - kf
        if nb > _SMALL_BINS:
            tb = (np.arange(kf, kl) + 0.5) * dt
            filled = np.zeros(nb, dtype=bool)
            return self._run(Binned(tb, means, filled, counts[:, 0].astype(np.int64)))
        tl = [(k + 0.5) * dt for k in range(kf, kl)]
        return self._chain(np.array(tl), tl, means[:, 0], means[:, 1:])

    def _level_events(
        self, tb: FloatArray, level: FloatArray, tl: list[float], level_l: list[float]
    ) -> list[Event]:
        """Contact, release and overpressure on a few finite bins (also as floats), and
        the time in the release band."""
        lo, hi = min(level_l), max(level_l)
        events: list[Event] = self.contact.feed_floats(tb, level, tl, level_l, lo, hi)
        for det in (self.release, self.overpressure):
            if det is not None:
                ev = det.feed_floats(tb, level, tl, level_l, lo, hi)
                if ev:
                    events += ev
        low = self.config.release_threshold
        if low is not None and hi >= low:
            high = self._band_upper
            if lo >= low and hi <= high:
                self.band_bins += len(level_l)
            else:
                self.band_bins += sum(1 for v in level_l if low <= v <= high)
        return events

    def _empty_output(self) -> PipelineOutput:
        ch = self.channels or 0
        e = np.empty(0)
        cop = None
        if self._positions is not None:
            cop = np.empty((0, self._positions.shape[1] if self._positions.ndim == 2 else 1))
        return PipelineOutput(e, e, e, e, np.empty((0, ch)), cop, ())

    def finish(self) -> PipelineOutput:
        """End of data: run queued input, flush the last bin and close every open episode."""
        parts = [self._flush()] if self._pending else []
        parts.append(self._run(self._bins.finish()))
        out = parts[0] if len(parts) == 1 else PipelineOutput.concat(parts)
        closing: list[Event] = []
        for det in self.detectors:
            closing += det.finish()
        if self.motion is not None:
            closing = self.motion.annotate(closing)
        return replace(out, events=self._sorted(list(out.events) + closing))

    @staticmethod
    def _sorted(events: list[Event]) -> tuple[Event, ...]:
        late = len(_KIND_ORDER)  # kinds added later sort after the built-in ones

        def key(e: Event) -> tuple:
            return (e.detected_at, isinstance(e, Episode), _KIND_ORDER.get(e.kind, late), e.start)

        return tuple(sorted(events, key=key))

    def _run(self, b: Binned) -> PipelineOutput:
        """Filters and detectors on complete bins."""
        ch = self.channels or 0
        nb = b.t.size
        if nb == 0 or b.x.shape[1] != 1 + ch:
            return self._empty_output()
        tb = b.t
        if b.filled.any():
            self._quality.filled += int(b.filled.sum())
            self.rocking.mark_filled(tb[b.filled].tolist())
        return self._chain(tb, tb.tolist() if nb <= _SMALL_BINS else None, b.x[:, 0], b.x[:, 1:])

    def _chain(
        self, tb: FloatArray, tl: list[float] | None, total: FloatArray, chans: FloatArray
    ) -> PipelineOutput:
        """Level and rocking signals, then every detector, on bins at *tb* (*tl*: the
        same times as Python floats, given for a few bins).

        Live chunks bring a few bins: the filters and the detectors then run on
        Python floats (same arithmetic, same order, so the same results).
        """
        c = self.config
        if self._gains is not None:
            chans = chans * self._gains + self._offsets
        osc_in = _row_sum(chans, self._weights_l) if self._balance else total
        low, band = self._low, self._band
        level_l = osc_l = None
        if tl is not None:
            level_l = low.process_floats(tl, total.tolist())
        if level_l is not None:
            assert tl is not None
            level = np.array(level_l)
            osc_l = band.process_floats(tl, osc_in.tolist())
        else:
            level = low.process(tb, total)
        osc = np.array(osc_l) if osc_l is not None else band.process(tb, osc_in)
        events: list[Event]
        if level_l is not None and osc_l is not None:
            assert tl is not None
            events = self._level_events(tb, level, tl, level_l)
            ev = self.rocking.feed_floats(tb, osc, level, tl, osc_l, level_l)
            if ev:
                events += ev
        else:
            events = []
            for det in (self.contact, self.release, self.overpressure):
                if det is not None:
                    events += det.process(tb, level)
            events += self.rocking.process(tb, osc, level)
            if c.release_threshold is not None:
                self.band_bins += int(
                    np.count_nonzero((level >= c.release_threshold) & (level <= self._band_upper))
                )
        cop = None
        if self._positions is not None:
            cop = centre_of_pressure(chans, self._positions, c.contact_floor)
        if self.extra_detectors:
            bins = DetectorInput(tb, total, level, osc, chans, cop)
            for det in self.extra_detectors:
                events += det.process_bins(bins)
            if self.motion is not None and events:
                events = self.motion.annotate(events)
        return PipelineOutput(
            tb, total, level, osc, chans, cop, self._sorted(events) if events else ()
        )


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
