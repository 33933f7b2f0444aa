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
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from knotsense.errors import ConfigurationError, ProtocolError, SimulationError
from knotsense.firmware_sim import framing
from knotsense.firmware_sim.config import FaultConfig, SimConfig
from knotsense.firmware_sim.firmware import (
    Nvm,
    SampleChunk,
    Sampler,
    StuckDetector,
    ThresholdDetector,
)
from knotsense.firmware_sim.physics import (
    LOAD_CELL_BITS,
    SensorFrontEnd,
    UnitParams,
    make_unit,
    unit_seed,
)
from knotsense.firmware_sim.scenario import GroundTruth, Scenario, load_scenario
from knotsense.protocol import (
    PROTOCOL_MINOR,
    PROTOCOL_VERSION,
    BlockFlags,
    CalibrationChunk,
    ChannelInfo,
    Command,
    CommitCalibration,
    DecodedFrame,
    DeviceEvent,
    DeviceInfo,
    Encoding,
    EventCode,
    Framing,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    Message,
    PacketDecoder,
    Ping,
    PingResult,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    ResetReason,
    Response,
    SampleBlock,
    SampleUnit,
    SensorKind,
    SetStreamConfig,
    StartStream,
    Status,
    StatusCode,
    StatusFlags,
    StopStream,
    StreamConfig,
    StreamDecoder,
    Tare,
    TareResult,
    WriteCalibration,
    WriteThresholds,
    build_frame,
    cobs,
    crc16,
    stuff,
)
from knotsense.protocol.commands import CALIBRATION_CAPACITY, ChannelWeight, Thresholds
from knotsense.protocol.frame import FRAME_OVERHEAD, MAX_ENCODED_SIZE

FIRMWARE_VERSION = (1, 4, 2)
HW_REVISION = 3
MODEL = {"load_cell": "KnotSense K1-LC", "fsr": "KnotSense K1-FSR"}
BOOT_S = 0.02
REBOOT_OFF_S = 0.25
CMD_LATENCY_S = 0.0005
NVM_LATENCY_S = 0.015
REBOOT_DELAY_S = 0.010
STATUS_PERIOD_S = 1.0
MAX_BLOCK_S = 0.1
DEFAULT_TARE_SAMPLES = 16
MAX_TARE_SAMPLES = 4096
_BLOCK_OVERHEAD = FRAME_OVERHEAD + SampleBlock.HEAD_SIZE

# Order of items that leave at the same instant.
_PRIO_RESPONSE, _PRIO_INFO, _PRIO_EVENT, _PRIO_STATUS, _PRIO_CONFIG, _PRIO_BLOCK = range(6)


@dataclass
class InjectedFaults:
    """Counters of every fault the simulator injected, to compare with what the host saw.

    Attributes:
        frames_corrupted: frames hit by bit errors or a burst (each costs one CRC error).
        bit_flips: bits flipped in total.
        bursts: bursts started.
        frames_dropped: frames lost on the link by the ``drop`` fault.
        frames_duplicated: frames delivered twice.
        frames_lost_link_down: frames sent while the link was down.
        link_drops: link-down windows entered.
        host_bytes_ignored: host bytes that arrived while the link was down or the device off.
        overflow_drops: frames the device dropped because its transmit buffer was full.
        overflow_events: BUFFER_OVERFLOW events sent.
        reboots: reboots (faults and commands).
        sensor_faults: SENSOR_FAULT events (stuck channels detected).
        saturated_blocks: sample blocks sent with a saturated_mask bit set.
        oversize_frames: frames longer than ``max_frame_size`` (a message that cannot shrink).
    """

    frames_corrupted: int = 0
    bit_flips: int = 0
    bursts: int = 0
    frames_dropped: int = 0
    frames_duplicated: int = 0
    frames_lost_link_down: int = 0
    link_drops: int = 0
    host_bytes_ignored: int = 0
    overflow_drops: int = 0
    overflow_events: int = 0
    reboots: int = 0
    sensor_faults: int = 0
    saturated_blocks: int = 0
    oversize_frames: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def frames_lost_total(self) -> int:
        """Frames the host can never decode: what its sequence gaps should add up to."""
        return (
            self.frames_corrupted
            + self.frames_dropped
            + self.frames_lost_link_down
            + self.overflow_drops
        )


@dataclass
class _Msg:
    time: float
    prio: int
    ctr: int
    build: Callable[[int, int], Message]
    """Builds the message from (frames_sent, frames_dropped) at the moment it is sent."""


@dataclass
class _Blocks:
    """A batch of sample blocks of one layout."""

    ctr: int
    times: np.ndarray
    t_first_us: np.ndarray
    sample_index: np.ndarray
    samples: np.ndarray
    saturated: np.ndarray
    fault: np.ndarray
    period_ns: int
    mask: int
    encoding: int
    flags: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.flags is None:
            self.flags = np.zeros(self.times.size, dtype=np.uint8)


@dataclass
class _Tare:
    command: Command
    mask: int
    n: int
    after: float
    sums: np.ndarray
    count: int = 0


class SimulatedDevice:
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
        self._msgs: list[_Msg] = []
        self._blocks: list[_Blocks] = []
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

    # --- public API -----------------------------------------------------------------

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

    def host_write(self, data: bytes) -> None:
        """Bytes from the host at the current host time: a COBS stream or ONE frame (PACKET)."""
        if not data:
            return
        if not self._alive or not self.link_up:
            self.injected.host_bytes_ignored += len(data)
            return
        if self._framing is Framing.PACKET:
            dec = self._rx
            before = dec.stats.message_errors
            frames = dec.feed(data)
            if dec.stats.message_errors > before:
                self._bad_command(bytes(data))
            for f in frames:
                self._on_frame(f)
            return
        data = bytes(data)
        start = 0
        while start < len(data):
            z = data.find(0, start)
            if z < 0:
                piece = data[start:]
                self._rx_frame = (self._rx_frame + piece)[: MAX_ENCODED_SIZE + 1]
                self._rx.feed(piece)
                break
            piece = data[start : z + 1]
            raw = self._rx_frame + piece[:-1]
            self._rx_frame = b""
            before = self._rx.stats.message_errors
            frames = self._rx.feed(piece)
            if self._rx.stats.message_errors > before:
                # Unreadable COBS was already counted by the decoder.
                with contextlib.suppress(ProtocolError):
                    self._bad_command(cobs.decode(raw))
            for f in frames:
                self._on_frame(f)
            start = z + 1

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

    # --- boot and reboot -------------------------------------------------------------

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
        self._tare: _Tare | None = None
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
        self._queue(t_ready, _PRIO_INFO, info)
        self._queue(
            t_ready,
            _PRIO_INFO,
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

    def _start_sampler(self, h: float) -> None:
        self._generation += 1
        self._sampler = Sampler(
            self.front,
            self.unit,
            self.config.seed,
            self._generation,
            self._rate,
            self._h_boot,
            self.ratio,
            (h - self._h_boot) * self.ratio,
            self.faults.stuck,
            self.faults.saturate,
        )
        self._stuck = StuckDetector(
            self.unit.channels, max(16, self._rate // 4), self.unit.adc_min, self.unit.adc_max
        )

    # --- output queue ----------------------------------------------------------------

    def _queue(self, time: float, prio: int, message: Message) -> None:
        self._ctr += 1
        self._msgs.append(_Msg(time, prio, self._ctr, lambda _s, _d, m=message: m))

    def _queue_build(self, time: float, prio: int, build: Callable[[int, int], Message]) -> None:
        self._ctr += 1
        self._msgs.append(_Msg(time, prio, self._ctr, build))

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
        self._queue_build(h, _PRIO_STATUS, lambda s, d, h=h: self._status(h, s, d))

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

    # --- sampling and firmware --------------------------------------------------------

    def _advance(self, h: float) -> None:
        if not self._alive:
            return
        chunk = self._sampler.take_until(h)
        if chunk is None:
            return
        raw = chunk.raw
        stuck, starts = self._stuck.process(raw)
        for j, ch in starts:
            self._sensor_faults += 1
            self.injected.sensor_faults += 1
            t = float(chunk.t_host[j])
            self._queue(
                t,
                _PRIO_EVENT,
                DeviceEvent(
                    int(chunk.t_us[j]) & 0xFFFFFFFF, EventCode.SENSOR_FAULT, ch, int(raw[j, ch])
                ),
            )
        for j, event in self._detector.process(raw, chunk.t_us):
            self._queue(float(chunk.t_host[j]), _PRIO_EVENT, event)
        if self._tare is not None:
            self._tare_samples(chunk)
        if self._streaming:
            self._packetise(chunk, stuck)

    def _tare_samples(self, chunk: SampleChunk) -> None:
        tare = self._tare
        assert tare is not None
        use = np.flatnonzero(chunk.t_host > tare.after)[: tare.n - tare.count]
        if use.size == 0:
            return
        tare.sums += chunk.raw[use].sum(axis=0)
        tare.count += use.size
        if tare.count < tare.n:
            return
        self._tare = None
        zeros_all = np.floor_divide(tare.sums + tare.n // 2, tare.n)
        th = self.nvm.thresholds
        assert th is not None
        channels = list(th.channels)
        zeros = []
        for ch in range(self.unit.channels):
            if tare.mask >> ch & 1:
                channels[ch] = ChannelWeight(int(zeros_all[ch]), channels[ch].weight_q16)
                zeros.append(int(zeros_all[ch]))
        self._set_thresholds(_replace_channels(th, tuple(channels)))
        t = float(chunk.t_host[use[-1]]) + NVM_LATENCY_S
        result = TareResult(tare.mask, tuple(zeros))
        self._queue(t, _PRIO_RESPONSE, Response.ok(tare.command, result))

    def _samples_per_block(self) -> int:
        c = self._mask.bit_count()
        fit = SampleBlock.max_samples(self.config.max_frame_size, c, self._encoding)
        return max(1, min(fit, max(1, int(self._rate * MAX_BLOCK_S))))

    def _packetise(self, chunk: SampleChunk, stuck: np.ndarray) -> None:
        cols = [ch for ch in range(self.unit.channels) if self._mask >> ch & 1]
        raw = chunk.raw if len(cols) == self.unit.channels else chunk.raw[:, cols]
        n = raw.shape[0]
        weights = (1 << np.array(cols, dtype=np.int64))[None, :]
        sat = np.zeros(n, dtype=np.int64)
        if raw.max() >= self.unit.adc_max or raw.min() <= self.unit.adc_min:
            at_limit = (raw >= self.unit.adc_max) | (raw <= self.unit.adc_min)
            sat = (at_limit * weights).sum(axis=1)
        fault = np.zeros(n, dtype=np.int64)
        if stuck.any():
            fault = (stuck[:, cols] * weights).sum(axis=1)
        parts = (raw, chunk.t_us, chunk.t_host, sat, fault)
        if self._partial:
            parts = tuple(np.concatenate((a, b)) for a, b in zip(self._partial, parts, strict=True))
        spb = self._samples_per_block()
        n = parts[0].shape[0]
        nb = n // spb
        used = nb * spb
        self._partial = [p[used:] for p in parts] if used < n else []
        if nb:
            self._emit_blocks(tuple(p[:used] for p in parts), nb, spb)

    def _emit_blocks(self, parts: tuple[np.ndarray, ...], nb: int, spb: int) -> None:
        raw, t_us, t_host, sat, fault = parts
        c = raw.shape[1]
        self._ctr += 1
        batch = _Blocks(
            ctr=self._ctr,
            times=t_host.reshape(nb, spb)[:, -1].copy(),
            t_first_us=t_us.reshape(nb, spb)[:, 0].copy(),
            sample_index=self._stream_index + spb * np.arange(nb, dtype=np.int64),
            samples=raw.reshape(nb, spb, c),
            saturated=np.bitwise_or.reduce(sat.reshape(nb, spb), axis=1),
            fault=np.bitwise_or.reduce(fault.reshape(nb, spb), axis=1),
            period_ns=round(1e9 / self._rate),
            mask=self._mask,
            encoding=int(self._encoding),
        )
        self._stream_index += nb * spb
        self._ctr += nb
        self._blocks.append(batch)

    def _flush_partial(self) -> None:
        if self._partial and self._partial[0].shape[0]:
            n = self._partial[0].shape[0]
            self._emit_blocks(tuple(self._partial), 1, n)
        self._partial = []

    # --- commands --------------------------------------------------------------------

    def _bad_command(self, frame: bytes) -> None:
        """Answer a command frame whose arguments did not decode (CRC was good)."""
        if len(frame) < FRAME_OVERHEAD or frame[1] != Command.TYPE:
            return
        payload = frame[6:-2]
        t = self._now + CMD_LATENCY_S
        if len(payload) >= 3:
            req = int.from_bytes(payload[0:2], "little")
            resp = Response(req, payload[2], StatusCode.MALFORMED)  # docs/protocol.md 10.3
        else:
            resp = Response.error(None, StatusCode.MALFORMED)
        self._queue(t, _PRIO_RESPONSE, resp)

    def _on_frame(self, frame: DecodedFrame) -> None:
        msg = frame.message
        if not isinstance(msg, Command):
            return
        body = msg.body
        now = self._now
        t = now + CMD_LATENCY_S

        def reply(status: StatusCode | None = None, result: object = None, at: float = t) -> None:
            resp = Response.ok(msg, result) if status is None else Response.error(msg, status)
            self._queue(at, _PRIO_RESPONSE, resp)

        if isinstance(body, Ping):
            reply(result=PingResult(body.data))
        elif isinstance(body, GetInfo):
            reply(result=self.info)
        elif isinstance(body, GetStatus):
            self._queue_build(
                t,
                _PRIO_RESPONSE,
                lambda s, d: Response.ok(msg, self._status(t, s, d)),
            )
        elif isinstance(body, GetStreamConfig):
            reply(result=self._stream_config(self._streaming))
        elif isinstance(body, StartStream):
            if not self._streaming:
                self._streaming = True
                self._stream_index = 0
                self._partial = []
                self._queue(t, _PRIO_CONFIG, self._stream_config(True))
            reply(result=self._stream_config(True))
        elif isinstance(body, StopStream):
            if self._streaming:
                self._flush_partial()
                self._streaming = False
            reply()
        elif isinstance(body, SetStreamConfig):
            reply(*self._set_stream_config(body))
        elif isinstance(body, Tare):
            status = self._start_tare(msg, body)
            if status is not None:
                reply(status)
        elif isinstance(body, ReadCalibration):
            reply(*self._read_calibration(body))
        elif isinstance(body, WriteCalibration):
            reply(*self._write_calibration(body))
        elif isinstance(body, CommitCalibration):
            status = self._commit_calibration(body)
            reply(status, at=now + NVM_LATENCY_S)
        elif isinstance(body, ReadThresholds):
            reply(result=self.nvm.thresholds)
        elif isinstance(body, WriteThresholds):
            status = self._check_thresholds(body.thresholds)
            if status is None:
                self._set_thresholds(body.thresholds)
            reply(status, result=self.nvm.thresholds, at=now + NVM_LATENCY_S)
        elif isinstance(body, Reboot):
            reply()
            self._reboot_cmd = t + REBOOT_DELAY_S
        else:
            reply(StatusCode.UNKNOWN_COMMAND)

    def _stream_config(self, streaming: bool) -> StreamConfig:
        return StreamConfig(
            self._rate,
            self._mask,
            self._encoding,
            round(1e9 / self._rate),
            self._samples_per_block(),
            streaming,
            self.config.max_frame_size,
        )

    def _set_stream_config(self, body: SetStreamConfig) -> tuple[StatusCode | None, object]:
        if self._streaming:
            return StatusCode.INVALID_STATE, None
        if body.channel_mask == 0 or body.channel_mask >> self.unit.channels:
            return StatusCode.BAD_ARGUMENT, None
        if int(body.encoding) not in (2, 3, 4):
            return StatusCode.BAD_ARGUMENT, None
        if body.rate_hz not in self.unit.sample_rates:
            return StatusCode.UNSUPPORTED, None
        if 8 * int(body.encoding) < self.unit.adc_bits:
            return StatusCode.UNSUPPORTED, None
        self._mask = body.channel_mask
        self._encoding = Encoding(int(body.encoding))
        if body.rate_hz != self._rate:
            self._rate = body.rate_hz
            self._start_sampler(self._now)
        return None, self._stream_config(False)

    def _start_tare(self, msg: Command, body: Tare) -> StatusCode | None:
        """Start averaging; the answer comes when the samples are in (None: started)."""
        if self._tare is not None:
            return StatusCode.INVALID_STATE
        mask = body.channel_mask or (1 << self.unit.channels) - 1
        if mask >> self.unit.channels:
            return StatusCode.BAD_ARGUMENT
        n = body.n_samples or DEFAULT_TARE_SAMPLES
        if n > MAX_TARE_SAMPLES:
            return StatusCode.BAD_ARGUMENT
        self._tare = _Tare(msg, mask, n, self._now, np.zeros(self.unit.channels, np.int64))
        return None

    def _read_calibration(self, body: ReadCalibration) -> tuple[StatusCode | None, object]:
        blob = self.nvm.calibration
        if body.offset > len(blob):
            return StatusCode.BAD_ARGUMENT, None
        room = self.config.max_frame_size - FRAME_OVERHEAD - 4 - CalibrationChunk.LAYOUT.size
        n = max(0, min(body.max_length, len(blob) - body.offset, room))
        data = blob[body.offset : body.offset + n]
        return None, CalibrationChunk(self.nvm.calibration_id, len(blob), body.offset, data)

    def _write_calibration(self, body: WriteCalibration) -> tuple[StatusCode | None, object]:
        total = body.total_length
        if not 0 < total <= CALIBRATION_CAPACITY or body.offset + len(body.data) > total:
            return StatusCode.BAD_ARGUMENT, None
        if self._staging is None or len(self._staging) != total:
            self._staging = bytearray(total)
            self._staged = np.zeros(total, dtype=bool)
        self._staging[body.offset : body.offset + len(body.data)] = body.data
        assert self._staged is not None
        self._staged[body.offset : body.offset + len(body.data)] = True
        return None, None

    def _commit_calibration(self, body: CommitCalibration) -> StatusCode | None:
        if body.calibration_id == 0:
            return StatusCode.BAD_ARGUMENT
        if self._staging is None or self._staged is None:
            return StatusCode.INVALID_STATE
        if body.total_length != len(self._staging) or not self._staged.all():
            return StatusCode.INVALID_STATE
        if crc16(bytes(self._staging)) != body.crc:
            return StatusCode.CHECKSUM_MISMATCH
        self.nvm.calibration = bytes(self._staging)
        self.nvm.calibration_id = body.calibration_id
        self.nvm.commit()
        self._staging = self._staged = None
        return None

    def _check_thresholds(self, th: Thresholds) -> StatusCode | None:
        if len(th.channels) != self.unit.channels:
            return StatusCode.BAD_ARGUMENT
        if th.release_off > th.release_on or th.flags & ~0x03:
            return StatusCode.BAD_ARGUMENT
        return None

    def _set_thresholds(self, th: Thresholds) -> None:
        self.nvm.thresholds = th
        self.nvm.commit()
        self._detector = ThresholdDetector(th)

    # --- release: sequence numbers, tx buffer, link faults, framing ------------------

    def _link_up_at(self, h: float) -> bool:
        return not any(w.contains(h) for w in self.faults.link_drops)

    def _release(self, t: float, out: list[bytes]) -> None:
        msgs = [m for m in self._msgs if m.time <= t]
        if not msgs and not self._blocks:
            return
        self._msgs = [m for m in self._msgs if m.time > t]
        batches, self._blocks = self._blocks, []
        # Order every unit (message or block row) by (time, priority, creation).
        times = [np.array([m.time for m in msgs])]
        prios = [np.array([m.prio for m in msgs], dtype=np.int64)]
        ctrs = [np.array([m.ctr for m in msgs], dtype=np.int64)]
        src = [np.full(len(msgs), -1, dtype=np.int64)]
        row = [np.arange(len(msgs), dtype=np.int64)]
        for i, b in enumerate(batches):
            nb = b.times.size
            times.append(b.times)
            prios.append(np.full(nb, _PRIO_BLOCK, dtype=np.int64))
            ctrs.append(b.ctr + np.arange(nb, dtype=np.int64))
            src.append(np.full(nb, i, dtype=np.int64))
            row.append(np.arange(nb, dtype=np.int64))
        t_all = np.concatenate(times)
        order = np.lexsort((np.concatenate(ctrs), np.concatenate(prios), t_all))
        src_o = np.concatenate(src)[order]
        row_o = np.concatenate(row)[order]
        t_o = t_all[order]
        f = self.faults
        slow = f.slow_reader_bps > 0
        if not (f.link_faults or f.link_drops or slow):
            self._release_fast(msgs, batches, src_o, row_o, out)
            return
        self._release_slow(msgs, batches, src_o, row_o, t_o, out)

    def _frame_msg(self, message: Message, seq: int) -> bytes:
        frame = build_frame(message.TYPE, seq, message.encode())
        if len(frame) > self.config.max_frame_size:
            self.injected.oversize_frames += 1
        return frame

    def _release_fast(
        self,
        msgs: list[_Msg],
        batches: list[_Blocks],
        src_o: np.ndarray,
        row_o: np.ndarray,
        out: list[bytes],
    ) -> None:
        n = src_o.size
        seqs = (self._seq + np.arange(n)) & 0xFFFF
        sent0 = self._frames_sent
        stuffed: list[np.ndarray] = []
        for i, b in enumerate(batches):
            pos = np.flatnonzero(src_o == i)
            frames = framing.sample_block_frames(
                seqs[pos],
                b.t_first_us,
                b.sample_index,
                b.period_ns,
                b.mask,
                b.encoding,
                b.samples,
                b.flags,
                b.saturated,
                b.fault,
            )
            self.injected.saturated_blocks += int(np.count_nonzero(b.saturated))
            if self._framing is Framing.STREAM:
                frames = framing.stuff_rows(frames)
            stuffed.append(frames)
        self._seq = (self._seq + n) & 0xFFFF
        self._frames_sent += n
        self._frames_out += n
        pieces: list[bytes] = []
        src_l = src_o.tolist()
        k = 0
        while k < n:
            s = src_l[k]
            if s < 0:
                m = msgs[int(row_o[k])]
                frame = self._frame_msg(m.build(sent0 + k, self._frames_dropped), int(seqs[k]))
                pieces.append(stuff(frame) if self._framing is Framing.STREAM else frame)
                k += 1
                continue
            j = k
            while j < n and src_l[j] == s:
                j += 1
            rows = stuffed[s][int(row_o[k]) : int(row_o[j - 1]) + 1]
            if self._framing is Framing.STREAM:
                pieces.append(rows.tobytes())
            else:
                pieces.extend(r.tobytes() for r in rows)
            k = j
        if self._framing is Framing.STREAM:
            if pieces:
                out.append(b"".join(pieces))
        else:
            out.extend(pieces)

    def _release_slow(
        self,
        msgs: list[_Msg],
        batches: list[_Blocks],
        src_o: np.ndarray,
        row_o: np.ndarray,
        t_o: np.ndarray,
        out: list[bytes],
    ) -> None:
        """One frame at a time: transmit buffer (slow reader), then the link faults."""
        f = self.faults
        stream = self._framing is Framing.STREAM
        cap = f.tx_buffer
        for s, r, t in zip(src_o.tolist(), row_o.tolist(), t_o.tolist(), strict=True):
            block = batches[s] if s >= 0 else None
            if block is not None:
                size = _BLOCK_OVERHEAD + block.samples[r].size * block.encoding
            else:
                size = None
            slow = f.slow_reader_bps > 0 and f.slow_reader is not None and f.slow_reader.contains(t)
            if slow:
                self._tx_level = max(0.0, self._tx_level - f.slow_reader_bps * (t - self._tx_time))
            else:
                self._tx_level = 0.0  # a fast reader empties the buffer at once
            self._tx_time = t
            if self._overflow_pending:
                self._report_overflow(t, stream, cap, out)
            if block is not None:
                flags = int(block.flags[r])
                if self._overflow_flag and not self._overflow_pending:
                    flags |= BlockFlags.OVERFLOW_BEFORE
                frame = framing.sample_block_frames(
                    np.array([self._seq]),
                    block.t_first_us[r : r + 1],
                    block.sample_index[r : r + 1],
                    block.period_ns,
                    block.mask,
                    block.encoding,
                    block.samples[r : r + 1],
                    flags,
                    block.saturated[r : r + 1],
                    block.fault[r : r + 1],
                )[0].tobytes()
                assert size == len(frame)
            else:
                m = msgs[r]
                frame = self._frame_msg(m.build(self._frames_sent, self._frames_dropped), self._seq)
            wire = len(frame) + (2 if stream else 0)
            if slow and self._tx_level + wire > cap:
                # Transmit buffer full: the frame is numbered, then lost inside the device.
                self._seq = (self._seq + 1) & 0xFFFF
                self._frames_dropped += 1
                self._overflow_pending += 1
                self.injected.overflow_drops += 1
                self._frames_out += 1
                self._draw_link_faults()
                continue
            if slow:
                self._tx_level += wire
            if block is not None:
                if self._overflow_flag and not self._overflow_pending:
                    self._overflow_flag = False
                if block.saturated[r]:
                    self.injected.saturated_blocks += 1
            self._send(frame, t, out)

    def _report_overflow(self, t: float, stream: bool, cap: int, out: list[bytes]) -> None:
        """Send BUFFER_OVERFLOW (value: frames lost) as soon as the buffer has room for it."""
        event = DeviceEvent(
            self.device_time_us(t) & 0xFFFFFFFF,
            EventCode.BUFFER_OVERFLOW,
            0xFF,
            self._overflow_pending,
        )
        frame = self._frame_msg(event, self._seq)
        size = len(frame) + (2 if stream else 0)
        if self._tx_level + size > cap:
            return
        self._tx_level += size
        self._overflow_pending = 0
        self._overflow_flag = True
        self.injected.overflow_events += 1
        self._send(frame, t, out)

    def _draw_link_faults(self) -> tuple[float, float, float, float]:
        f = self.faults
        return (
            float(self._rng_drop.random()) if f.drop else 1.0,
            float(self._rng_dup.random()) if f.dup else 1.0,
            float(self._rng_bits.random()) if f.bit_errors else 1.0,
            float(self._rng_burst.random()) if f.burst else 1.0,
        )

    def _send(self, frame: bytes, t: float, out: list[bytes]) -> None:
        """Number one frame out of the device and carry it over the faulty link."""
        f = self.faults
        self._seq = (self._seq + 1) & 0xFFFF
        self._frames_sent += 1
        index = self._frames_out
        self._frames_out += 1
        u_drop, u_dup, u_bits, u_burst = self._draw_link_faults()
        if not self._link_up_at(t):
            self.injected.frames_lost_link_down += 1
            return
        corrupt = 0
        if self._burst_left == 0 and u_burst < f.burst:
            self._burst_left = f.burst_length
            self.injected.bursts += 1
        if self._burst_left:
            self._burst_left -= 1
            corrupt = 8
        bits = len(frame) * 8
        if not corrupt and f.bit_errors and u_bits < -math.expm1(bits * math.log1p(-f.bit_errors)):
            corrupt = 1
        if u_drop < f.drop:
            self.injected.frames_dropped += 1
            return
        if corrupt:
            frame = self._corrupt(frame, corrupt, index)
        copies = 2 if u_dup < f.dup else 1
        if copies == 2 and not corrupt:
            self.injected.frames_duplicated += 1
        elif copies == 2:
            copies = 1  # a corrupted duplicate would count twice; keep the count exact
        data = stuff(frame) if self._framing is Framing.STREAM else frame
        for _ in range(copies):
            out.append(data)

    def _corrupt(self, frame: bytes, min_bits: int, index: int) -> bytes:
        """Flip bits until the CRC fails (always, at once, for up to 3 bits)."""
        rng = np.random.default_rng([self.config.seed, unit_seed(self.config.serial), 0xB1, index])
        f = self.faults
        n = max(min_bits, 1 + int(rng.binomial(len(frame) * 8 - 1, f.bit_errors or 0.0)))
        buf = bytearray(frame)
        while True:
            for pos in rng.choice(len(buf) * 8, size=min(n, len(buf) * 8), replace=False):
                buf[pos // 8] ^= 1 << (pos % 8)
            self.injected.bit_flips += n
            if crc16(bytes(buf)) != 0:
                break
            n = 1
        self.injected.frames_corrupted += 1
        return bytes(buf)


def _replace_channels(th: Thresholds, channels: tuple[ChannelWeight, ...]) -> Thresholds:
    return Thresholds(
        th.flags,
        th.debounce_ms,
        th.hold_s,
        th.release_on,
        th.release_off,
        th.overpressure_on,
        channels,
    )
