"""Benchmark ``record_throughput``: frames per second the recorder sustains (capture + decode).

The byte chunks come from the simulator, generated *before* timing (a 4-channel
load-cell unit streaming at 1 kHz, read in the 20 ms steps of ``sim://``), so
only the host side is timed:

* headline: every chunk goes into :meth:`Recorder.rx` (the lossless raw
  capture, written to a real file) and through :meth:`StreamDecoder.feed`
  (the live decoding path, one object per frame) -- what ``knotsense record``
  does for every read;
* also reported: the whole client path, :class:`AsyncDevice` reading the same
  chunks from an in-process transport with ``on_raw`` into a Recorder, turning
  every block into a :class:`Samples` on the mapped timeline and handing it to
  a consumer (``client_frames_per_s``).

Baseline, in the same process on the same chunks: appending the bytes to a
file with no decoding (an upper bound: the disk alone). ``ratio`` is the
recorder's rate over that baseline (1.0 would mean decoding and framing are
free).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from knotsense.errors import EndOfData
from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.device import SimulatedDevice
from knotsense.firmware_sim.pipe import VIRTUAL_STEP_S
from knotsense.host.device import AsyncDevice, Samples
from knotsense.host.recording import Recorder
from knotsense.host.transports.base import Transport
from knotsense.protocol import (
    Command,
    Encoder,
    Encoding,
    Framing,
    SetStreamConfig,
    StartStream,
    StreamDecoder,
)

NAME = "record_throughput"
RATE_HZ = 1000


def simulate(seconds: float, seed: int = 5) -> tuple[list[bytes], int]:
    """The device's output over *seconds* of streaming, as ``sim://`` reads it; (chunks, frames)."""
    device = SimulatedDevice(
        SimConfig(scenario="back_session", seed=seed, channels=4, sensor="load_cell")
    )
    encoder = Encoder(Framing.STREAM)
    device.run_until(0.05)
    device.host_write(encoder.encode(Command(1, SetStreamConfig(RATE_HZ, 0b1111, Encoding.INT24))))
    device.host_write(encoder.encode(Command(2, StartStream())))
    chunks: list[bytes] = []
    t = device.now
    steps = round(seconds / VIRTUAL_STEP_S)
    for k in range(1, steps + 1):
        out = device.run_until(t + k * VIRTUAL_STEP_S)
        if out:
            chunks.append(b"".join(out))
    frames = sum(chunk.count(0) for chunk in chunks)  # one 0x00 delimiter per frame
    return chunks, frames


def time_baseline(chunks: list[bytes], folder: Path) -> float:
    """Seconds to append the chunks to a file, no decoding (flushed and closed)."""
    path = folder / "baseline.bin"
    started = time.perf_counter()
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    return time.perf_counter() - started


def time_recorder(chunks: list[bytes], folder: Path) -> tuple[float, int, int]:
    """Seconds for Recorder.rx + StreamDecoder.feed over the chunks; (s, frames, samples)."""
    path = folder / "recorder.ksr"
    path.unlink(missing_ok=True)
    decoder = StreamDecoder()
    frames = samples = 0
    host_t = 1_700_000_000.0
    started = time.perf_counter()
    with Recorder(path, {"framing": "stream"}, host_time=host_t, fsync_interval=0) as rec:
        for i, chunk in enumerate(chunks):
            now = host_t + i * VIRTUAL_STEP_S
            rec.rx(chunk, now)
            for frame in decoder.feed(chunk):
                frames += 1
                samples += getattr(frame.message, "n_samples", 0)
    return time.perf_counter() - started, frames, samples


def time_parts(chunks: list[bytes], folder: Path) -> tuple[float, float]:
    """Seconds for the capture alone and for the decoding alone (where the time goes)."""
    path = folder / "capture.ksr"
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    with Recorder(path, {"framing": "stream"}, host_time=0.0, fsync_interval=0) as rec:
        for i, chunk in enumerate(chunks):
            rec.rx(chunk, i * VIRTUAL_STEP_S)
    capture_s = time.perf_counter() - started
    decoder = StreamDecoder()
    started = time.perf_counter()
    for chunk in chunks:
        decoder.feed(chunk)
    return capture_s, time.perf_counter() - started


class _Chunks(Transport):
    """Pre-generated chunks as a virtual-time source (paced by its reader)."""

    paced_by_reader = True

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__("bench://")
        self._chunks = chunks
        self._i = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, frame: bytes) -> None:
        pass

    async def receive(self, timeout: float) -> list[bytes]:
        if self._i >= len(self._chunks):
            raise EndOfData("end of the benchmark's chunks")
        batch = self._chunks[self._i : self._i + 8]
        self._i += len(batch)
        return batch

    def clock(self) -> float:
        return 1_700_000_000.0 + self._i * VIRTUAL_STEP_S


def time_client(chunks: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for the AsyncDevice path with on_raw into a Recorder; (s, samples consumed)."""
    path = folder / "client.ksr"
    path.unlink(missing_ok=True)

    async def go() -> int:
        with Recorder(path, {"framing": "stream"}, fsync_interval=0) as rec:
            dev = AsyncDevice(_Chunks(chunks), reconnect=None)
            dev.on_raw = lambda d, data, t: rec.rx(data, t) if d == "rx" else rec.tx(data, t)
            dev.start()
            n = 0
            async for item in dev.stream(timeout=10.0):
                if isinstance(item, Samples):
                    n += item.raw.shape[0]
            await dev.close()
            return n

    started = time.perf_counter()
    n = asyncio.run(go())
    return time.perf_counter() - started, n


def best(fn, repeats: int):  # type: ignore[no-untyped-def]
    """The fastest of *repeats* runs (the first element of each result is seconds)."""
    results = [fn() for _ in range(repeats)]
    return min(results, key=lambda r: r[0] if isinstance(r, tuple) else r)


def run(quick: bool = False) -> dict:
    seconds = 120.0 if quick else 300.0
    repeats = 2 if quick else 3
    gen_started = time.perf_counter()
    chunks, frames = simulate(seconds)
    gen_s = time.perf_counter() - gen_started
    total_bytes = sum(map(len, chunks))
    with tempfile.TemporaryDirectory(prefix="ks-bench-") as tmp:
        folder = Path(tmp)
        base_s = best(lambda: time_baseline(chunks, folder), repeats)
        rec_s, decoded, samples = best(lambda: time_recorder(chunks, folder), repeats)
        client_s, consumed = best(lambda: time_client(chunks, folder), 1 if quick else 2)
        capture_s, decode_s = best(lambda: time_parts(chunks, folder), repeats)
        file_bytes = (folder / "recorder.ksr").stat().st_size
    assert decoded == frames, (decoded, frames)
    value = decoded / rec_s
    baseline = frames / base_s
    return {
        "value": round(value, 1),
        "unit": "frames/s",
        "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 4),
        "frames": frames,
        "samples": samples,
        "stream_seconds": seconds,
        "stream_mb": round(total_bytes / 1e6, 2),
        "recorder_mb_per_s": round(total_bytes / rec_s / 1e6, 1),
        "realtime_factor": round(seconds / rec_s, 1),
        "capture_only_frames_per_s": round(frames / capture_s, 1),
        "decode_only_frames_per_s": round(frames / decode_s, 1),
        "client_frames_per_s": round(frames / client_s, 1),
        "client_samples": consumed,
        "recording_overhead": round(file_bytes / total_bytes, 3),
        "simulate_s": round(gen_s, 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True)))
