"""The simulated device: firmware, clock and link faults around the physics, on a virtual clock.

:class:`SimulatedDevice` is driven by its link: ``host_write`` hands it the
host's bytes at the current host time and ``run_until(t)`` advances it to host
time *t*, returning what it sent meanwhile. No threads, no wall clock.

Determinism: one :class:`SimConfig` fixes every byte. For the same sequence of
``host_write`` calls made at the same host times, the concatenation of what
``run_until`` returns up to a time T is identical however the calls to
``run_until`` split the interval (chunk boundaries of the returned list may
differ; for PACKET framing the list of packets is identical).

Timeline of one unit (host times are seconds since power-on):

* boot: at 0 (power-on) or after a reboot (0.25 s off): the device clock
  restarts at 0 and runs ``1 + ppm * 1e-6`` times the host clock; 20 ms later
  it sends DeviceInfo, a BOOT event (``arg`` = reset reason) and a Status,
  with sequence numbers starting at 0; the sampler starts; streaming is off.
* every second of device time: a Status (battery, temperature, counters).
* commands are executed at the host time they arrive and answered 0.5 ms
  later (NVM writes 15 ms; TARE when its samples are in; REBOOT answers, then
  reboots 10 ms later). START_STREAM answers with the StreamConfig and also
  sends it as a message of its own.
* while streaming, a SampleBlock leaves when its last sample is taken;
  blocks hold at most what fits ``max_frame_size`` and at most ~100 ms.

The firmware's parts live in modules named for them: command handling in
:mod:`~knotsense.firmware_sim.commands`, the sampling loop and packetiser in
:mod:`~knotsense.firmware_sim.streaming`, the outbox in
:mod:`~knotsense.firmware_sim.outbox`, the transmit path in
:mod:`~knotsense.firmware_sim.transmit`, link fault injection in
:mod:`~knotsense.firmware_sim.faults`, the NVM in :mod:`~knotsense.firmware_sim.nvm`,
the sampler in :mod:`~knotsense.firmware_sim.sampler` and the on-device
detectors in :mod:`~knotsense.firmware_sim.detector`. This module holds the
unit itself: power-on, the clock, reboots, periodic Status, the battery.
"""

from __future__ import annotations

import math

import numpy as np

from knotsense.errors import ConfigurationError, SimulationError
from knotsense.firmware_sim.commands import CommandHandlers, PendingTare
from knotsense.firmware_sim.config import FaultConfig, SimConfig
from knotsense.firmware_sim.detector import ThresholdDetector
from knotsense.firmware_sim.faults import InjectedFaults
from knotsense.firmware_sim.nvm import Nvm
from knotsense.firmware_sim.outbox import PRIO_INFO, PRIO_STATUS, BlockBatch, QueuedMessage
from knotsense.firmware_sim.physics import (
    LOAD_CELL_BITS,
    SensorFrontEnd,
    UnitParams,
    make_unit,
    unit_seed,
)
from knotsense.firmware_sim.scenario import GroundTruth, Scenario, load_scenario
from knotsense.firmware_sim.transmit import Transmitter
from knotsense.protocol import (
    PROTOCOL_MINOR,
    PROTOCOL_VERSION,
    ChannelInfo,
    DeviceEvent,
    DeviceInfo,
    Encoding,
    EventCode,
    Framing,
    PacketDecoder,
    ResetReason,
    SampleUnit,
    SensorKind,
    Status,
    StatusFlags,
    StreamConfig,
    StreamDecoder,
)

__all__ = ["InjectedFaults", "SimulatedDevice"]

FIRMWARE_VERSION = (1, 4, 2)
HW_REVISION = 3
MODEL = {"load_cell": "KnotSense K1-LC", "fsr": "KnotSense K1-FSR"}
BOOT_S = 0.02
REBOOT_OFF_S = 0.25
STATUS_PERIOD_S = 1.0


class SimulatedDevice(CommandHandlers, Transmitter):
    """A simulated KnotSense unit; see the module docstring for its timeline."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        scenario = load_scenario(config.scenario)
        self.scenario: Scenario = scenario.with_overrides(
            sensor=config.sensor, channels=config.channels
        )
        self.faults: FaultConfig = scenario.faults.merged(config.faults)
        self.unit: UnitParams = make_unit(
            config.serial,
            self.scenario.sensor,
            self.scenario.channels,
            drift_scale=self.scenario.drift_scale,
        )
        rate = config.rate_hz or self.scenario.rate_hz
        if rate not in self.unit.sample_rates:
            raise ConfigurationError(
                f"rate {rate} Hz not supported by the {self.unit.sensor} unit "
                f"(rates: {', '.join(map(str, self.unit.sample_rates))})"
            )
        self._boot_rate = rate
        self.profile = self.scenario.profile(config.seed)
        self.front = SensorFrontEnd(self.unit, self.scenario, self.profile)
        self.ratio = 1.0 + self.unit.crystal_ppm * 1e-6
        self.nvm = Nvm(self.unit.channels, config.nvm_path, serial=config.serial)
        self.injected = InjectedFaults()
        self._framing = config.framing
        self._now = 0.0
        self._ctr = 0
        self._generation = 0
        self._msgs: list[QueuedMessage] = []
        self._blocks: list[BlockBatch] = []
        self._reboots = list(self.faults.reboots)
        self._reboot_cmd: float | None = None
        self._frames_out = 0
        self._burst_left = 0
        self._tx_level = 0.0
        self._tx_time = 0.0
        self._overflow_pending = 0
        self._overflow_flag = False
        rng_seed = [config.seed, unit_seed(config.serial)]
        self._rng_drop = np.random.default_rng([*rng_seed, 0xD0])
        self._rng_dup = np.random.default_rng([*rng_seed, 0xD1])
        self._rng_bits = np.random.default_rng([*rng_seed, 0xD2])
        self._rng_burst = np.random.default_rng([*rng_seed, 0xD3])
        self._battery_used = 0.0
        self._battery_t = 0.0
        self._alive = False
        self._boot_at: float | None = None
        self._boot(0.0, ResetReason.POWER_ON)

    @property
    def now(self) -> float:
        """Host-clock seconds since power-on (virtual)."""
        return self._now

    @property
    def info(self) -> DeviceInfo:
        """The DeviceInfo this unit sends (calibration id from NVM)."""
        u = self.unit
        kind = SensorKind.LOAD_CELL if u.sensor == "load_cell" else SensorKind.FSR
        return DeviceInfo(
            PROTOCOL_VERSION,
            PROTOCOL_MINOR,
            FIRMWARE_VERSION,
            HW_REVISION,
            u.adc_bits,
            SampleUnit.COUNTS,
            self.nvm.calibration_id,
            tuple(u.sample_rates),
            tuple(ChannelInfo(kind, float(x), float(y)) for x, y in u.positions_mm),
            self.config.serial,
            MODEL[u.sensor],
        )

    @property
    def link_up(self) -> bool:
        """False inside a ``link_drop`` window: output is lost, host writes are ignored."""
        return self._link_up_at(self._now)

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def stream_config(self) -> StreamConfig:
        return self._stream_config(self._streaming)

    def ground_truth(self) -> GroundTruth:
        """The scenario's ground truth for this seed (release threshold of the scenario)."""
        return self.scenario.ground_truth(seed=self.config.seed)

    def true_force(self, t: float | np.ndarray) -> np.ndarray:
        """True applied total force (N) at host time(s) *t*: what a reference gauge reads."""
        total, _, _ = self.profile.evaluate(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        return total

    def device_time_us(self, h: float | None = None) -> int:
        """The device clock (microseconds since boot, not wrapped) at host time *h*."""
        h = self._now if h is None else h
        return round((h - self._h_boot) * self.ratio * 1e6)

    def run_until(self, t: float) -> list[bytes]:
        """Advance to host time *t*; return the output in order.

        STREAM: byte chunks (COBS frames); PACKET: one unencoded frame per item.
        """
        if not math.isfinite(t):
            raise SimulationError(f"cannot run until {t}")
        if t < self._now - 1e-12:
            raise SimulationError(f"time runs forward: now {self._now:.6f}, asked {t:.6f}")
        out: list[bytes] = []
        while True:
            te, kind = self._next_timer(t)
            self._advance(te)
            if kind is None:
                break
            if kind == "status":
                self._queue_status(te)
                self._next_status += STATUS_PERIOD_S / self.ratio
            elif kind == "reboot":
                self._release(te, out)
                self._shutdown(te)
            elif kind == "boot":
                self._boot(te, self._boot_reason)
        self._release(t, out)
        self._update_battery(t)
        self.injected.link_drops += sum(
            1 for w in self.faults.link_drops if self._now < w.start <= t or (w.start == 0 == t)
        )
        self._now = t
        return out

    def _boot(self, h: float, reason: ResetReason) -> None:
        self._alive = True
        self._boot_at = None
        self._h_boot = h
        self._seq = 0
        self._reset_reason = reason
        self._rx: StreamDecoder | PacketDecoder = (
            StreamDecoder() if self._framing is Framing.STREAM else PacketDecoder()
        )
        self._rx_frame = b""
        self._streaming = False
        self._rate = self._boot_rate
        self._mask = (1 << self.unit.channels) - 1
        self._encoding = Encoding.INT24 if self.unit.adc_bits == LOAD_CELL_BITS else Encoding.INT16
        self._stream_index = 0
        self._partial: list[tuple[np.ndarray, ...]] = []
        self._tare: PendingTare | None = None
        self._staging: bytearray | None = None
        self._staged: np.ndarray | None = None
        self._frames_sent = 0
        self._frames_dropped = 0
        self._sensor_faults = 0
        self._detector = ThresholdDetector(self.nvm.thresholds)  # type: ignore[arg-type]
        self._start_sampler(h + BOOT_S / self.ratio)
        t_ready = h + BOOT_S
        self._next_status = h + (BOOT_S + STATUS_PERIOD_S) / self.ratio
        info = self.info
        self._queue(t_ready, PRIO_INFO, info)
        self._queue(
            t_ready,
            PRIO_INFO,
            DeviceEvent(self.device_time_us(t_ready) & 0xFFFFFFFF, EventCode.BOOT, int(reason), 0),
        )
        self._queue_status(t_ready)

    def _shutdown(self, h: float) -> None:
        """Die at host time *h* (pending output is lost) and come back REBOOT_OFF_S later."""
        self.injected.reboots += 1
        self._alive = False
        self._msgs.clear()
        self._blocks.clear()
        self._reboots = [r for r in self._reboots if r > h]
        if self._reboot_cmd is not None and self._reboot_cmd <= h:
            self._boot_reason = ResetReason.SOFTWARE
            self._reboot_cmd = None
        else:
            self._boot_reason = ResetReason.WATCHDOG
        self._boot_at = h + REBOOT_OFF_S

    def _next_timer(self, t: float) -> tuple[float, str | None]:
        candidates: list[tuple[float, str]] = []
        if self._alive:
            candidates.append((self._next_status, "status"))
            if self._reboots:
                candidates.append((self._reboots[0], "reboot"))
            if self._reboot_cmd is not None:
                candidates.append((self._reboot_cmd, "reboot"))
        elif self._boot_at is not None:
            candidates.append((self._boot_at, "boot"))
        if not candidates:
            return t, None
        te, kind = min(candidates)
        return (te, kind) if te <= t else (t, None)

    def _status(self, h: float, sent: int, dropped: int) -> Status:
        flags = StatusFlags.NONE
        if self._streaming:
            flags |= StatusFlags.STREAMING
        usb = self._framing is Framing.STREAM
        pct = self._battery_pct(h)
        if usb:
            flags |= StatusFlags.USB_POWER
            if pct < 100:
                flags |= StatusFlags.CHARGING
        if self.nvm.calibration_id:
            flags |= StatusFlags.CALIBRATED
        d_us = self.device_time_us(h)
        rx = self._rx.stats
        return Status(
            d_us & 0xFFFFFFFF,
            d_us // 1_000_000,
            round(3300 + 900 * (pct / 100) ** 0.7),
            int(pct),
            flags,
            round(self.front.temperature_c + 1.5, 2),
            self._reset_reason,
            sent,
            dropped,
            rx.crc_errors,
            rx.framing_errors + rx.oversize + rx.version_errors,
            self._sensor_faults,
        )

    def _queue_status(self, h: float) -> None:
        self._queue_build(h, PRIO_STATUS, lambda s, d, h=h: self._status(h, s, d))

    def _battery_pct(self, h: float) -> float:
        self._update_battery(h)
        return float(np.clip(self.unit.battery_pct0 - self._battery_used, 0.0, 100.0))

    def _update_battery(self, h: float) -> None:
        dt = max(0.0, h - self._battery_t)
        if self._framing is Framing.STREAM:
            rate = -10.0 / 3600  # charging from USB
        else:
            rate = (8.0 if self._streaming else 3.0) / 3600
        self._battery_used = float(np.clip(self._battery_used + rate * dt, -100.0, 100.0))
        self._battery_t = max(self._battery_t, h)
