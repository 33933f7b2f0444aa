"""A two-branch calibration model with causal hysteresis and creep compensation.

Force sensors read differently loading and unloading (an FSR's unloading
branch reads up to ~10 % high; a load cell's ~0.1 % FS) and drift under a
constant load (an FSR a few % per decade of time). :class:`BranchModel`
holds, per channel::

    x = (u(raw) - x_center) / x_scale
    y = P(x) + z * D(x) + k * log10(1 + t / tau) * c(raw)
    force = y (linear domain) or exp(y) (log and conductance domains)

with ``u`` the raw counts (linear), ``ln(raw - rest)`` (log: a power law in
log-log) or ``ln((raw - rest) / (top - raw))`` (conductance: an FSR on a
voltage divider whose ADC reads ``top`` at infinite conductance, so ``u`` is
the log of the FSR's conductance and a power law is a straight line).

``P`` is the loading branch (polynomial, degree 1-3, extended linearly past
the bench's range), ``D`` the unloading branch's offset, ``t`` the time since
the contact began and ``c(raw)`` 1 in the log domains, the relative reading
``(raw - rest) / span`` in the linear one (creep in proportion to the load).
That is ``creep_law = "log"`` (an FSR: drift per decade of time under load).
``creep_law = "follow"`` (a strain gauge: creep that builds up and recovers
with a time constant, whatever the contacts) replaces the log term with
``k * m`` where ``m`` follows the relative reading ``(raw - rest) / span``
(>= 0) with time constant ``tau``, ``m += (r - m) * (1 - exp(-dt / tau))``
per sample, running at rest too.
``z`` in [0, 1] is the branch state (0 loading, 1 unloading), chosen from the
direction of change of the reading only -- causal, so it runs live:

* ``v = ln(sense * (raw - rest))`` goes through a play operator (backlash) of
  half-width ``deadband``: noise inside the band never turns the branch;
* while the play output ``p`` rises, ``z = z_r * exp(-(p - p_r) / switch)``;
  while it falls, ``z = 1 - (1 - z_r) * exp(-(p_r - p) / switch)``, where
  ``(p_r, z_r)`` is the state at the last turn. Every value depends only on
  those and the running extremum, so the output is identical however the
  input is chunked;
* a reading below ``contact`` counts above ``rest`` ends the contact: the
  state returns to the loading branch and the creep clock to zero.

Without times (``apply``), the model reads a load applied from rest at once:
the loading branch, no creep; :class:`BranchStream` runs the full model.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from knotsense.dsp.calibration_models import CalibrationModel, FloatArray, register_model
from knotsense.errors import CalibrationError

__all__ = ["BranchModel", "BranchStream", "branch_states"]

_BLOCK = 1024
"""Samples searched at a time for the next turn of the play operator."""


def _poly(c: tuple[float, ...], x: FloatArray, lo: float, hi: float) -> FloatArray:
    """Polynomial in x, extended linearly (end value and slope) outside [lo, hi]."""
    coef = np.asarray(c, dtype=np.float64)
    xc = np.clip(x, lo, hi)
    out = np.polynomial.polynomial.polyval(xc, coef)
    if coef.size > 1:
        d = np.polynomial.polynomial.polyder(coef)
        out = out + np.polynomial.polynomial.polyval(xc, d) * (x - xc)
    return out


@register_model
@dataclass(frozen=True)
class BranchModel(CalibrationModel):
    """Loading / unloading branches, branch state from the reading, creep (module docstring)."""

    domain: str
    rest: float
    span: float
    x_center: float
    x_scale: float
    x_range: tuple[float, float]
    load: tuple[float, ...]
    unload: tuple[float, ...] = ()
    creep: float = 0.0
    creep_tau_s: float = 1.0
    creep_law: str = "log"
    deadband: float = 0.01
    switch: float = 0.07
    contact: float = 0.0
    top: float = 0.0
    """Conductance domain: the reading at infinite conductance (the ADC's full scale)."""
    kind: ClassVar[str] = "branch"

    def __post_init__(self) -> None:
        for name in ("load", "unload"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "x_range", tuple(float(v) for v in self.x_range))
        if self.domain not in ("linear", "log", "conductance"):
            raise CalibrationError(
                f"branch model domain must be linear, log or conductance, not {self.domain}"
            )
        if self.domain == "conductance" and not self.sense * (self.top - self.rest) > 0:
            raise CalibrationError("conductance domain needs the ADC top beyond the rest reading")
        nums = (self.rest, self.span, self.x_center, self.x_scale, self.creep, self.contact)
        if not all(math.isfinite(v) for v in nums + self.load + self.unload + self.x_range):
            raise CalibrationError("branch model needs finite numbers")
        if not 1 <= len(self.load) <= 4 or len(self.unload) > 3:
            raise CalibrationError("branch model: loading degree 0-3, unloading degree <= 2")
        if self.span == 0 or self.x_scale <= 0 or self.deadband < 0 or self.switch <= 0:
            raise CalibrationError("branch model needs a non-zero span and positive scales")
        if self.creep_law not in ("log", "follow"):
            raise CalibrationError(f"branch creep_law must be log or follow, not {self.creep_law}")
        if self.creep_tau_s <= 0 or not self.x_range[0] < self.x_range[1]:
            raise CalibrationError("branch model needs creep_tau_s > 0 and an increasing x_range")

    @property
    def sense(self) -> float:
        """+1 when the counts rise with the load, -1 when they fall."""
        return 1.0 if self.span > 0 else -1.0

    def rel(self, raw: ArrayLike) -> FloatArray:
        """The reading above rest, in the direction of the load (counts)."""
        return self.sense * (np.asarray(raw, dtype=np.float64) - self.rest)

    def x(self, raw: ArrayLike) -> FloatArray:
        r = self.rel(raw)
        if self.domain == "log":
            u = np.log(np.maximum(r, 1e-6 * abs(self.span)))
        elif self.domain == "conductance":
            room = self.sense * (self.top - np.asarray(raw, dtype=np.float64))
            u = np.log(np.maximum(r, 1e-6 * abs(self.span))) - np.log(np.maximum(room, 1e-6))
        else:
            u = np.asarray(raw, dtype=np.float64)
        return (u - self.x_center) / self.x_scale

    def force(
        self,
        raw: ArrayLike,
        z: ArrayLike = 0.0,
        t_load: ArrayLike = 0.0,
        memory: ArrayLike = 0.0,
    ) -> FloatArray:
        """Newtons for readings at branch state *z*, *t_load* s under load, creep *memory*."""
        x = self.x(raw)
        lo, hi = self.x_range
        y = _poly(self.load, x, lo, hi)
        if self.unload:
            y = y + np.asarray(z) * _poly(self.unload, x, lo, hi)
        if self.creep and self.creep_law == "follow":
            y = y + self.creep * np.asarray(memory, dtype=np.float64)
        elif self.creep:
            c = np.log10(1.0 + np.asarray(t_load, dtype=np.float64) / self.creep_tau_s)
            if self.domain == "linear":
                c = c * self.rel(raw) / abs(self.span)
            y = y + self.creep * c
        if self.domain != "linear":
            return np.where(self.rel(raw) > 0, np.exp(y), 0.0)
        return y

    def apply(self, raw: ArrayLike) -> FloatArray:
        return self.force(raw)

    def inverse(self, force: ArrayLike) -> FloatArray:
        """Counts that read *force* on the loading branch, no creep (a load from rest)."""
        f = np.asarray(force, dtype=np.float64)
        lo, hi = self.x_range
        pad = 0.25 * (hi - lo)
        xs = np.linspace(lo - pad, hi + pad, 4097) * self.x_scale + self.x_center
        if self.domain == "log":
            raws = self.rest + self.sense * np.exp(xs)
        elif self.domain == "conductance":  # g = r / (top - raw): raw = rest + g (top - rest)/(1+g)
            g = np.exp(xs)
            raws = self.rest + (self.top - self.rest) * g / (1 + g)
        else:
            raws = xs
        vals = self.apply(raws)
        if not np.all(np.diff(vals) > 0):
            raise CalibrationError("branch model is not monotone on its range; no inverse")
        return np.interp(f, vals, raws)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "domain": self.domain,
            "rest": self.rest,
            "span": self.span,
            "x_center": self.x_center,
            "x_scale": self.x_scale,
            "x_range": list(self.x_range),
            "load": list(self.load),
            "unload": list(self.unload),
            "creep": self.creep,
            "creep_tau_s": self.creep_tau_s,
            "creep_law": self.creep_law,
            "deadband": self.deadband,
            "switch": self.switch,
            "contact": self.contact,
            "top": self.top,
        }

    @property
    def stateful(self) -> bool:
        return bool(self.unload) or self.creep != 0.0

    def stream(self) -> BranchStream:
        return BranchStream(self)


@dataclass
class _State:
    p: float = math.nan  # play output (nan: at rest)
    rising: bool = True
    p_r: float = 0.0
    z_r: float = 0.0
    t_on: float = math.nan  # time the contact began


def follow(
    t: FloatArray, r: FloatArray, tau: float, m0: float, t0: float
) -> tuple[FloatArray, float, float]:
    """First-order follower of *r* with time constant *tau*, from (m0 at t0); exact per sample.

    A plain loop, so the result is the same to the bit however the input is
    chunked (a cumulative-product form would round differently).
    """
    out = np.empty(r.size)
    m, last = m0, t0
    exp = math.exp
    for i, (ti, ri) in enumerate(zip(t.tolist(), r.tolist(), strict=True)):
        if last == last:  # not NaN: the first sample only starts the clock
            m += (ri - m) * (1.0 - exp(-(ti - last) / tau))
        last = ti
        out[i] = m
    return out, m, last


def branch_states(
    v: FloatArray, deadband: float, switch: float, state: _State | None = None
) -> tuple[FloatArray, _State]:
    """Branch state z for log readings *v* of one contact, from *state* (or a fresh contact)."""
    st = _State() if state is None else state
    n = v.size
    z = np.empty(n)
    i = 0
    while i < n:
        if math.isnan(st.p):
            st.p, st.rising, st.p_r, st.z_r = float(v[i]), True, float(v[i]), 0.0
        j = min(n, i + _BLOCK)
        seg = v[i:j]
        if st.rising:
            pc = np.maximum(np.maximum.accumulate(seg - deadband), st.p)
            turn = np.flatnonzero(seg + deadband < pc)
        else:
            pc = np.minimum(np.minimum.accumulate(seg + deadband), st.p)
            turn = np.flatnonzero(seg - deadband > pc)
        k = int(turn[0]) if turn.size else seg.size
        if k:
            p = pc[:k]
            if st.rising:
                z[i : i + k] = st.z_r * np.exp(-(p - st.p_r) / switch)
            else:
                z[i : i + k] = 1.0 - (1.0 - st.z_r) * np.exp(-(st.p_r - p) / switch)
            st.p = float(p[-1])
        if k < seg.size:  # the reading turned: restart from the state at the turn
            last = float(z[i + k - 1]) if k else _z_at(st, st.p, switch)
            st.p_r, st.z_r, st.rising = st.p, last, not st.rising
        i += k
    return z, st


def _z_at(st: _State, p: float, switch: float) -> float:
    if st.rising:
        return st.z_r * math.exp(-(p - st.p_r) / switch)
    return 1.0 - (1.0 - st.z_r) * math.exp(-(st.p_r - p) / switch)


class BranchStream:
    """One channel of a :class:`BranchModel`, live: ``process(t, raw)`` -> N; ``reset()``."""

    def __init__(self, model: BranchModel) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """A sensor at rest: loading branch, creep clock at zero."""
        self._st = _State()
        self._m = 0.0
        self._t_last = math.nan

    def process(self, t: ArrayLike, raw: ArrayLike) -> FloatArray:
        """Forces for samples at times *t* (s); the same output for any chunking.

        A NaN reading (a missing sample) reads NaN and leaves the state alone.
        """
        r = np.asarray(raw, dtype=np.float64).ravel()
        tt = np.asarray(t, dtype=np.float64).ravel()
        if tt.size != r.size:
            raise CalibrationError(f"{tt.size} times for {r.size} readings")
        ok = np.isfinite(r)
        if ok.all():
            return self._process(tt, r)
        out = np.full(r.size, np.nan)
        out[ok] = self._process(tt[ok], r[ok])
        return out

    def _process(self, tt: FloatArray, r: FloatArray) -> FloatArray:
        m = self.model
        rel = m.rel(r)
        loaded = rel > m.contact
        z = np.zeros(r.size)
        t_load = np.zeros(r.size)
        # Runs of loaded samples are contacts; between them the state is at rest.
        edges = np.flatnonzero(np.diff(loaded.astype(np.int8))) + 1
        bounds = np.concatenate(([0], edges, [r.size]))
        v = np.log(np.maximum(rel, 1e-12 * abs(m.span)))
        for a, b in itertools.pairwise(bounds):
            if a == b:
                continue
            if not loaded[a]:
                self._st = _State()
                continue
            st = self._st
            if math.isnan(st.t_on):
                st.t_on = float(tt[a])
            if m.unload:
                z[a:b], st = branch_states(v[a:b], m.deadband, m.switch, st)
            t_load[a:b] = tt[a:b] - st.t_on
            self._st = st
        memory = 0.0
        if m.creep and m.creep_law == "follow":
            level = np.maximum(rel / abs(m.span), 0.0)
            memory, self._m, self._t_last = follow(tt, level, m.creep_tau_s, self._m, self._t_last)
        return m.force(r, z, t_load, memory)
