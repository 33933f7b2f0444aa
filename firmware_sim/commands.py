"""Command handling of the simulated firmware: what the device does with a host frame.

:meth:`CommandHandlers.host_write` takes the host's bytes (a COBS stream, or
one frame per packet), decodes the commands and executes each at the host
time it arrives. Answers leave :data:`CMD_LATENCY_S` later (NVM writes
:data:`NVM_LATENCY_S`; TARE when its samples are in; REBOOT answers, then
reboots :data:`REBOOT_DELAY_S` later). A frame with a good CRC whose
arguments do not decode is answered MALFORMED (docs/protocol.md 10.3).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from knotsense.errors import ProtocolError
from knotsense.firmware_sim.detector import ThresholdDetector
from knotsense.firmware_sim.faults import InjectedFaults
from knotsense.firmware_sim.nvm import Nvm
from knotsense.firmware_sim.outbox import PRIO_CONFIG, PRIO_RESPONSE
from knotsense.firmware_sim.sampler import SampleChunk
from knotsense.firmware_sim.streaming import Streaming
from knotsense.protocol import (
    CalibrationChunk,
    Command,
    CommitCalibration,
    DecodedFrame,
    Encoding,
    Framing,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    PacketDecoder,
    Ping,
    PingResult,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    Response,
    SetStreamConfig,
    StartStream,
    StatusCode,
    StopStream,
    StreamDecoder,
    Tare,
    TareResult,
    WriteCalibration,
    WriteThresholds,
    cobs,
    crc16,
)
from knotsense.protocol.commands import CALIBRATION_CAPACITY, ChannelWeight, Thresholds
from knotsense.protocol.frame import FRAME_OVERHEAD, MAX_ENCODED_SIZE

CMD_LATENCY_S = 0.0005
NVM_LATENCY_S = 0.015
REBOOT_DELAY_S = 0.010
DEFAULT_TARE_SAMPLES = 16
MAX_TARE_SAMPLES = 4096


@dataclass
class PendingTare:
    """A TARE being averaged: *n* samples of the channels in *mask* taken after *after*."""

    command: Command
    mask: int
    n: int
    after: float
    sums: np.ndarray
    count: int = 0


class CommandHandlers(Streaming):
    """Mixin of :class:`~knotsense.firmware_sim.device.SimulatedDevice`: the command set."""

    nvm: Nvm
    injected: InjectedFaults
    _now: float
    _alive: bool
    _framing: Framing
    _rx: StreamDecoder | PacketDecoder
    _rx_frame: bytes
    _tare: PendingTare | None
    _staging: bytearray | None
    _staged: np.ndarray | None
    _reboot_cmd: float | None

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
        self._queue(t, PRIO_RESPONSE, resp)

    def _on_frame(self, frame: DecodedFrame) -> None:
        msg = frame.message
        if not isinstance(msg, Command):
            return
        body = msg.body
        now = self._now
        t = now + CMD_LATENCY_S

        def reply(status: StatusCode | None = None, result: object = None, at: float = t) -> None:
            resp = Response.ok(msg, result) if status is None else Response.error(msg, status)
            self._queue(at, PRIO_RESPONSE, resp)

        if isinstance(body, Ping):
            reply(result=PingResult(body.data))
        elif isinstance(body, GetInfo):
            reply(result=self.info)
        elif isinstance(body, GetStatus):
            self._queue_build(
                t,
                PRIO_RESPONSE,
                lambda s, d: Response.ok(msg, self._status(t, s, d)),
            )
        elif isinstance(body, GetStreamConfig):
            reply(result=self._stream_config(self._streaming))
        elif isinstance(body, StartStream):
            if not self._streaming:
                self._streaming = True
                self._stream_index = 0
                self._partial = []
                self._queue(t, PRIO_CONFIG, self._stream_config(True))
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
        self._tare = PendingTare(msg, mask, n, self._now, np.zeros(self.unit.channels, np.int64))
        return None

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
        self._queue(t, PRIO_RESPONSE, Response.ok(tare.command, result))

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
