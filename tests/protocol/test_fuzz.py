"""Fuzzing for a bounded time: random and mutated bytes into every decoding entry point.

Each target runs for KNOTSENSE_FUZZ_SECONDS / 5 seconds (default total 10 s);
set KNOTSENSE_FUZZ_SECONDS=600 for a long run. The RNG seed is fixed (override
with KNOTSENSE_FUZZ_SEED), so a failure reproduces. Only documented exceptions
may escape: the decoders never raise; cobs.decode raises FramingError;
parse_frame raises FramingError or CrcError; decode_message and
Response.parse_result raise MessageError.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from make_vectors import example_messages  # tools/ (pytest pythonpath)
from test_decoder import Reference

from knotsense.errors import CrcError, FramingError, MessageError
from knotsense.protocol import (
    MESSAGE_TYPES,
    DeviceEvent,
    DeviceInfo,
    Encoding,
    LogText,
    PacketDecoder,
    Response,
    SampleBlock,
    Status,
    StatusCode,
    StreamDecoder,
    build_frame,
    cobs,
    decode_message,
    parse_frame,
    stuff,
)
from knotsense.protocol.frame import MAX_ENCODED_SIZE

TOTAL = float(os.environ.get("KNOTSENSE_FUZZ_SECONDS", "10"))
BUDGET = TOTAL / 5
SEED = int(os.environ.get("KNOTSENSE_FUZZ_SEED", "20261120"))
MAX_CALL_SECONDS = 2.0
"""A single call taking longer than this counts as a hang."""

SEEDS = [m for _, m in example_messages()] + [
    SampleBlock(1, 2, 3, 0xFF, Encoding.INT16, np.arange(104, dtype=np.int32).reshape(13, 8)),
    SampleBlock(1, 2, 3, 0x0F, Encoding.INT24, -np.arange(72, dtype=np.int32).reshape(18, 4)),
]
PAYLOADS = [(int(m.TYPE), m.encode()) for m in SEEDS]


def rounds(rng: np.random.Generator) -> Iterator[int]:
    """Yield round numbers until the budget is spent (at least 50 rounds)."""
    start = time.monotonic()
    i = 0
    while i < 50 or time.monotonic() - start < BUDGET:
        yield i
        i += 1


def timed(fn: Callable[[], object]) -> object:
    t = time.monotonic()
    out = fn()
    assert time.monotonic() - t < MAX_CALL_SECONDS, "a single call took too long (hang?)"
    return out


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        op = int(rng.integers(0, 6))
        at = int(rng.integers(0, len(buf) + 1))
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << int(rng.integers(0, 8))
        elif op == 1 and buf:
            buf[min(at, len(buf) - 1)] = int(rng.integers(0, 256))
        elif op == 2:
            buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 20)), dtype=np.uint8).tobytes()
        elif op == 3:
            del buf[at : at + int(rng.integers(1, 20))]
        elif op == 4:
            buf[at:at] = b"\x00"
        else:
            buf[at:] = buf[at : at + int(rng.integers(0, 300))]
    return bytes(buf)


def valid_stream(rng: np.random.Generator, n: int) -> bytes:
    seq = int(rng.integers(0, 0x10000))
    out = bytearray()
    for k in rng.integers(0, len(PAYLOADS), n).tolist():
        msg_type, payload = PAYLOADS[k]
        out += stuff(build_frame(msg_type, (seq := seq + 1) & 0xFFFF, payload))
    return bytes(out)


def chunked(rng: np.random.Generator, data: bytes) -> list[bytes]:
    cuts = np.sort(rng.integers(0, len(data) + 1, int(rng.integers(0, 20))))
    bounds = [0, *cuts.tolist(), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_fuzz_stream_decoder_against_reference() -> None:
    rng = np.random.default_rng(SEED)
    for i in rounds(rng):
        base = valid_stream(rng, int(rng.integers(1, 120)))
        data = mutate(rng, base) if i % 4 else rng.bytes(int(rng.integers(0, 3000)))
        dec, ref = StreamDecoder(), Reference()
        got = []
        for chunk in chunked(rng, data):
            got += timed(lambda c=chunk, d=dec: d.feed(c))  # type: ignore[misc]
            assert dec.buffered <= MAX_ENCODED_SIZE
        want = ref.feed_stream(data)
        assert [(f.seq, f.lost_before) for f in got] == [(s, n) for s, _, n in want]
        assert all(f.message == m for f, (_, m, _) in zip(got, want, strict=True))
        assert dec.stats.as_dict() == ref.stats


def test_fuzz_packet_decoder() -> None:
    rng = np.random.default_rng(SEED + 1)
    dec, ref = PacketDecoder(), Reference()
    for i in rounds(rng):
        msg_type, payload = PAYLOADS[int(rng.integers(0, len(PAYLOADS)))]
        frame = build_frame(msg_type, i & 0xFFFF, payload)
        packet = mutate(rng, frame) if i % 3 else rng.bytes(int(rng.integers(0, 300)))
        got = timed(lambda p=packet: dec.feed(p))  # type: ignore[misc]
        want = ref.feed_packet(packet)
        assert [(f.seq, f.lost_before) for f in got] == [(s, n) for s, _, n in want]  # type: ignore[union-attr]
    assert dec.stats.as_dict() == ref.stats


def test_fuzz_cobs_and_parse_frame() -> None:
    rng = np.random.default_rng(SEED + 2)
    for i in rounds(rng):
        msg_type, payload = PAYLOADS[i % len(PAYLOADS)]
        frame = build_frame(msg_type, i & 0xFFFF, payload)
        data = mutate(rng, cobs.encode(frame))
        with contextlib.suppress(FramingError):
            timed(lambda d=data: cobs.decode(d))  # type: ignore[misc]
        damaged = mutate(rng, frame)
        with contextlib.suppress(FramingError, CrcError):
            timed(lambda f=damaged: parse_frame(f))  # type: ignore[misc]


def test_fuzz_decode_message() -> None:
    rng = np.random.default_rng(SEED + 3)
    types = [*sorted(MESSAGE_TYPES), 0x00, 0x7E, 0xFF]
    for i in rounds(rng):
        if i % 2:
            msg_type, payload = PAYLOADS[int(rng.integers(0, len(PAYLOADS)))]
            payload = mutate(rng, payload)
        else:
            msg_type = types[int(rng.integers(0, len(types)))]
            payload = rng.bytes(int(rng.integers(0, 240)))
        try:
            message = timed(lambda t=msg_type, p=payload: decode_message(t, p))  # type: ignore[misc]
        except MessageError:
            continue
        if isinstance(message, Response) and message.status == StatusCode.OK:
            with contextlib.suppress(MessageError):
                message.parse_result()


@pytest.mark.parametrize("cls", [DeviceInfo, Status, DeviceEvent, LogText])
def test_every_prefix_of_a_seed(cls: type) -> None:
    for _, m in example_messages():
        if isinstance(m, cls):
            payload = m.encode()
            for n in range(len(payload) + 1):
                with contextlib.suppress(MessageError):
                    cls.decode(payload[:n])  # type: ignore[attr-defined]
