"""Streaming filters with carried state.

Every filter takes ``process(t, x)`` with sample times ``t`` (seconds,
increasing) and values ``x`` (``(n,)`` or ``(n, k)``), keeps what it needs
between calls, and returns the same output whatever the chunking -- bit for bit,
because every output value is computed from the same samples in the same order.
``reset()`` forgets everything.

Missing data is explicit: NaN samples are skipped (their output is NaN and they
never enter a filter state), and a step in ``t`` longer than ``max_gap`` restarts
the filter from the next sample instead of ringing across the hole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = [
    "BandPass",
    "BinAverager",
    "BinState",
    "Binned",
    "LowPass",
    "SosFilter",
    "SosState",
    "SpikeFilter",
    "SpikeState",
    "biquad_run",
    "time_steps",
]


def _as_tx(t: ArrayLike, x: ArrayLike) -> tuple[FloatArray, FloatArray]:
    tt = np.asarray(t, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    if tt.ndim != 1 or xx.shape[:1] != tt.shape:
        raise ConfigurationError(f"t has shape {tt.shape} but x has shape {xx.shape}")
    return tt, xx


def time_steps(t: FloatArray, before: float) -> FloatArray:
    """``np.diff(t, prepend=before)`` without its per-call overhead (live chunks are tiny)."""
    out = np.empty_like(t)
    out[0] = t[0] - before
    np.subtract(t[1:], t[:-1], out=out[1:])
    return out


def biquad_run(
    sections: list[list[float]], state: list[list[float]], xs: list[float]
) -> list[float]:
    """The one biquad kernel: run second-order *sections* over the samples *xs*.

    ``sections`` holds ``[b0, b1, b2, a0, a1, a2]`` rows (``a0 == 1``) and
    ``state`` one ``[z0, z1]`` pair per section, updated in place. The form is
    scipy's transposed direct form II with its operation order, so the result
    equals ``scipy.signal.sosfilt`` bit for bit; it only skips scipy's per-call
    checks (~150 us), which dominate when a live chunk brings a few samples.
    Sections run one after the other over the whole list (each sees the
    previous one's complete output), which gives the same numbers as running
    sample by sample and keeps the inner loop on local floats.
    """
    for (b0, b1, b2, _a0, a1, a2), zs in zip(sections, state, strict=True):
        z0, z1 = zs
        out = []
        append = out.append
        for xc in xs:
            xn = b0 * xc + z0
            z0 = b1 * xc - a1 * xn + z1
            z1 = b2 * xc - a2 * xn
            append(xn)
        zs[0], zs[1] = z0, z1
        xs = out
    return xs


def _sosfilt_small(sos: list, x: FloatArray, zi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``scipy.signal.sosfilt`` along axis 0 for a handful of samples (``(n, k)``), bit for
    bit, through :func:`biquad_run` one column at a time."""
    out = np.empty_like(x)
    z = zi.tolist()  # (sections, 2, k)
    for j in range(x.shape[1]):
        col = [[zs[0][j], zs[1][j]] for zs in z]
        out[:, j] = biquad_run(sos, col, x[:, j].tolist())
        for zs, (z0, z1) in zip(z, col, strict=True):
            zs[0][j], zs[1][j] = z0, z1
    return out, np.array(z)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise ConfigurationError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SpikeState:
    """What a :class:`SpikeFilter` carries between calls.

    Attributes:
        history: the last ``window - 1`` raw input values (NaN before any).
        last_t: time of the last valid sample (-inf before the first).
        since: valid samples since the last hole, capped at ``window`` (a
            sample is judged only when ``window - 1`` precede it in its run).
    """

    history: FloatArray
    last_t: float
    since: int


class SpikeFilter:
    """Causal Hampel filter: replace impulses by the median of the last ``window`` samples.

    A sample is replaced when it departs from the window median by more than
    ``max(n_sigmas * 1.4826 * MAD, min_jump)``. Impulses up to ``window // 2``
    samples long go; steps and oscillations stay. Only samples that jump by more
    than ``min_jump`` from one of their ``window // 2`` predecessors can be
    replaced (a median argument), so the exact rule runs on those few
    candidates and the filter costs a few vector operations per sample.
    """

    def __init__(
        self, window: int = 5, n_sigmas: float = 4.0, min_jump: float = 5.0, max_gap: float = 0.5
    ) -> None:
        if window < 3 or window % 2 == 0:
            raise ConfigurationError(f"spike window must be odd and >= 3, got {window}")
        _check_positive(n_sigmas=n_sigmas, min_jump=min_jump, max_gap=max_gap)
        self.window, self.n_sigmas, self.min_jump, self.max_gap = (
            window,
            n_sigmas,
            min_jump,
            max_gap,
        )
        self.replaced = 0
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next ``window - 1`` samples pass unchanged)."""
        self.history = np.full(self.window - 1, np.nan)
        self.last_t = -math.inf
        self.since = 0
        self.replaced = 0

    @property
    def state(self) -> SpikeState:
        """The carried state: restore it with :meth:`set_state`."""
        return SpikeState(self.history.copy(), self.last_t, self.since)

    def set_state(self, state: SpikeState) -> None:
        """Continue from *state*; ``history`` is kept as given (not copied)."""
        if state.history.shape != (self.window - 1,):
            raise ConfigurationError(f"spike history must hold {self.window - 1} values")
        self.history, self.last_t, self.since = state.history, float(state.last_t), state.since

    @property
    def ready(self) -> bool:
        """The window is full: the next sample (without a hole before it) is judged."""
        return self.since >= self.window - 1

    def _candidates(self, ext: FloatArray, n: int) -> NDArray[np.bool_]:
        """Samples of ``ext[window - 1:]`` that jump by more than ``min_jump`` from one of
        their ``window // 2`` predecessors: the only ones the rule can replace."""
        w = self.window
        cur = ext[w - 1 :]
        cand = np.abs(cur - ext[w - 2 : w - 2 + n]) > self.min_jump
        for k in range(2, w // 2 + 1):
            cand |= np.abs(cur - ext[w - 1 - k : w - 1 - k + n]) > self.min_jump
        return cand

    def _rule(self, ext: FloatArray, ci: NDArray) -> tuple[NDArray, FloatArray]:
        """The Hampel rule on candidates *ci* (indices into ``ext[window - 1:]``): those to
        replace and their window medians."""
        win = np.lib.stride_tricks.sliding_window_view(ext, self.window)[ci]
        med = np.median(win, axis=1)
        mad = np.median(np.abs(win - med[:, None]), axis=1)
        limit = np.maximum(self.n_sigmas * 1.4826 * mad, self.min_jump)
        hit = np.abs(win[:, -1] - med) > limit
        return ci[hit], med[hit]

    def process(self, t: ArrayLike, x: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Cleaned copy of 1-D *x* and a mask of the replaced samples."""
        tt, xx = _as_tx(t, x)
        if xx.ndim != 1:
            raise ConfigurationError("SpikeFilter takes one channel (1-D x)")
        out = xx.copy()
        flagged = np.zeros(xx.shape, dtype=bool)
        valid = ~np.isnan(xx)
        if valid.all():
            idx = None
            tv, xv = tt, xx
        else:
            idx = np.flatnonzero(valid)
            tv, xv = tt[idx], xx[idx]
        n = xv.size
        if n == 0:
            return out, flagged
        w = self.window
        ext = np.concatenate((self.history, xv))
        # Each sample is judged only on a full window inside its own run of data:
        # samples before a long gap must not judge samples after it.
        pos = np.arange(n)
        is_gap = time_steps(tv, self.last_t) > self.max_gap
        seg_start = np.maximum.accumulate(np.where(is_gap, pos, -self.since))
        cand = self._candidates(ext, n) & (pos - seg_start >= w - 1)
        ci = np.flatnonzero(cand)
        if ci.size:
            ci, med = self._rule(ext, ci)
            target = ci if idx is None else idx[ci]
            out[target] = med
            flagged[target] = True
            self.replaced += int(ci.size)
        # History keeps raw values: the Hampel window judges the input, not the output.
        self.history = ext[-(w - 1) :].copy()
        self.last_t = float(tv[-1])
        self.since = int(min(n - seg_start[-1], w))
        return out, flagged

    def process_continuous(
        self, t_last: float, xv: FloatArray
    ) -> tuple[FloatArray, NDArray | None]:
        """:meth:`process` for a chunk known to have no NaN and no step over ``max_gap``
        (the caller checked, including the step from the previous chunk), ending at
        *t_last*: the same result with fewer array calls.

        Returns the cleaned values (*xv* itself when nothing was replaced) and the
        indices of the replaced samples (or None).
        """
        n = xv.size
        w = self.window
        ext = np.concatenate((self.history, xv))
        cand = self._candidates(ext, n)
        since = self.since
        if since < w - 1:
            cand[: w - 1 - since] = False  # not yet a full window in this run of data
        ci = np.flatnonzero(cand)
        out, target = xv, None
        if ci.size:
            hit, med = self._rule(ext, ci)
            if hit.size:
                target = hit
                out = xv.copy()
                out[target] = med
                self.replaced += int(target.size)
        self.history = ext[-(w - 1) :].copy()
        self.last_t = t_last
        self.since = min(n + since, w)
        return out, target


@dataclass(frozen=True)
class SosState:
    """What a :class:`SosFilter` carries between calls.

    Attributes:
        zi: the section states, ``(sections, 2, columns)``; None before the first
            sample (the next one starts the filter in its steady state).
        last_t: time of the last sample filtered (-inf before the first).
    """

    zi: FloatArray | None
    last_t: float


class SosFilter:
    """A streaming IIR filter (second-order sections) at a nominal sample rate.

    Timestamps are assumed to be on the nominal grid; a step longer than
    ``max_gap`` restarts the filter in its steady state for the next sample, so
    there is neither ringing across a hole nor a start-up transient.
    """

    def __init__(self, sos: FloatArray, rate: float, max_gap: float = 0.5) -> None:
        _check_positive(rate=rate, max_gap=max_gap)
        self.sos = np.asarray(sos, dtype=np.float64)
        self.rate = float(rate)
        self.max_gap = float(max_gap)
        self._zi_unit = signal.sosfilt_zi(self.sos)
        self._sos_list = self.sos.tolist()
        self.reset()

    def reset(self) -> None:
        """Forget the state; the next sample starts the filter in steady state."""
        self._zi_arr: FloatArray | None = None
        self._zl: list[list[float]] | None = None  # the same state as Python floats (1-D)
        self.last_t = -math.inf

    @property
    def state(self) -> SosState:
        """The carried state (a copy): restore it with :meth:`set_state`."""
        zi = self._zi
        return SosState(None if zi is None else zi.copy(), self.last_t)

    def set_state(self, state: SosState) -> None:
        """Continue from *state* (as :attr:`state` returned it)."""
        self._zi = None if state.zi is None else np.array(state.zi, dtype=np.float64)
        self.last_t = float(state.last_t)

    @property
    def _zi(self) -> FloatArray | None:
        if self._zl is not None:
            self._zi_arr = np.array(self._zl)[:, :, None]
            self._zl = None
        return self._zi_arr

    @_zi.setter
    def _zi(self, value: FloatArray | None) -> None:
        self._zi_arr, self._zl = value, None

    def process_floats(self, t: list[float], x: list[float]) -> list[float] | None:
        """A few samples of a 1-D signal as Python floats, bit for bit :meth:`process`.

        Returns None, with nothing changed, when the array path must run
        instead: NaNs, a hole longer than ``max_gap``, the very first sample or
        a multi-column state.
        """
        prev, max_gap = self.last_t, self.max_gap
        for tv, xv in zip(t, x, strict=True):
            if tv - prev > max_gap or xv != xv:
                return None
            prev = tv
        zl = self._zl
        if zl is None:
            if self._zi_arr is None or self._zi_arr.shape[2] != 1:
                return None
            zl = self._zi_arr[:, :, 0].tolist()
            self._zi_arr = None
            self._zl = zl
        self.last_t = prev
        return biquad_run(self._sos_list, zl, x)

    def process(self, t: ArrayLike, x: ArrayLike) -> FloatArray:
        """Filtered *x* (same shape); NaN where *x* is NaN."""
        tt, xx = _as_tx(t, x)
        if xx.ndim == 1 and 0 < xx.size <= 32:
            small = self.process_floats(tt.tolist(), xx.tolist())
            if small is not None:
                return np.array(small)
        out = np.full(xx.shape, np.nan)
        if xx.size == 0:
            return out
        cols = xx.reshape(xx.shape[0], -1)
        valid = ~np.isnan(cols).any(axis=1)
        if valid.all():
            rows = None
            tv, xv = tt, cols
        else:
            rows = np.flatnonzero(valid)
            tv, xv = tt[rows], cols[rows]
        if tv.size == 0:
            return out
        steps = time_steps(tv, self.last_t)
        cuts = np.flatnonzero(steps > self.max_gap)
        bounds = [0, *cuts.tolist(), tv.size]
        yv = np.empty_like(xv)
        for a, b in pairwise(bounds):
            if a == b:
                continue
            if a in cuts or self._zi is None:
                self._zi = self._zi_unit[:, :, None] * xv[a][None, None, :]
            if (b - a) * xv.shape[1] <= 32:
                yv[a:b], self._zi = _sosfilt_small(self._sos_list, xv[a:b], self._zi)
            else:
                yv[a:b], self._zi = signal.sosfilt(self.sos, xv[a:b], axis=0, zi=self._zi)
        self.last_t = float(tv[-1])
        if rows is None:
            return yv.reshape(xx.shape)
        flat = out.reshape(cols.shape)
        flat[rows] = yv
        return out


class LowPass(SosFilter):
    """Butterworth low-pass for the pressure level.

    ``delay`` is the group delay at DC in seconds: a ramp comes out exactly that
    late, so detectors subtract it from the times they report.
    """

    def __init__(self, cutoff: float, rate: float, order: int = 2, max_gap: float = 0.5) -> None:
        _check_positive(cutoff=cutoff, rate=rate)
        if not cutoff < rate / 2:
            raise ConfigurationError(f"low-pass cutoff {cutoff} Hz must be below {rate / 2} Hz")
        super().__init__(signal.butter(order, cutoff, fs=rate, output="sos"), rate, max_gap)
        b, a = signal.sos2tf(self.sos)
        _, gd = signal.group_delay((b, a), w=[cutoff * 1e-3], fs=rate)
        self.delay = float(gd[0]) / rate


class BandPass(SosFilter):
    """Butterworth band-pass for the oscillating part of the force."""

    def __init__(
        self, low: float, high: float, rate: float, order: int = 2, max_gap: float = 0.5
    ) -> None:
        _check_positive(low=low, high=high, rate=rate)
        if not low < high < rate / 2:
            raise ConfigurationError(
                f"band {low}-{high} Hz must be ordered and below {rate / 2} Hz"
            )
        sos = signal.butter(order, [low, high], btype="band", fs=rate, output="sos")
        super().__init__(sos, rate, max_gap)


@dataclass(frozen=True)
class Binned:
    """Output of :class:`BinAverager`: bin centres, means and which bins were filled in."""

    t: FloatArray
    x: FloatArray
    filled: NDArray[np.bool_] = field(repr=False)
    counts: NDArray[np.int64] = field(repr=False)


@dataclass(frozen=True)
class BinState:
    """What a :class:`BinAverager` carries between calls.

    Attributes:
        tail_t: times of the samples of the open (not yet complete) bin.
        tail_x: their values, ``(n, k)``; None before the first call.
        tail_drop: which of them are dropped rows; None when none is.
        last_k: index (``floor(t * rate)``) of the last bin emitted, or None.
        last_x: that bin's means (the left end of an interpolated fill).
    """

    tail_t: FloatArray
    tail_x: FloatArray | None
    tail_drop: NDArray[np.bool_] | None
    last_k: int | None
    last_x: FloatArray | None


class BinAverager:
    """Average samples into a fixed time grid (``floor(t * rate)``): a decimator for
    irregular timestamps.

    A bin is emitted once a sample of a later bin arrives (or at ``finish``), so its
    mean is always computed from all its samples at once. NaN values and dropped
    rows do not count. Runs of empty bins up to ``max_fill`` seconds are filled by
    linear interpolation (``filled`` marks them); longer holes leave a jump in
    ``t`` that later stages treat as a gap.
    """

    def __init__(self, rate: float, max_fill: float = 0.5) -> None:
        _check_positive(rate=rate)
        self.rate = float(rate)
        self.dt = 1.0 / self.rate
        self.max_fill_bins = int(np.floor(max_fill * self.rate + 1e-9))
        self.reset()

    def reset(self) -> None:
        self._tail_t = np.empty(0)
        self._tail_x: FloatArray | None = None
        self._tail_drop: NDArray[np.bool_] | None = None  # None: no row of the tail is dropped
        self._last_k: int | None = None
        self._last_x: FloatArray | None = None

    @property
    def state(self) -> BinState:
        """The carried state (arrays shared, not copied): restore it with :meth:`set_state`."""
        return BinState(self._tail_t, self._tail_x, self._tail_drop, self._last_k, self._last_x)

    def set_state(self, state: BinState) -> None:
        """Continue from *state*; its arrays are kept as given (do not modify them)."""
        self._tail_t, self._tail_x, self._tail_drop = state.tail_t, state.tail_x, state.tail_drop
        self._last_k, self._last_x = state.last_k, state.last_x

    def _tail_drops(self) -> NDArray[np.bool_]:
        if self._tail_drop is None:
            return np.zeros(self._tail_t.size, dtype=bool)
        return self._tail_drop

    def _empty(self, k: int) -> Binned:
        return Binned(np.empty(0), np.empty((0, k)), np.empty(0, bool), np.empty(0, np.int64))

    def process(self, t: ArrayLike, x: ArrayLike, drop: NDArray[np.bool_] | None = None) -> Binned:
        """Complete bins so far; *drop* marks rows to leave out of every column."""
        tt, xx = _as_tx(t, x)
        if xx.ndim == 1:
            xx = xx[:, None]
        k = xx.shape[1]
        if drop is None and tt.size and (self._tail_drop is None or not self._tail_drop.any()):
            return self._fast(tt, xx)
        dd = np.zeros(tt.size, dtype=bool) if drop is None else np.asarray(drop, dtype=bool)
        if self._tail_x is not None and self._tail_t.size:
            tt = np.concatenate((self._tail_t, tt))
            xx = np.concatenate((self._tail_x, xx))
            dd = np.concatenate((self._tail_drops(), dd))
        if tt.size == 0:
            return self._empty(k)
        ids = np.floor(tt * self.rate).astype(np.int64)
        starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        last = int(starts[-1]) if starts.size else 0
        self._tail_t, self._tail_x, self._tail_drop = tt[last:], xx[last:], dd[last:]
        if last == 0:
            return self._empty(k)
        starts = np.concatenate(([0], starts[:-1]))
        return self._emit(ids[starts], xx[:last], dd[:last], starts)

    def _fast(self, tt: FloatArray, xx: FloatArray) -> Binned:
        """:meth:`process` without dropped rows: the same bins with fewer array calls."""
        rate = self.rate
        tail = self._tail_t.size if self._tail_x is not None else 0
        first = float(self._tail_t[0]) if tail else float(tt[0])
        if math.floor(first * rate) == math.floor(float(tt[-1]) * rate):
            # No bin completes: only the tail grows.
            if tail:
                tt = np.concatenate((self._tail_t, tt))
                xx = np.concatenate((self._tail_x, xx))
            self._tail_t, self._tail_x, self._tail_drop = tt, xx, None
            return self._empty(xx.shape[1])
        if tail:
            tt = np.concatenate((self._tail_t, tt))
            xx = np.concatenate((self._tail_x, xx))
        ids = np.floor(tt * rate).astype(np.int64)
        ends = np.flatnonzero(ids[1:] != ids[:-1])
        ends += 1
        last = int(ends[-1])
        self._tail_t, self._tail_x, self._tail_drop = tt[last:], xx[last:], None
        nb = ends.size
        starts = np.empty(nb, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1]
        bins = ids[starts]
        head = xx[:last]
        b0, b1 = int(bins[0]), int(bins[-1])
        contiguous = b1 - b0 == nb - 1 and (self._last_k is None or b0 - self._last_k == 1)
        if not contiguous:
            return self._emit(bins, head, np.zeros(last, dtype=bool), starts)
        sums = np.add.reduceat(head, starts, axis=0)
        check = float(sums.sum())
        if check != check:  # NaN somewhere (or inf - inf): the careful way
            return self._emit(bins, head, np.zeros(last, dtype=bool), starts)
        counts = ends - starts
        means = sums / counts[:, None]
        self._last_k, self._last_x = b1, means[-1].copy()
        return Binned((bins + 0.5) * self.dt, means, np.zeros(nb, dtype=bool), counts)

    def finish(self) -> Binned:
        """Emit the last, incomplete bin (end of data)."""
        if self._tail_x is None or self._tail_t.size == 0:
            return self._empty(0 if self._tail_x is None else self._tail_x.shape[1])
        tt, xx, dd = self._tail_t, self._tail_x, self._tail_drops()
        self._tail_t = np.empty(0)
        self._tail_x = xx[:0]
        self._tail_drop = None
        ids = np.floor(tt[:1] * self.rate).astype(np.int64)
        return self._emit(ids, xx, dd, np.array([0]))

    def _emit(
        self, bins: NDArray[np.int64], xx: FloatArray, dd: NDArray[np.bool_], starts: NDArray
    ) -> Binned:
        sums = np.add.reduceat(xx, starts, axis=0)
        ends = np.append(starts[1:], xx.shape[0])
        counts = (ends - starts).astype(np.int64)
        counts = np.repeat(counts[:, None], xx.shape[1], axis=1)
        bad = np.isnan(sums).any(axis=1)
        if dd.any():
            bad |= np.add.reduceat(dd, starts) > 0
        for b in np.flatnonzero(bad):  # rare: recompute those bins the careful way
            seg = xx[starts[b] : starts[b] + counts[b, 0]][
                ~dd[starts[b] : starts[b] + counts[b, 0]]
            ]
            ok = ~np.isnan(seg)
            sums[b] = np.where(ok, seg, 0.0).sum(axis=0)
            counts[b] = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        keep = ~np.isnan(means).any(axis=1)  # a bin with no usable sample is a hole
        bins, means, counts = bins[keep], means[keep], counts[keep, 0]
        filled = np.zeros(bins.size, dtype=bool)
        if bins.size:
            if self._last_k is not None and self._last_x is not None:
                allk = np.concatenate(([self._last_k], bins))
                allx = np.concatenate((self._last_x[None, :], means))
            else:
                allk, allx = bins, means
            step = np.diff(allk)
            holes = np.flatnonzero((step > 1) & (step <= self.max_fill_bins + 1))
            if holes.size:
                newk = np.concatenate([np.arange(allk[h] + 1, allk[h + 1]) for h in holes])
                newx = np.column_stack(
                    [np.interp(newk, allk, allx[:, j]) for j in range(allx.shape[1])]
                )
                bins = np.concatenate((bins, newk))
                means = np.concatenate((means, newx))
                counts = np.concatenate((counts, np.zeros(newk.size, np.int64)))
                filled = np.concatenate((filled, np.ones(newk.size, bool)))
                order = np.argsort(bins, kind="stable")
                bins, means, counts, filled = (
                    bins[order],
                    means[order],
                    counts[order],
                    filled[order],
                )
        if bins.size:
            self._last_k, self._last_x = int(bins[-1]), means[-1].copy()
        return Binned((bins + 0.5) * self.dt, means, filled, counts)
