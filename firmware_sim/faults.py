"""Link fault injection: the transmit buffer of a slow reader, then the faulty link.

When a scenario or URL asks for link faults (``drop``, ``dup``, ``bit_errors``,
``burst``, ``link_drop``) or a ``slow_reader``, frames leave one at a time
through :meth:`LinkFaults._release_slow`: numbered, queued in the device's
transmit buffer (which overflows and reports BUFFER_OVERFLOW), then carried
over the link by :meth:`LinkFaults._send`, which draws every random decision
from its own seeded generator. :class:`InjectedFaults` counts what was done,
to compare with what the host saw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from knotsense.firmware_sim import framing
from knotsense.firmware_sim.config import FaultConfig, SimConfig
from knotsense.firmware_sim.outbox import BlockBatch, QueuedMessage
from knotsense.firmware_sim.physics import unit_seed
from knotsense.protocol import (
    BlockFlags,
    DeviceEvent,
    EventCode,
    Framing,
    Message,
    SampleBlock,
    build_frame,
    crc16,
    stuff,
)
from knotsense.protocol.frame import FRAME_OVERHEAD

_BLOCK_OVERHEAD = FRAME_OVERHEAD + SampleBlock.HEAD_SIZE


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


class LinkFaults:
    """Mixin of :class:`~knotsense.firmware_sim.device.SimulatedDevice`: the faulty link."""

    config: SimConfig
    faults: FaultConfig
    injected: InjectedFaults
    _framing: Framing
    _seq: int
    _frames_sent: int
    _frames_dropped: int
    _frames_out: int
    _burst_left: int
    _tx_level: float
    _tx_time: float
    _overflow_pending: int
    _overflow_flag: bool
    _rng_drop: np.random.Generator
    _rng_dup: np.random.Generator
    _rng_bits: np.random.Generator
    _rng_burst: np.random.Generator

    def _link_up_at(self, h: float) -> bool:
        return not any(w.contains(h) for w in self.faults.link_drops)

    def _frame_msg(self, message: Message, seq: int) -> bytes:
        frame = build_frame(message.TYPE, seq, message.encode())
        if len(frame) > self.config.max_frame_size:
            self.injected.oversize_frames += 1
        return frame

    def _release_slow(
        self,
        msgs: list[QueuedMessage],
        batches: list[BlockBatch],
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
