"""An independent bench simulation of force sensors, for judging calibration (issue 15).

This is not ``knotsense.firmware_sim`` and shares nothing with the fitting
code: it is the yardstick the fits are measured with. Each unit is one sensor
on a bench (a dead-weight or actuator stack with a reference gauge), sampled
at :data:`RATE_HZ`. What it models, per kind (figures from DOMAIN.md):

* **Load cell** (strain gauge + 24-bit ADC), full scale 100 N:
  ``counts = zero + gain * (F + bow + hyst + creep)`` where the bow is a
  0.1-0.25 % FS parabola ``4 q (1 - q)`` (``q = F / FS``), the hysteresis
  ``hyst = h * F * (1 - q) * s`` (``h`` 0.3-0.6 %: about 0.1-0.15 % FS at
  mid-range) and the creep a first-order follower of the load with
  ``tau`` 600-1200 s and 0.1-0.15 % at the end (it recovers on unloading).
  Noise 20-40 counts rms (gain ~2000 counts/N); each contact (a load applied
  from rest) draws a gain factor N(1, 0.05 %) and a zero shift N(0, 0.01 % FS):
  the unit's repeatability.
* **FSR** (force-sensing resistor on a 10 kOhm divider, 12-bit ADC), full
  scale 20 N on the element: conductance ``g = k * max(F - F0, 0) ** n``
  (``n`` 0.85-1.15, ``F0`` 0.05-0.15 N) times ``(1 + h * s * (1 - q / 2))``
  (``h`` 8-14 %: unloading reads high) times the creep
  ``1 + c * log10(1 + t / tau0)`` where ``t`` is the time since the contact
  began (``c`` 2-4 % per decade, ``tau0`` 0.5-3 s); ``counts = off + (4095 -
  off) * g / (1 + g)``, rounded, 1-2 counts rms noise; each contact draws a
  conductance factor N(1, 1 %) (the +/-2 % repeatability of one part).

The branch state ``s`` (0 = loading, 1 = unloading) is a rate-independent
Duhem model in log force: ``ds = (target - s) * |d ln(F + F_eps)| / lam``
with target 1 while the load falls and 0 while it rises, ``lam`` 0.05-0.1:
after the load turns, the reading moves over to the other branch within a
change of a few tens of percent. A contact ends below :data:`CONTACT_FRACTION`
of full scale.

The **oracle floor** of a unit: an oracle that knows the unit's deterministic
behaviour (the mean loading and unloading curves, the branch state and the
creep from the true load history) and inverts each reading with it; only the
random parts (noise, contact-to-contact repeatability, gauge noise) are left.
A calibration's p95 error over the same windows, divided by it, is the
"ratio to the floor".

``python benchmarks/calibration_accuracy.py`` prints the per-unit table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE_HZ = 50.0
CONTACT_FRACTION = 0.005
"""Below this fraction of full scale the sensor is at rest (a contact ends)."""
ADC_FSR = 4095.0


@dataclass(frozen=True)
class Unit:
    """One simulated sensor; every figure is drawn from its kind and index."""

    kind: str
    index: int
    full_scale_n: float
    gain: float
    zero: float
    exponent: float
    threshold_n: float
    bow: float
    hysteresis: float
    lam: float
    creep: float
    creep_tau_s: float
    noise: float
    rep_gain: float
    rep_zero: float

    @property
    def serial(self) -> str:
        return f"{'LC' if self.kind == 'load_cell' else 'FSR'}-{self.index:03d}"


def make_unit(kind: str, index: int) -> Unit:
    """A unit of *kind* ("load_cell" or "fsr"), seeded by its index."""
    rng = np.random.default_rng([17 if kind == "load_cell" else 29, index])
    if kind == "load_cell":
        return Unit(
            kind,
            index,
            100.0,
            gain=2000.0 * rng.uniform(0.92, 1.08),
            zero=rng.uniform(-5e4, 5e4),
            exponent=1.0,
            threshold_n=0.0,
            bow=rng.uniform(0.001, 0.0025) * rng.choice((-1, 1)),
            hysteresis=rng.uniform(0.003, 0.006),
            lam=rng.uniform(0.05, 0.1),
            creep=rng.uniform(0.0012, 0.0018),
            creep_tau_s=rng.uniform(600.0, 1200.0),
            noise=rng.uniform(20.0, 40.0),
            rep_gain=0.0005,
            rep_zero=0.0001,
        )
    if kind == "fsr":
        n = rng.uniform(0.85, 1.15)
        return Unit(
            kind,
            index,
            20.0,
            gain=rng.uniform(2.0, 4.0) / 20.0**n,
            zero=rng.uniform(2.0, 12.0),
            exponent=n,
            threshold_n=rng.uniform(0.05, 0.15),
            bow=0.0,
            hysteresis=rng.uniform(0.08, 0.14),
            lam=rng.uniform(0.05, 0.1),
            creep=rng.uniform(0.02, 0.04),
            creep_tau_s=rng.uniform(0.5, 3.0),
            noise=rng.uniform(1.0, 2.0),
            rep_gain=0.01,
            rep_zero=0.0,
        )
    raise ValueError(f"unknown sensor kind {kind!r}")


@dataclass(frozen=True)
class Trace:
    """A simulated recording: true load, gauge reading, counts and the oracle's estimate."""

    t: np.ndarray
    force: np.ndarray
    reference: np.ndarray
    raw: np.ndarray
    oracle: np.ndarray


def profile(segments: list[tuple[float, float, float]], rate: float = RATE_HZ) -> np.ndarray:
    """A load profile from (hold s, force N, ramp s) segments, linear ramps, from 0 N."""
    parts = []
    level = 0.0
    for hold, force, ramp in segments:
        nr = max(1, round(ramp * rate))
        parts.append(level + (force - level) * (np.arange(1, nr + 1) / nr))
        parts.append(np.full(max(1, round(hold * rate)), float(force)))
        level = float(force)
    return np.concatenate(parts)


def _states(u: Unit, force: np.ndarray, rate: float) -> tuple[np.ndarray, ...]:
    """Branch state s, creep state and contact index/time, from the true load history."""
    n = force.size
    s = np.zeros(n)
    creep = np.zeros(n)
    since = np.zeros(n)
    contact = np.zeros(n, dtype=np.int64)
    rest = u.full_scale_n * CONTACT_FRACTION
    eps = 0.01 * u.full_scale_n
    b = math.exp(-1.0 / (rate * u.creep_tau_s))
    si, cz, t_on, k = 0.0, 0.0, 0.0, 0
    prev = math.log(eps)
    was_loaded = False
    for i in range(n):
        f = float(force[i])
        lf = math.log(max(f, 0.0) + eps)
        d = lf - prev
        prev = lf
        loaded = f > rest
        if loaded and not was_loaded:
            k += 1
            t_on = i / rate
        was_loaded = loaded
        if not loaded:
            si = 0.0
        elif d != 0.0:
            target = 1.0 if d < 0 else 0.0
            si = target + (si - target) * math.exp(-abs(d) / u.lam)
        cz = b * cz + (1 - b) * max(f, 0.0)
        s[i] = si
        creep[i] = cz
        since[i] = i / rate - t_on if loaded else 0.0
        contact[i] = k if loaded else 0
    return s, creep, since, contact


def _counts(u: Unit, f: np.ndarray, s, creep, since, gfac, zshift) -> np.ndarray:
    """Noise-free counts for loads *f* given the states (the sensor's deterministic law)."""
    fs = u.full_scale_n
    q = f / fs
    if u.kind == "load_cell":
        eff = f + u.bow * fs * 4 * q * (1 - q) + u.hysteresis * f * (1 - q) * s + u.creep * creep
        return u.zero + zshift + u.gain * gfac * eff
    g = u.gain * np.maximum(f - u.threshold_n, 0.0) ** u.exponent
    g = g * (1 + u.hysteresis * s * (1 - q / 2))
    g = g * (1 + u.creep * np.log10(1 + since / u.creep_tau_s))
    g = g * gfac
    return u.zero + (ADC_FSR - u.zero) * g / (1 + g)


def simulate(u: Unit, force: np.ndarray, seed: int, rate: float = RATE_HZ) -> Trace:
    """Record *force* (N per sample) through unit *u*: counts, gauge, and the oracle estimate."""
    rng = np.random.default_rng([seed, u.index, 3 if u.kind == "load_cell" else 5])
    s, creep, since, contact = _states(u, force, rate)
    kmax = int(contact.max()) + 1
    gains = 1 + u.rep_gain * rng.standard_normal(kmax)
    zeros = u.rep_zero * u.full_scale_n * u.gain * rng.standard_normal(kmax)
    gains[0], zeros[0] = 1.0, 0.0
    gfac, zshift = gains[contact], zeros[contact]
    clean = _counts(u, force, s, creep, since, gfac, zshift)
    raw = clean + u.noise * rng.standard_normal(force.size)
    if u.kind == "fsr":
        raw = np.clip(np.round(raw), 0, ADC_FSR)
    reference = force * (1 + 2e-4 * rng.standard_normal(force.size))
    # The oracle: the deterministic law (mean gain, mean zero) inverted around the true load.
    mean = _counts(u, force, s, creep, since, 1.0, 0.0)
    h = 1e-4 * u.full_scale_n
    slope = (_counts(u, force + h, s, creep, since, 1.0, 0.0) - mean) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        oracle = np.where(np.abs(slope) > 0, force + (raw - mean) / slope, np.nan)
    t = np.arange(force.size) / rate
    return Trace(t, force, reference, raw[:, None], oracle)


def verification_profile(u: Unit, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The known-load recording: held loads from rest, eased off, staircases; and its windows.

    Returns the load profile and the sample ranges (1 s windows, from 3 s into
    each hold at 10-100 % of range) the errors are judged on.
    """
    rng = np.random.default_rng([seed, 101])
    fs = u.full_scale_n
    segs: list[tuple[float, float, float]] = [(10.0, 0.0, 1.0)]
    levels = rng.permutation(np.linspace(0.15, 1.0, 8))
    for lv in levels:
        hold = float(rng.choice((20.0, 60.0, 90.0)))
        segs.append((hold, lv * fs, 2.0))
        if lv >= 0.3:
            segs.append((30.0, lv * fs * rng.uniform(0.4, 0.7), 2.0))
        segs.append((25.0, 0.0, 2.0))
    # Staircases up and down within one contact (a person settling in, easing off).
    for a, b, c in ((0.2, 0.45, 0.8), (0.9, 0.6, 0.35)):
        segs += [(30.0, a * fs, 2.0), (30.0, b * fs, 2.0), (30.0, c * fs, 2.0), (25.0, 0.0, 2.0)]
    force = profile(segs)
    windows = []
    i = 0
    w = int(RATE_HZ)
    for hold, f, ramp in segs:
        i += max(1, round(ramp * RATE_HZ))
        n = max(1, round(hold * RATE_HZ))
        if 0.1 * fs - 1e-9 <= f <= fs + 1e-9:
            for a in range(i + 3 * w, i + n - w + 1, w):
                windows.append((a, a + w))
        i += n
    return force, windows


def window_errors(trace: Trace, forces: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
    """|mean estimate - true| / true * 100 per window (% of reading)."""
    out = []
    for a, b in windows:
        true = float(trace.force[a:b].mean())
        out.append(abs(float(np.mean(forces[a:b])) - true) / true * 100.0)
    return np.asarray(out)


def bench_profile(plan, rate: float = RATE_HZ) -> np.ndarray:
    """The load a bench applies to follow *plan* (a ``knotsense.calibration.plan.BenchPlan``)."""
    fs = plan.full_scale_n
    segs: list[tuple[float, float, float]] = [(5.0, 0.0, 1.0)]
    for _ in range(plan.preloads):
        segs += [(plan.preload_hold_s + 4.0, fs, 3.0), (8.0, 0.0, 3.0)]
    hold = plan.settle_s + plan.read_s + 6.0
    zero = plan.zero_settle_s + plan.read_s + 6.0
    for st in plan.steps():
        if st.direction == "creep":
            if st.hold_s == plan.creep.read_at_s[0]:
                segs.append((plan.creep.read_at_s[-1] + plan.read_s + 6.0, st.nominal_n, 2.0))
            continue
        segs.append((zero if st.direction == "zero" else hold, st.nominal_n, 2.0))
    segs.append((10.0, 0.0, 2.0))
    return profile(segs, rate)
