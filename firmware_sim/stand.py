"""A scripted load stand for simulated units: the applied force follows commanded steps.

A motorised stand on a real bench presses the knob to a commanded force and
holds it. :class:`SimStand` is its simulated counterpart: you script the
steps first, then get a simulated unit (or a device URL for any transport)
whose applied force follows them, with the timeline known in advance::

    from knotsense.firmware_sim.stand import SimStand

    stand = SimStand(sensor="load_cell", channels=4)
    stand.rest(10).hold(104.5, 20).rest(10).hold(115.5, 20).rest(5)
    url = stand.url(tmp_path / "stand.toml", seed=3, serial="KS-000003", nvm=nvm_file)
    # sim://?scenario=/tmp/.../stand.toml&seed=3&serial=KS-000003&nvm=...
    for step in stand.schedule:          # StandStep(start_s, end_s, force_n, ramp_s)
        ...                              # host seconds since power-on ~ device seconds

* ``rest(s)`` unloads (ramps to 0 N) and waits; ``hold(force, s)`` ramps to
  *force* in ``ramp_s`` and holds it for *s* seconds (the ramp included);
  ``position_mm`` moves the load off centre.
* The stand presses through a rigid platen, so by default the simulated
  silicone is the ``soft`` preset (it settles in about a second); pass
  ``silicone="dense"`` to load through the knob itself.
* Same serial -> same unit (sensor figures); keep ``nvm=PATH`` to carry
  calibration and thresholds across devices and reboots, as a real unit does.
* :meth:`device` builds an in-process :class:`SimulatedDevice` directly (no
  wire); :meth:`url` gives a ``sim://`` (or ``sim+pty://``, ``sim+ble://``)
  URL for the host, the CLI or the hil suite.

The timeline runs on host seconds since power-on; the device clock starts
with it (plus a boot of 20 ms and at most +/-40 ppm), so a step's window in
device time is ``[start_s, end_s]`` to well within 0.1 s.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlencode

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.scenario import Scenario, ScenarioBuilder


@dataclass(frozen=True)
class StandStep:
    """One commanded step: the load ramps to ``force_n`` from ``start_s``, held to ``end_s``."""

    start_s: float
    end_s: float
    force_n: float
    ramp_s: float
    position_mm: tuple[float, float] = (0.0, 0.0)

    @property
    def settled_s(self) -> float:
        """When the ramp is over."""
        return self.start_s + self.ramp_s


class SimStand:
    """A scripted stand; see the module docstring."""

    def __init__(
        self,
        sensor: str = "load_cell",
        channels: int = 4,
        *,
        ramp_s: float = 3.0,
        silicone: str = "soft",
        rate_hz: int | None = None,
        name: str = "stand",
    ) -> None:
        self.sensor = sensor
        self.channels = channels
        self.ramp_s = ramp_s
        self.silicone = silicone
        self.rate_hz = rate_hz or (100 if sensor == "fsr" else None)
        self.name = name
        self._steps: list[StandStep] = []
        self._t = 0.0

    @property
    def schedule(self) -> tuple[StandStep, ...]:
        return tuple(self._steps)

    @property
    def duration_s(self) -> float:
        return self._t

    def hold(
        self, force_n: float, duration_s: float, position_mm: tuple[float, float] = (0.0, 0.0)
    ) -> Self:
        if duration_s <= 0 or force_n < 0:
            raise ConfigurationError("stand hold needs force >= 0 and duration > 0")
        ramp = min(self.ramp_s, duration_s)
        self._steps.append(
            StandStep(self._t, self._t + duration_s, float(force_n), ramp, tuple(position_mm))  # type: ignore[arg-type]
        )
        self._t += duration_s
        return self

    def rest(self, duration_s: float) -> Self:
        return self.hold(0.0, duration_s)

    def scenario(self) -> Scenario:
        if not self._steps:
            raise ConfigurationError("the stand has no steps")
        peak = max(s.force_n for s in self._steps)
        b = ScenarioBuilder(
            self.name,
            sensor=self.sensor,
            channels=self.channels,
            silicone=self.silicone,
            max_force_n=max(400.0, 1.5 * peak),
            release_threshold_n=max(1.0, 0.5 * peak),
            **({"rate_hz": self.rate_hz} if self.rate_hz else {}),
        )
        for s in self._steps:
            b.step(s.end_s - s.start_s, s.force_n, ramp_s=s.ramp_s, cop_mm=s.position_mm)
        return b.build()

    def toml(self) -> str:
        sc = self.scenario()
        lines = [
            f"name = {json.dumps(sc.name)}",
            f"sensor = {json.dumps(sc.sensor)}",
            f"channels = {sc.channels}",
            f"rate_hz = {sc.rate_hz}",
            f"silicone = {json.dumps(sc.silicone)}",
            f"max_force_n = {sc.max_force_n!r}",
            f"release_threshold_n = {sc.release_threshold_n!r}",
        ]
        for s in self._steps:
            lines += [
                "",
                "[[segment]]",
                'kind = "step"',
                f"duration = {s.end_s - s.start_s!r}",
                f"force = {s.force_n!r}",
                f"ramp_s = {s.ramp_s!r}",
                f"cop_mm = [{s.position_mm[0]!r}, {s.position_mm[1]!r}]",
            ]
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path | None = None) -> Path:
        """Write the stand's scenario file (a temporary one without *path*)."""
        if path is None:
            fd, name = tempfile.mkstemp(prefix="knotsense-stand-", suffix=".toml")
            import os

            os.close(fd)
            path = name
        p = Path(path)
        p.write_text(self.toml(), encoding="utf-8")
        return p

    def url(
        self,
        path: str | Path | None = None,
        *,
        seed: int = 0,
        serial: str | None = None,
        nvm: str | Path | None = None,
        scheme: str = "sim",
        speed: float | None = None,
    ) -> str:
        """A device URL whose unit is loaded by this stand (writes the scenario file)."""
        query: dict[str, str] = {"scenario": str(self.write(path)), "seed": str(seed)}
        if serial:
            query["serial"] = serial
        if nvm:
            query["nvm"] = str(nvm)
        if speed:
            query["speed"] = f"{speed:g}"
        return f"{scheme}://?" + urlencode(query)

    def device(
        self,
        path: str | Path | None = None,
        *,
        seed: int = 0,
        serial: str | None = None,
        nvm: str | Path | None = None,
    ):  # -> SimulatedDevice
        """An in-process simulated unit under this stand (no wire)."""
        from knotsense.firmware_sim.config import SimConfig
        from knotsense.firmware_sim.device import SimulatedDevice

        return SimulatedDevice(
            SimConfig.from_url(self.url(path, seed=seed, serial=serial, nvm=nvm))
        )
