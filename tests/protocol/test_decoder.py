"""Stream and packet decoders: chunking, corruption, bounded memory, counters.

The decoders are checked against a plain reference receiver written from
docs/protocol.md section 14 (per byte, using cobs.decode, parse_frame and
decode_message), on random streams mixing good frames with every kind of
damage.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import fast, frame_messages

from knotsense.errors import CrcError, FramingError, MessageError
from knotsense.protocol import (
    MESSAGE_TYPES,
    DeviceEvent,
    Encoding,
    EventCode,
    LogText,
    PacketDecoder,
    SampleBlock,
    StreamDecoder,
    build_frame,
    cobs,
    crc16,
    decode_message,
    parse_frame,
    stuff,
)
from knotsense.protocol.frame import MAX_ENCODED_SIZE

COUNTERS = (
    "bytes_in",
    "frames",
    "bytes_discarded",
    "crc_errors",
    "framing_errors",
    "oversize",
    "version_errors",
    "message_errors",
    "unknown_types",
    "seq_gaps",
    "frames_lost",
    "duplicates",
    "seq_resets",
)


# --- the reference receiver (docs/protocol.md section 14) ---------------------------------


@dataclass
class Reference:
    """Byte-at-a-time receiver, a direct transcription of the spec's pseudocode."""

    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    pending: bytearray = field(default_factory=bytearray)
    skipping: bool = False
    last: int | None = None

    def feed_stream(self, data: bytes) -> list[tuple[int, object, int]]:
        out = []
        self.stats["bytes_in"] += len(data)
        for b in data:
            if b:
                if self.skipping:
                    self.stats["bytes_discarded"] += 1
                    continue
                self.pending.append(b)
                if len(self.pending) > MAX_ENCODED_SIZE:
                    self.stats["oversize"] += 1
                    self.stats["bytes_discarded"] += len(self.pending)
                    self.pending.clear()
                    self.skipping = True
                continue
            if self.skipping:
                self.skipping = False
                continue
            segment = bytes(self.pending)
            self.pending.clear()
            if segment:
                out += self._segment(segment)
        return out

    def _segment(self, segment: bytes) -> list[tuple[int, object, int]]:
        if len(segment) <= 8:
            return self._reject(len(segment), "framing_errors")
        try:
            frame = cobs.decode(segment)
        except FramingError:
            return self._reject(len(segment), "framing_errors")
        return self._frame(frame, len(segment))

    def feed_packet(self, packet: bytes) -> list[tuple[int, object, int]]:
        self.stats["bytes_in"] += len(packet)
        if len(packet) > 244:
            return self._reject(len(packet), "oversize")
        if len(packet) < 8:
            return self._reject(len(packet), "framing_errors")
        return self._frame(packet, len(packet))

    def _frame(self, frame: bytes, size: int) -> list[tuple[int, object, int]]:
        if crc16(frame) != 0:
            return self._reject(size, "crc_errors")
        if frame[0] != 1:
            return self._reject(size, "version_errors")
        if int.from_bytes(frame[4:6], "little") != len(frame) - 8:
            return self._reject(size, "framing_errors")
        try:
            message = decode_message(frame[1], frame[6:-2])
        except MessageError:
            return self._reject(size, "message_errors")
        if frame[1] not in MESSAGE_TYPES:
            self.stats["unknown_types"] += 1
        seq = frame[2] | frame[3] << 8
        lost = 0
        if self.last is not None:
            d = (seq - self.last - 1) & 0xFFFF
            if d == 0xFFFF:
                self.stats["duplicates"] += 1
                self.stats["bytes_discarded"] += size
                return []
            if 0 < d < 0x8000:
                self.stats["seq_gaps"] += 1
                self.stats["frames_lost"] += d
                lost = d
            elif d >= 0x8000:
                self.stats["seq_resets"] += 1
        self.last = seq
        self.stats["frames"] += 1
        return [(seq, message, lost)]

    def _reject(self, size: int, counter: str) -> list:
        self.stats[counter] += 1
        self.stats["bytes_discarded"] += size
        return []


# --- stream generation --------------------------------------------------------------------


@st.composite
def damaged_items(draw: st.DrawFn, seq: int) -> tuple[bytes, int]:
    """One stream item (bytes ending with a delimiter, mostly) and the next seq."""
    kind = draw(
        st.sampled_from(
            ["good"] * 10
            + ["dup", "gap", "reset", "garbage", "crc", "version", "length", "malformed"]
            + ["oversize", "delims", "no_delim", "short", "unknown"]
        )
    )
    if kind == "good":
        return stuff(_build(_typed(draw(frame_messages)), seq)), seq + 1
    if kind == "dup":
        frame = stuff(build_frame(0x06, (seq - 1) & 0xFFFF, b"\x14dup"))
        return frame, seq
    if kind == "gap":
        jump = draw(st.integers(1, 40))
        return stuff(build_frame(0x06, (seq + jump) & 0xFFFF, b"\x14gap")), seq + jump + 1
    if kind == "reset":
        new = draw(st.integers(0, 3))
        frame = build_frame(0x04, new, DeviceEvent(0, EventCode.BOOT, 1).encode())
        return stuff(frame), new + 1
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=30)) + b"\x00", seq
    if kind == "unknown":
        return stuff(build_frame(draw(st.integers(0x20, 0xFF)), seq, b"?")), seq + 1
    if kind == "short":
        junk = draw(st.binary(min_size=1, max_size=8)).replace(b"\0", b"\1")
        return junk + b"\0", seq
    if kind == "delims":
        return b"\x00" * draw(st.integers(1, 3)), seq
    if kind == "no_delim":
        return draw(st.binary(min_size=1, max_size=600)).replace(b"\x00", b"\x01"), seq
    if kind == "oversize":
        n = draw(st.integers(MAX_ENCODED_SIZE + 1, 700))
        return bytes([0x55]) * n + b"\x00", seq
    frame = bytearray(build_frame(0x06, seq, b"\x14text"))
    if kind == "crc":
        frame[draw(st.integers(0, len(frame) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "version":
        frame[0] = draw(st.integers(2, 255))
        frame[-2:] = crc16(frame[:-2]).to_bytes(2, "big")
    elif kind == "length":
        frame[4] ^= draw(st.integers(1, 255))
        frame[-2:] = crc16(frame[:-2]).to_bytes(2, "big")
    elif kind == "malformed":
        frame = bytearray(build_frame(0x05, seq, b"\x01\x02\x03"))
    return stuff(bytes(frame)), seq


def _typed(message: object) -> tuple[int, bytes]:
    return message.TYPE, message.encode()  # type: ignore[attr-defined]


def _build(pair: tuple[int, bytes], seq: int) -> bytes:
    return build_frame(pair[0], seq & 0xFFFF, pair[1])


@st.composite
def streams(draw: st.DrawFn, max_items: int = 60) -> bytes:
    seq = draw(st.integers(0, 0xFFFF))
    out = bytearray()
    for _ in range(draw(st.integers(1, max_items))):
        item, seq = draw(damaged_items(seq))
        out += item
        seq &= 0xFFFF
    return bytes(out)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def same_frames(a: list, b: list) -> bool:
    return [(f.seq, f.lost_before) for f in a] == [(s, n) for s, _, n in b] and all(
        f.message == m for f, (_, m, _) in zip(a, b, strict=True)
    )


def decode_chunks(chunks: list[bytes]) -> tuple[list, StreamDecoder]:
    dec = StreamDecoder()
    out = []
    for chunk in chunks:
        out += dec.feed(chunk)
        assert dec.buffered <= MAX_ENCODED_SIZE
    return out, dec


# --- the properties -----------------------------------------------------------------------


@fast(40)
@given(streams(), st.data())
def test_stream_decoder_agrees_with_reference(stream: bytes, data: st.DataObject) -> None:
    ref = Reference()
    expected = ref.feed_stream(stream)
    whole, dec = decode_chunks([stream])
    assert same_frames(whole, expected)
    assert dec.stats.as_dict() == ref.stats
    chunks = data.draw(splits(stream))
    split, dec2 = decode_chunks(chunks)
    assert same_frames(split, expected)
    assert dec2.stats.as_dict() == ref.stats


@fast(40)
@given(st.lists(frame_messages, min_size=1, max_size=70), st.integers(0, 0xFFFF), st.data())
def test_any_split_of_a_valid_stream_decodes_identically(
    msgs: list, first: int, data: st.DataObject
) -> None:
    stream = b"".join(stuff(_build(_typed(m), first + i)) for i, m in enumerate(msgs))
    chunks = data.draw(splits(stream))
    out, dec = decode_chunks(chunks)
    assert [f.message for f in out] == msgs
    assert [f.seq for f in out] == [(first + i) & 0xFFFF for i in range(len(msgs))]
    assert dec.stats.frames == len(msgs) and dec.stats.errors == 0
    assert dec.stats.bytes_discarded == 0 and dec.buffered == 0
    one_by_one, _ = decode_chunks([bytes([b]) for b in stream[:3000]])
    assert [f.message for f in one_by_one] == msgs[: len(one_by_one)]


@fast(60)
@given(st.lists(frame_messages, min_size=2, max_size=40), st.data())
def test_corruption_never_yields_a_wrong_message_and_recovers(
    msgs: list, data: st.DataObject
) -> None:
    encoded = [stuff(_build(_typed(m), i)) for i, m in enumerate(msgs)]
    stream = bytearray(b"".join(encoded))
    spans, pos = [], 0
    for e in encoded:  # frame k owns [previous delimiter, own delimiter]
        spans.append((pos - 1, pos + len(e) - 1))
        pos += len(e)
    n_mut = data.draw(st.integers(1, 6))
    touched = set()
    edits = []
    for _ in range(n_mut):
        at = data.draw(st.integers(0, len(stream) - 1))
        op = data.draw(st.sampled_from(["flip", "zero", "delete", "insert"]))
        edits.append((at, op, data.draw(st.integers(1, 255))))
        touched.add(at)
    for at, op, v in sorted(edits, reverse=True):  # apply right to left: indices stay valid
        if op == "flip":
            stream[at] ^= v
        elif op == "zero":
            stream[at] = 0
        elif op == "delete":
            del stream[at]
        else:
            stream.insert(at, v)
    out, _ = decode_chunks(data.draw(splits(bytes(stream))))
    originals = {i: m for i, m in enumerate(msgs)}
    for f in out:  # never a wrong message
        assert f.seq in originals and f.message == originals[f.seq]
    seqs = [f.seq for f in out]
    assert seqs == sorted(seqs)
    intact = [k for k, (a, b) in enumerate(spans) if not any(a <= t <= b for t in touched)]
    assert set(intact) <= set(seqs), "a frame away from any damage was lost"


@fast(40)
@given(st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=20))
def test_memory_is_bounded_without_delimiters(chunks: list[bytes]) -> None:
    dec = StreamDecoder()
    total = 0
    for chunk in chunks:
        chunk = chunk.replace(b"\x00", b"\x07")
        total += len(chunk)
        assert dec.feed(chunk) == []
        assert dec.buffered <= MAX_ENCODED_SIZE
    assert dec.stats.oversize == (1 if total > MAX_ENCODED_SIZE else 0)
    good = stuff(build_frame(0x06, 1, b"\x14back"))
    out = dec.feed(b"\x00" + good)
    assert [f.message for f in out] == [LogText(20, "back")]
    assert dec.stats.bytes_discarded == total


def test_oversize_run_counts_do_not_depend_on_chunking() -> None:
    # Regression: the tail of an oversize run used to stay in the buffer (and out
    # of bytes_discarded) until a delimiter came, so counters depended on chunking.
    run = bytes([0x42]) * 700
    whole = StreamDecoder()
    whole.feed(run)
    pieces = StreamDecoder()
    for k in range(0, 700, 113):
        pieces.feed(run[k : k + 113])
        assert pieces.stats.bytes_discarded + pieces.buffered == min(k + 113, 700)
    for dec in (whole, pieces):
        assert dec.buffered == 0
        assert (dec.stats.oversize, dec.stats.bytes_discarded) == (1, 700)
    assert whole.stats.as_dict() == pieces.stats.as_dict()


def test_huge_feed_without_delimiter() -> None:
    dec = StreamDecoder()
    dec.feed(np.random.default_rng(1).integers(1, 256, 1_000_000, dtype=np.uint8).tobytes())
    assert dec.buffered == 0 and dec.stats.oversize == 1
    assert dec.stats.bytes_discarded == 1_000_000
    assert len(dec.feed(b"\x00" + stuff(build_frame(0x06, 0, b"\x14x")))) == 1


@fast(30)
@given(streams(max_items=30), st.data())
def test_byte_accounting(stream: bytes, data: st.DataObject) -> None:
    out, dec = decode_chunks(data.draw(splits(stream)))
    delivered = sum(len(build_frame(f.message.TYPE, f.seq, f.message.encode())) + 1 for f in out)
    s = dec.stats
    assert s.bytes_in == len(stream)
    assert s.bytes_in == delivered + stream.count(0) + s.bytes_discarded + dec.buffered


@fast(80)
@given(st.lists(st.one_of(streams(max_items=1), st.binary(max_size=260)), max_size=40))
def test_packet_decoder_agrees_with_reference(items: list[bytes]) -> None:
    packets = []
    for item in items:  # good or damaged frames as packets, and raw junk
        if item.endswith(b"\x00"):
            try:
                packets.append(cobs.decode(item[:-1].split(b"\x00")[-1]))
            except FramingError:
                packets.append(item)
        else:
            packets.append(item)
    ref, dec = Reference(), PacketDecoder()
    for p in packets:
        got = dec.feed(p)
        want = ref.feed_packet(p)
        assert [(f.seq, f.lost_before) for f in got] == [(s, n) for s, _, n in want]
        assert all(f.message == m for f, (_, m, _) in zip(got, want, strict=True))
    assert dec.stats.as_dict() == ref.stats


def _counts(dec: StreamDecoder | PacketDecoder) -> dict[str, int]:
    return {k: v for k, v in dec.stats.as_dict().items() if v}


def test_counters_one_by_one() -> None:
    log = LogText(20, "ok").encode()
    good = build_frame(0x06, 10, log)
    cases = {
        "crc_errors": good[:-1] + bytes([good[-1] ^ 1]),
        "version_errors": (lambda f: f + crc16(f).to_bytes(2, "big"))(b"\x02" + good[1:-2]),
        "framing_errors": good[:6],
        "message_errors": build_frame(0x04, 10, b"\x00"),
        "oversize": bytes(300),
    }
    for counter, frame in cases.items():
        packet = PacketDecoder()
        assert packet.feed(frame) == []
        assert _counts(packet) == {
            "bytes_in": len(frame),
            "bytes_discarded": len(frame),
            counter: 1,
        }
        wire = bytes([0x55]) * 300 + b"\x00" if counter == "oversize" else stuff(frame)
        stream = StreamDecoder()
        assert stream.feed(wire) == []
        assert _counts(stream) == {
            "bytes_in": len(wire),
            "bytes_discarded": len(wire) - 1,
            counter: 1,
        }
    stream = StreamDecoder()
    stream.feed(bytes.fromhex("0311") + b"\x00")  # COBS code overrun
    assert stream.stats.framing_errors == 1


@pytest.mark.parametrize("decoder", [StreamDecoder, PacketDecoder])
def test_sequence_counters(decoder: type) -> None:
    dec = decoder()
    wrap = (lambda f: stuff(f)) if decoder is StreamDecoder else (lambda f: f)

    def send(seq: int) -> list:
        return dec.feed(wrap(build_frame(0x06, seq, b"\x14.")))

    assert send(100)[0].lost_before == 0
    assert send(101)[0].lost_before == 0
    assert send(101) == []  # duplicate dropped
    assert send(105)[0].lost_before == 3
    assert send(2)[0].lost_before == 0  # backward: a reset
    assert send(0xFFFF - 2)  # forward by more than half the space: also a reset
    assert send(0xFFFF)[0].lost_before == 1
    assert send(0)[0].lost_before == 0  # wrap is no gap
    s = dec.stats
    assert (s.frames, s.duplicates, s.seq_gaps, s.frames_lost, s.seq_resets) == (7, 1, 2, 4, 2)
    dec.reset()
    assert dec.stats.frames == 0 and send(5)[0].lost_before == 0


def test_unknown_types_are_delivered() -> None:
    dec = StreamDecoder()
    out = dec.feed(stuff(build_frame(0x7E, 0, b"\x01")) + stuff(build_frame(0x06, 1, b"\x14a")))
    assert [type(f.message).__name__ for f in out] == ["UnknownMessage", "LogText"]
    assert dec.stats.unknown_types == 1 and dec.stats.errors == 0


def test_reset_forgets_partial_input() -> None:
    dec = StreamDecoder()
    frame = stuff(build_frame(0x06, 0, b"\x14abc"))
    dec.feed(frame[:5])
    assert dec.buffered == 5
    dec.reset()
    assert dec.buffered == 0 and dec.stats.bytes_in == 0
    assert len(dec.feed(frame)) == 1


def test_sample_blocks_come_out_as_int32_arrays() -> None:
    rng = np.random.default_rng(7)
    blocks = []
    for i in range(80):  # enough frames for the vectorised path
        enc = [Encoding.INT16, Encoding.INT24, Encoding.INT32][i % 3]
        bits = 8 * int(enc)
        c = 1 + i % 4
        n = SampleBlock.max_samples(244, c, enc)
        values = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (n, c))
        blocks.append(SampleBlock(i * 1000, i * n, 4_000_000, (1 << c) - 1, enc, values))
    stream = b"".join(stuff(_build(_typed(b), i)) for i, b in enumerate(blocks))
    out = StreamDecoder().feed(stream)
    assert [f.message for f in out] == blocks
    for f, b in zip(out, blocks, strict=True):
        assert f.message.samples.dtype == np.int32 and f.message.samples.shape == b.samples.shape


def test_parse_errors_are_typed() -> None:
    with pytest.raises(CrcError):
        parse_frame(b"\x01\x06\x00\x00\x00\x00\x00\x00")
