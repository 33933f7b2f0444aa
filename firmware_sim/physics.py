"""Silicone and sensors: from the load a body applies to the ADC counts of each channel.

Chain, per channel, evaluated a block of samples at a time with numpy:

1. load sharing: the total force at the centre of pressure is split over the
   sensors like a rigid plate on equal springs (moment balance), clipped at 0;
2. silicone: Prony-series relaxation. The knob is in series between the body
   and the sensors, so the sensors together always carry the applied total
   (a single sensor reads exactly the load, however slow the silicone); the
   relaxation shows where the sharing changes (rocking, a shifting centre of
   pressure): each channel's share ``w`` reads ``w + sum g_k * highpass_tau_k(w)``
   while loaded -- a change in sharing overshoots by ``sum g_k`` and relaxes
   to the static sharing -- and an unloaded knob starts afresh;
3. the sensor (:class:`UnitParams` fixes every figure of one unit, seeded by
   its serial number):

   * load cell on a 24-bit ADC: gain ~25 000 counts/N (+/-8 % part to part),
     offset, 0.2 % FS bow nonlinearity, 0.2 % FS hysteresis, 0.1 % creep in
     30 min, zero and span temperature drift, 20-40 counts rms noise at
     80 SPS (growing with sqrt(rate)), saturation at the ADC limits;
   * FSR behind a load spreader on a 12-bit ADC: conductance a power law of
     the force on the element, voltage divider to counts, ~10 % FS
     hysteresis (unloading reads high, relative to the recent peak), drift
     under load of a few % per decade of time, -0.25 %/degC sensitivity,
     +/-6 % part-to-part gain.

Hysteresis is modelled with a slowly decaying peak memory: reading
``F + h * P * 4 r (1 - r)`` where ``P`` is the recent peak and ``r = F / P``,
so the rising branch is the static curve and the falling branch reads high
by up to ``h * P`` at half the peak (rate-independent, as on a bench).
Unloading wipes the memory (an FSR's layers part, a load cell returns to
its zero): a load applied from rest reads on the rising branch, so bench
series that start from zero (after the preloads) read as a body lying down.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.load import LoadProfile
from knotsense.firmware_sim.scenario import Scenario
from knotsense.firmware_sim.truth import CONTACT_FLOOR_N

PRONY = {
    "soft": ((0.04, 0.03, 0.02), (0.025, 0.15, 0.3)),
    "dense": ((0.05, 0.04, 0.025, 0.015), (0.1, 1.4, 25.0, 300.0)),
    "hard": ((0.15, 0.15, 0.1), (0.1, 1.4, 25.0)),
}
"""Prony terms (g_k, tau_k seconds) of the silicone presets."""

LOAD_CELL_RATES = (10, 80, 250, 500, 1000)
FSR_RATES = (50, 100, 250, 500, 1000)
LOAD_CELL_BITS = 24
FSR_BITS = 12
REFERENCE_C = 22.0
PEAK_MEMORY_S = 180.0
CREEP_TAU_S = 600.0
WARM_TAU_S = 400.0
PHYSICS_RATE_HZ = 200.0
"""Rate of the noise-free physics grid; samples interpolate it, then get their noise."""
PHYSICS_BLOCK = 2000
"""Grid points computed per step (10 s): numpy overhead is paid once per block."""
SKIN_WARMING_C = 8.0
UNLOADED_FRACTION = 0.005
SHARE_FLOOR_N = 0.5
"""At or below this total the knob is unloaded: the silicone's sharing memory starts afresh."""
"""A load cell channel at or below this fraction of full scale counts as unloaded (hysteresis)."""


def unit_seed(serial: str) -> int:
    """A stable integer from a serial number (not Python's salted hash)."""
    return zlib.crc32(serial.encode("utf-8"))


def sensor_positions(channels: int) -> np.ndarray:
    """Sensor positions (mm) under the knob: centre, a pair, or a ring of radius 18 mm."""
    if channels == 1:
        return np.zeros((1, 2))
    if channels == 2:
        return np.array([[-15.0, 0.0], [15.0, 0.0]])
    angle = 2 * np.pi * np.arange(channels) / channels + np.pi / 2
    return np.round(18.0 * np.column_stack((np.cos(angle), np.sin(angle))), 1)


@dataclass(frozen=True)
class UnitParams:
    """The individual figures of one simulated unit; two serials give two units."""

    serial: str
    sensor: str
    channels: int
    positions_mm: np.ndarray = field(repr=False)
    adc_bits: int
    adc_min: int
    adc_max: int
    gain: np.ndarray = field(repr=False)
    """Load cell: counts per N. FSR: divider gain G*Rm per N**exponent on the element."""
    offset: np.ndarray = field(repr=False)
    noise_rms: np.ndarray = field(repr=False)
    """Counts rms at the reference rate (80 Hz load cell; any rate FSR)."""
    full_scale_n: float
    nonlinearity: np.ndarray = field(repr=False)
    hysteresis: np.ndarray = field(repr=False)
    creep: np.ndarray = field(repr=False)
    zero_tc: np.ndarray = field(repr=False)
    """Counts per degC."""
    span_tc: np.ndarray = field(repr=False)
    """Relative gain change per degC."""
    fsr_exponent: np.ndarray = field(repr=False)
    fsr_threshold_n: float
    fsr_spread: float
    drift_per_decade: np.ndarray = field(repr=False)
    crystal_ppm: float
    jitter_us: float
    battery_pct0: float
    sample_rates: tuple[int, ...]
    default_rate: int

    def to_dict(self) -> dict:
        """JSON-safe figures (for reports and the calibration engineer)."""
        out = {}
        for name, value in self.__dict__.items():
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def static_counts(
        self, force_n: np.ndarray, temperature_c: float = REFERENCE_C, creep: float = 1.0
    ) -> np.ndarray:
        """Noise-free counts of each channel for a settled force per channel (rising branch).

        Args:
            creep: how much of the load cell's creep has developed (0 fresh, 1 settled).
        """
        f = np.asarray(force_n, dtype=np.float64)
        dt = temperature_c - REFERENCE_C
        if self.sensor == "load_cell":
            fs = self.full_scale_n
            nl = self.nonlinearity * fs * 4 * (f / fs) * (1 - f / fs)
            eff = (f + nl + creep * self.creep * f) * (1 + self.span_tc * dt)
            return self.offset + self.gain * eff + self.zero_tc * dt
        el = f * self.fsr_spread * (1 + self.span_tc * dt)
        g = self.gain * np.maximum(el - self.fsr_threshold_n, 0.0) ** self.fsr_exponent
        return self.offset + (self.adc_max - self.offset) * g / (1 + g)


def make_unit(
    serial: str,
    sensor: str,
    channels: int,
    default_rate: int | None = None,
    drift_scale: float = 1.0,
) -> UnitParams:
    """Draw the individual figures of unit *serial* (deterministic in the serial)."""
    rng = np.random.default_rng([unit_seed(serial), 0x0017])
    c = channels
    common = {
        "serial": serial,
        "sensor": sensor,
        "channels": c,
        "positions_mm": sensor_positions(c),
        "crystal_ppm": float(rng.uniform(-40.0, 40.0)),
        "jitter_us": float(rng.uniform(1.0, 4.0)),
        "battery_pct0": float(rng.uniform(82.0, 99.0)),
    }
    if sensor == "load_cell":
        return UnitParams(
            **common,
            adc_bits=LOAD_CELL_BITS,
            adc_min=-(1 << 23),
            adc_max=(1 << 23) - 1,
            gain=25_000.0 * rng.normal(1.0, 0.04, c).clip(0.9, 1.1),
            offset=rng.normal(0.0, 60_000.0, c).round(),
            noise_rms=rng.uniform(20.0, 40.0, c),
            full_scale_n=300.0,
            nonlinearity=0.002 * rng.uniform(0.7, 1.0, c) * rng.choice([-1.0, 1.0], c),
            hysteresis=0.002 * rng.uniform(0.7, 1.0, c),
            creep=0.00105 * rng.uniform(0.8, 1.2, c),
            zero_tc=drift_scale * 0.0005 * 300.0 * 25_000.0 / 10 * rng.uniform(-1.0, 1.0, c),
            span_tc=drift_scale * 1e-5 * rng.uniform(-1.0, 1.0, c),
            fsr_exponent=np.ones(c),
            fsr_threshold_n=0.0,
            fsr_spread=1.0,
            drift_per_decade=np.zeros(c),
            sample_rates=LOAD_CELL_RATES,
            default_rate=default_rate or 80,
        )
    if sensor == "fsr":
        return UnitParams(
            **common,
            adc_bits=FSR_BITS,
            adc_min=0,
            adc_max=(1 << 12) - 1,
            gain=0.2 * rng.normal(1.0, 0.06, c).clip(0.82, 1.18),
            offset=rng.integers(2, 12, c).astype(np.float64),
            noise_rms=rng.uniform(1.0, 2.0, c),
            full_scale_n=250.0,
            nonlinearity=np.zeros(c),
            hysteresis=rng.uniform(0.08, 0.13, c),
            creep=np.zeros(c),
            zero_tc=np.zeros(c),
            span_tc=drift_scale * -0.0025 * rng.uniform(0.8, 1.2, c),
            fsr_exponent=rng.uniform(0.9, 1.1, c),
            fsr_threshold_n=0.2,
            fsr_spread=0.08,
            drift_per_decade=drift_scale * rng.uniform(0.02, 0.045, c),
            sample_rates=FSR_RATES,
            default_rate=default_rate or 250,
        )
    raise ConfigurationError(f"unknown sensor {sensor!r} (known: load_cell, fsr)")


def load_shares(positions: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Share of the total force on each sensor, (n, C): rigid plate on equal springs."""
    return _ShareModel(positions)(np.asarray(cx, float), np.asarray(cy, float))


class SensorFrontEnd:
    """The physical chain for one unit in one scenario.

    The noise-free chain (load, sharing, silicone, sensor) runs on a fixed
    grid of :data:`PHYSICS_RATE_HZ` in host time, computed in order and ahead
    as needed, so it depends on host time only -- not on the sample rate, the
    sampler's restarts or how the caller steps. :meth:`process` interpolates
    that grid at the sample times, then adds the ADC noise and quantises.
    """

    def __init__(self, unit: UnitParams, scenario: Scenario, profile: LoadProfile) -> None:
        self.unit = unit
        self.scenario = scenario
        self.profile = profile
        g, tau = PRONY[scenario.silicone]
        self.prony_g = np.array(g)
        self.prony_tau = np.array(tau)
        c = unit.channels
        self._share = _ShareModel(unit.positions_mm)
        self._prony_z = np.full((len(g), c), np.nan)
        self._creep_z = np.zeros(c)
        self._warm_z = 0.0
        self._peak = np.zeros(c)
        self._loaded_since = np.full(c, np.nan)
        self._g_next = 0
        self._g0 = 0
        self._clean = np.zeros((0, c))
        self._applied = np.zeros((0, c))
        self._total = np.zeros(0)
        self.temperature_c = scenario.ambient_c

    def ambient(self, t: np.ndarray | float) -> np.ndarray | float:
        sc = self.scenario
        frac = np.clip(np.asarray(t) / max(sc.duration_s, 1.0), 0.0, 1.0)
        return sc.ambient_c + sc.ambient_drift_c * frac

    def process(
        self, t: np.ndarray, noise: np.ndarray, rate_hz: float, forces: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """Sample at host times *t*; returns (applied (n,C) N, raw (n,C) int64, total (n,)).

        Args:
            t: host times of the samples, increasing; never earlier than about a
                second before the latest time asked for before.
            noise: standard normal draws, shape (n, C).
            rate_hz: the sample rate (sets the noise bandwidth).
            forces: also interpolate the applied forces (else None is returned for them).
        """
        unit = self.unit
        if t.size == 0:
            c = unit.channels
            return np.zeros((0, c)), np.zeros((0, c), np.int64), np.zeros(0)
        self._ensure(float(t[-1]))
        x = t * PHYSICS_RATE_HZ - self._g0
        i = np.clip(np.floor(x).astype(np.int64), 0, self._total.size - 2)
        frac = np.clip(x - i, 0.0, 1.0)
        w = frac[:, None]
        c0 = self._clean[i]
        clean = c0 + (self._clean[i + 1] - c0) * w
        applied = total = None
        if forces:
            applied = self._applied[i] * (1 - w) + self._applied[i + 1] * w
            total = self._total[i] * (1 - frac) + self._total[i + 1] * frac
        noise_rms = unit.noise_rms * self.scenario.noise_scale
        if unit.sensor == "load_cell":
            noise_rms = noise_rms * math.sqrt(rate_hz / 80.0)
        raw = clean
        raw += noise * noise_rms
        np.rint(raw, out=raw)
        np.clip(raw, unit.adc_min, unit.adc_max, out=raw)
        self._trim(float(t[0]))
        return applied, raw.astype(np.int64), total

    def _ensure(self, t_max: float) -> None:
        """Compute the grid past *t_max*, in fixed blocks of PHYSICS_BLOCK points."""
        need = math.floor(t_max * PHYSICS_RATE_HZ) + 2
        if need <= self._g_next:
            return
        end = self._g_next
        while end < need:
            end += PHYSICS_BLOCK
        applied, clean, total = self._compute(self._g_next, end)
        self._applied = np.concatenate((self._applied, applied))
        self._clean = np.concatenate((self._clean, clean))
        self._total = np.concatenate((self._total, total))
        self._g_next = end

    def _trim(self, t_min: float) -> None:
        keep_from = math.floor(t_min * PHYSICS_RATE_HZ) - 2 * int(PHYSICS_RATE_HZ)
        drop = keep_from - self._g0
        if drop > 2 * PHYSICS_BLOCK:
            self._applied = self._applied[drop:]
            self._clean = self._clean[drop:]
            self._total = self._total[drop:]
            self._g0 += drop

    def _compute(self, g_from: int, g_to: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise-free (applied (n,C), counts (n,C), total (n,)) at grid points [g_from, g_to)."""
        unit = self.unit
        dt = 1.0 / PHYSICS_RATE_HZ
        t = np.arange(g_from, g_to) * dt
        total, cx, cy = self.profile.evaluate(t)
        applied = total[:, None] * self._share(cx, cy)
        # Filters run along time on the transposed (C, n) arrays: contiguous rows.
        a_t = np.ascontiguousarray(applied.T)
        silicone = self._silicone(a_t, total, dt) if unit.channels > 1 else a_t.copy()
        b = math.exp(-dt / WARM_TAU_S)
        contact = (total > CONTACT_FLOOR_N).astype(np.float64)
        warm, zf = lfilter([1 - b], [1.0, -b], contact, zi=[self._warm_z])
        self._warm_z = float(zf[0])
        temp = self.ambient(t) + SKIN_WARMING_C * warm
        self.temperature_c = float(temp[-1])
        dtemp = temp[None, :] - REFERENCE_C
        if unit.sensor == "load_cell":
            counts = self._load_cell(t, silicone, dtemp, dt)
        else:
            counts = self._fsr(t, silicone, dtemp)
        return applied, np.ascontiguousarray(counts.T), total

    def _silicone(self, a_t: np.ndarray, total: np.ndarray, dt: float) -> np.ndarray:
        """Channel forces (C, n) through the silicone: the total kept, the sharing relaxing.

        The knob is in series between the body and the sensors, so together they carry
        the applied total at every instant. What the relaxation changes is how the load
        is shared: each channel's share overshoots a change by ``sum g_k`` and relaxes
        with the Prony time constants, ``w + sum g_k * (w - lowpass_tau_k(w))``, while
        loaded; an unloaded knob has nothing to share and starts afresh.
        """
        w = np.divide(a_t, total[None, :], out=np.zeros_like(a_t), where=total > 1e-9)
        loaded = total > SHARE_FLOOR_N
        edges = np.flatnonzero(np.diff(loaded.astype(np.int8))) + 1
        bounds = [0, *edges.tolist(), total.size]
        out = w.copy()
        for k, (g, tau) in enumerate(zip(self.prony_g, self.prony_tau, strict=True)):
            a = math.exp(-dt / tau)
            state = self._prony_z[k]
            for lo, hi in itertools.pairwise(bounds):
                if not loaded[lo]:
                    state = np.full(w.shape[0], np.nan)
                    continue
                if np.isnan(state).any():
                    state = w[:, lo].copy()
                lp, _ = lfilter([1 - a], [1.0, -a], w[:, lo:hi], axis=1, zi=(a * state)[:, None])
                out[:, lo:hi] += g * (w[:, lo:hi] - lp)
                state = lp[:, -1].copy()
            self._prony_z[k] = state
        np.maximum(out, 0.0, out=out)
        norm = out.sum(axis=0)
        return np.divide(out, norm[None, :], out=w, where=norm > 1e-12) * total[None, :]

    def _hysteresis(self, t: np.ndarray, f: np.ndarray, h: np.ndarray, floor: float) -> np.ndarray:
        """Reading with peak-memory hysteresis (see the module docstring); f is (C, n).

        Unloading to *floor* or below wipes the memory (return-point memory): a load
        applied from rest reads on the rising branch, whatever came before.
        """
        rel = (t - t[0])[None, :] / PEAK_MEMORY_S
        decay = np.exp(-rel)
        grown = f * np.exp(rel)
        rest = f <= floor
        # Running maximum within each loaded stretch: offset every stretch above the last.
        seg = np.cumsum(rest, axis=1)
        big = 2.0 * (grown.max() + 1.0)
        running = (np.maximum.accumulate(grown + seg * big, axis=1) - seg * big) * decay
        step = math.exp(-1.0 / (PHYSICS_RATE_HZ * PEAK_MEMORY_S))
        carried = np.where(seg == 0, (self._peak * step)[:, None] * decay, 0.0)
        peak = np.maximum(np.where(rest, f, running), carried)
        self._peak = peak[:, -1].copy()
        r = np.divide(f, peak, out=np.ones_like(f), where=peak > 1e-9)
        return f + h[:, None] * peak * 4 * r * (1 - r)

    def _load_cell(self, t: np.ndarray, f: np.ndarray, dtemp: np.ndarray, dt: float) -> np.ndarray:
        u = self.unit
        fs = u.full_scale_n
        f = self._hysteresis(t, f, u.hysteresis, UNLOADED_FRACTION * fs)
        b = math.exp(-dt / CREEP_TAU_S)
        lp, zf = lfilter([1 - b], [1.0, -b], f, axis=1, zi=self._creep_z[:, None])
        self._creep_z = zf[:, 0]
        nl = u.nonlinearity[:, None] * fs * 4 * (f / fs) * (1 - f / fs)
        eff = (f + nl + u.creep[:, None] * lp) * (1 + u.span_tc[:, None] * dtemp)
        return u.offset[:, None] + u.gain[:, None] * eff + u.zero_tc[:, None] * dtemp

    def _fsr(self, t: np.ndarray, f: np.ndarray, dtemp: np.ndarray) -> np.ndarray:
        u = self.unit
        # Below the threshold the FSR's layers part: that is its unloaded state.
        el = self._hysteresis(t, f * u.fsr_spread, u.hysteresis, u.fsr_threshold_n)
        loaded = el > u.fsr_threshold_n
        # Time under load since the current contact started, per channel.
        prev = ~np.isnan(self._loaded_since)
        starts = loaded & ~np.hstack((prev[:, None], loaded[:, :-1]))
        idx = np.where(starts, np.arange(t.size)[None, :], -1)
        last = np.maximum.accumulate(idx, axis=1)
        since = np.where(last >= 0, t[np.maximum(last, 0)], self._loaded_since[:, None])
        since = np.where(loaded, since, np.nan)
        self._loaded_since = since[:, -1].copy()
        under = np.nan_to_num(t[None, :] - since, nan=0.0)
        drift = 1 + u.drift_per_decade[:, None] * np.log10(1 + under)
        el = el * drift * (1 + u.span_tc[:, None] * dtemp)
        g = u.gain[:, None] * np.maximum(el - u.fsr_threshold_n, 0.0) ** u.fsr_exponent[:, None]
        return u.offset[:, None] + (u.adc_max - u.offset[:, None]) * g / (1 + g)


class _ShareModel:
    """:func:`load_shares` with the geometry precomputed."""

    def __init__(self, positions: np.ndarray) -> None:
        self.c = positions.shape[0]
        self.centroid = positions.mean(axis=0)
        rel = positions - self.centroid
        self.proj = np.linalg.pinv(rel.T @ rel) @ rel.T if self.c > 1 else None

    def __call__(self, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        if self.proj is None:
            return np.ones((cx.size, 1))
        cop = np.column_stack((cx - self.centroid[0], cy - self.centroid[1]))
        w = 1.0 / self.c + cop @ self.proj
        np.maximum(w, 0.0, out=w)
        return w / w.sum(axis=1, keepdims=True)
