"""The sampling loop of the simulated firmware: sampler, on-device detectors, packetiser.

:meth:`Streaming._advance` takes the samples due up to a host time from the
:class:`~knotsense.firmware_sim.sampler.Sampler`, runs the stuck-channel and
threshold detectors on them, feeds a running TARE, and, while streaming,
cuts them into SampleBlocks: at most what fits ``max_frame_size`` and at most
:data:`MAX_BLOCK_S` of samples, each leaving when its last sample is taken.
"""

from __future__ import annotations

import numpy as np

from knotsense.firmware_sim.config import FaultConfig, SimConfig
from knotsense.firmware_sim.detector import StuckDetector, ThresholdDetector
from knotsense.firmware_sim.outbox import PRIO_EVENT, BlockBatch, Outbox
from knotsense.firmware_sim.physics import SensorFrontEnd, UnitParams
from knotsense.firmware_sim.sampler import SampleChunk, Sampler
from knotsense.protocol import DeviceEvent, Encoding, EventCode, SampleBlock, StreamConfig

MAX_BLOCK_S = 0.1


class Streaming(Outbox):
    """Mixin of :class:`~knotsense.firmware_sim.device.SimulatedDevice`: sampling and blocks."""

    config: SimConfig
    unit: UnitParams
    front: SensorFrontEnd
    faults: FaultConfig
    ratio: float
    _generation: int
    _h_boot: float
    _rate: int
    _mask: int
    _encoding: Encoding
    _streaming: bool
    _stream_index: int
    _partial: list[tuple[np.ndarray, ...]]
    _sensor_faults: int
    _detector: ThresholdDetector

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
                PRIO_EVENT,
                DeviceEvent(
                    int(chunk.t_us[j]) & 0xFFFFFFFF, EventCode.SENSOR_FAULT, ch, int(raw[j, ch])
                ),
            )
        for j, event in self._detector.process(raw, chunk.t_us):
            self._queue(float(chunk.t_host[j]), PRIO_EVENT, event)
        if self._tare is not None:
            self._tare_samples(chunk)
        if self._streaming:
            self._packetise(chunk, stuck)

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
        batch = BlockBatch(
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
