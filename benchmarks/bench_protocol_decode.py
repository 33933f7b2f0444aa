"""Benchmark ``protocol_decode``: the streaming decoder on 8-channel int16 sample blocks.

The stream is what a device sends at the maximum frame size (13 samples x 8
channels per frame, realistic load-cell counts with noise). The headline
figure is :meth:`StreamDecoder.feed_batch` in 256 KiB reads -- how a recorded
session is read back (sample blocks stay column-wise). Also reported:
:meth:`StreamDecoder.feed` (one object per frame) in 64 KiB and 4 KiB reads,
the live path.

Baseline, run in the same process on the same bytes: a straightforward
decoder as a newcomer writes it from the spec -- split at 0x00, COBS-decode
byte by byte as in the reference C code, check the CRC with binascii, unpack
the header with struct, then ``struct.unpack_from`` once per sample (row of 8
channels) into a list.
"""

from __future__ import annotations

import struct
import time
from binascii import crc_hqx

import numpy as np

from knotsense.protocol import (
    MAX_FRAME_SIZE,
    Encoder,
    Encoding,
    Framing,
    SampleBlock,
    StreamDecoder,
)

NAME = "protocol_decode"
CHANNELS = 8


def make_stream(n_frames: int, seed: int = 7) -> tuple[bytes, int]:
    """A device's byte stream of *n_frames* full sample blocks; returns (bytes, samples/frame)."""
    rng = np.random.default_rng(seed)
    per_frame = SampleBlock.max_samples(MAX_FRAME_SIZE, CHANNELS, Encoding.INT16)
    encoder = Encoder(Framing.STREAM)
    level = rng.uniform(2_000, 20_000, CHANNELS)
    parts = []
    for i in range(n_frames):
        samples = level + rng.normal(0, 40, (per_frame, CHANNELS))
        parts.append(
            encoder.encode(
                SampleBlock(
                    t_first_us=(i * per_frame * 1000) & 0xFFFFFFFF,
                    sample_index=i * per_frame,
                    period_ns=1_000_000,
                    channel_mask=0xFF,
                    encoding=Encoding.INT16,
                    samples=samples.astype(np.int32),
                )
            )
        )
    return b"".join(parts), per_frame


def _cobs_decode_bytewise(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        i += 1
        for _ in range(code - 1):
            out.append(data[i])
            i += 1
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def baseline_decode(stream: bytes) -> int:
    """The straightforward decoder; returns the channel-samples decoded."""
    header = struct.Struct("<BBHH")
    block_head = struct.Struct("<IIIBBBBBB")
    row = struct.Struct(f"<{CHANNELS}h")
    count = 0
    for encoded in stream.split(b"\x00"):
        if not encoded:
            continue
        frame = _cobs_decode_bytewise(encoded)
        if crc_hqx(frame, 0xFFFF) != 0:
            continue
        _version, _msg_type, _seq, length = header.unpack_from(frame)
        payload = frame[6 : 6 + length]
        _t, _idx, _period, _mask, _enc, _flags, _sat, _fault, n = block_head.unpack_from(payload)
        samples = [row.unpack_from(payload, 18 + k * row.size) for k in range(n)]
        count += len(samples) * CHANNELS
    return count


def decode_batches(stream: bytes, chunk: int) -> int:
    decoder = StreamDecoder()
    count = 0
    for start in range(0, len(stream), chunk):
        batch = decoder.feed_batch(stream[start : start + chunk])
        count += sum(columns.samples.size for columns in batch.sample_columns)
        count += sum(frame.message.samples.size for _, frame in batch.other)
    return count


def decode_with(stream: bytes, chunk: int) -> int:
    decoder = StreamDecoder()
    count = 0
    for start in range(0, len(stream), chunk):
        for frame in decoder.feed(stream[start : start + chunk]):
            count += frame.message.samples.size
    return count


def _best_time(fn, repeats: int) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def run(quick: bool = False) -> dict:
    n_frames = 20_000 if quick else 100_000
    repeats = 3 if quick else 5
    stream, per_frame = make_stream(n_frames)
    expected = n_frames * per_frame * CHANNELS
    t_batch, n_batch = _best_time(lambda: decode_batches(stream, 262144), repeats)
    t_feed, n_feed = _best_time(lambda: decode_with(stream, 65536), repeats)
    t_small, n_small = _best_time(lambda: decode_with(stream, 4096), repeats)
    t_base, n_base = _best_time(lambda: baseline_decode(stream), max(1, repeats // 2))
    if not n_batch == n_feed == n_small == n_base == expected:
        raise RuntimeError(f"decoders disagree: {n_batch}, {n_feed}, {n_small}, {n_base}")
    value = expected / t_batch
    baseline = expected / t_base
    return {
        "value": value,
        "unit": "channel-samples/s",
        "baseline": baseline,
        "ratio": value / baseline,
        "us_per_frame": round(t_batch / n_frames * 1e6, 2),
        "feed_64k_value": round(expected / t_feed),
        "feed_64k_ratio": round((expected / t_feed) / baseline, 2),
        "feed_4k_value": round(expected / t_small),
        "feed_4k_ratio": round((expected / t_small) / baseline, 2),
        "frames": n_frames,
        "frame_bytes": round(len(stream) / n_frames, 1),
    }
