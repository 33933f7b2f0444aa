"""Render a scenario through one unit's silicone and sensors, without the wire.

What the calibration and detector tests use when they need many samples fast:
the same :class:`~knotsense.firmware_sim.physics.SensorFrontEnd` the device
samples, driven uniformly in host time, with no firmware, framing or link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.physics import SensorFrontEnd, UnitParams, make_unit, unit_seed
from knotsense.firmware_sim.scenario import Scenario, load_scenario


@dataclass(frozen=True, eq=False)
class Rendered:
    """A scenario rendered through one unit, uniform in host time.

    Attributes:
        t: host times (s), shape (n,).
        force: true applied force per channel (N), shape (n, C).
        raw: raw ADC counts per channel, int64, shape (n, C).
        total: true applied total force (N), shape (n,) -- what a reference gauge reads.
        unit: the unit's individual parameters.
        rate_hz: the sample rate.
        temperature_c: sensor temperature at the end.
    """

    t: np.ndarray
    force: np.ndarray
    raw: np.ndarray
    total: np.ndarray
    unit: UnitParams
    rate_hz: float
    scenario: str
    seed: int
    temperature_c: float


def render(
    scenario: Scenario | str,
    seed: int = 0,
    rate_hz: float | None = None,
    channels: int | None = None,
    sensor: str | None = None,
    serial_number: str | None = None,
    duration_s: float | None = None,
    block_s: float = 1.0,
) -> Rendered:
    """The scenario (a :class:`Scenario`, a shipped name or a file) through one unit.

    Samples are uniform in host time at *rate_hz* (default: the scenario's);
    see :class:`Rendered` for the fields. *block_s* is how much is evaluated
    per numpy call (it does not change the result).
    """
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    scenario = scenario.with_overrides(sensor=sensor, channels=channels)
    unit = make_unit(
        serial_number or f"KS-{seed:06d}",
        scenario.sensor,
        scenario.channels,
        drift_scale=scenario.drift_scale,
    )
    rate = float(rate_hz or scenario.rate_hz)
    if not 0 < rate <= 100_000:
        raise ConfigurationError(f"rate_hz must be 0..100000, got {rate}")
    duration = scenario.duration_s if duration_s is None else duration_s
    n = round(duration * rate)
    front = SensorFrontEnd(unit, scenario, scenario.profile(seed))
    t = np.arange(n) / rate
    rng = np.random.default_rng([seed, unit_seed(unit.serial), 0x4E0D])
    force = np.empty((n, unit.channels))
    raw = np.empty((n, unit.channels), np.int64)
    total = np.empty(n)
    step = max(1, int(rate * block_s))
    for a in range(0, n, step):
        b = min(n, a + step)
        noise = rng.standard_normal((b - a, unit.channels), dtype=np.float32)
        f, raw[a:b], tot = front.process(t[a:b], noise, rate)
        force[a:b], total[a:b] = f, tot
    return Rendered(t, force, raw, total, unit, rate, scenario.name, seed, front.temperature_c)
