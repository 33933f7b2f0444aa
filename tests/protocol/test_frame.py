"""Frames: header layout, CRC placement and residue, size limits, checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import SETTINGS, frame_messages

from knotsense.errors import CrcError, FramingError, ProtocolError
from knotsense.protocol import (
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_SIZE,
    Encoder,
    Framing,
    LogText,
    PacketDecoder,
    StreamDecoder,
    build_frame,
    cobs,
    crc16,
    decode_packet,
    encode_message,
    frame_size_for_mtu,
    parse_frame,
    stuff,
)


def test_crc_check_value_and_residue() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF
    frame = build_frame(0x06, 0x0102, b"\x14ok")
    assert frame.hex() == "010602010300146f6be171"
    assert int.from_bytes(frame[-2:], "big") == crc16(frame[:-2])
    assert crc16(frame) == 0


def test_crc_continues() -> None:
    assert crc16(b"6789", crc16(b"12345")) == 0x29B1


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=MAX_PAYLOAD_SIZE))
def test_build_parse_round_trip(msg_type: int, seq: int, payload: bytes) -> None:
    frame = build_frame(msg_type, seq, payload)
    assert len(frame) == 8 + len(payload) <= MAX_FRAME_SIZE
    assert frame[0] == 1 and frame[1] == msg_type
    assert int.from_bytes(frame[2:4], "little") == seq
    assert int.from_bytes(frame[4:6], "little") == len(payload)
    assert crc16(frame) == 0
    parsed = parse_frame(frame)
    assert (parsed.msg_type, parsed.seq, parsed.payload, parsed.version) == (
        msg_type,
        seq,
        payload,
        1,
    )
    assert parsed.to_bytes() == frame


@SETTINGS
@given(st.binary(min_size=0, max_size=MAX_PAYLOAD_SIZE), st.data())
def test_any_single_bit_flip_is_rejected(payload: bytes, data: st.DataObject) -> None:
    frame = bytearray(build_frame(0x05, 9, payload))
    bit = data.draw(st.integers(0, 8 * len(frame) - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        parse_frame(frame)


def test_rejections() -> None:
    good = build_frame(0x06, 1, b"\x14hi")
    with pytest.raises(FramingError):
        parse_frame(good[:7])
    with pytest.raises(FramingError):
        parse_frame(b"")
    with pytest.raises(CrcError):
        parse_frame(good[:-1] + bytes([good[-1] ^ 0x80]))
    big = bytes([1, 6, 0, 0]) + (MAX_PAYLOAD_SIZE + 1).to_bytes(2, "little") + bytes(237)
    with pytest.raises(FramingError):
        parse_frame(big + crc16(big).to_bytes(2, "big"))
    v2 = bytes([2]) + good[1:-2]
    with pytest.raises(FramingError, match="version"):
        parse_frame(v2 + crc16(v2).to_bytes(2, "big"))
    bad_len = good[:4] + (4).to_bytes(2, "little") + good[6:-2]
    with pytest.raises(FramingError, match="length"):
        parse_frame(bad_len + crc16(bad_len).to_bytes(2, "big"))
    with pytest.raises(FramingError):
        build_frame(0x06, 0, bytes(MAX_PAYLOAD_SIZE + 1))


def test_largest_frame() -> None:
    frame = build_frame(0x06, 0, bytes(MAX_PAYLOAD_SIZE))
    assert len(frame) == MAX_FRAME_SIZE == 244
    assert len(stuff(frame)) == 246  # 245 encoded + delimiter
    assert parse_frame(frame).payload == bytes(MAX_PAYLOAD_SIZE)


@pytest.mark.parametrize(
    ("mtu", "limit"),
    [(0, 20), (20, 20), (23, 20), (24, 21), (27, 24), (185, 182), (247, 244), (512, 244)],
)
def test_frame_size_for_mtu(mtu: int, limit: int) -> None:
    assert frame_size_for_mtu(mtu) == limit
    assert MIN_FRAME_SIZE == 20


def test_stuff_is_cobs_plus_delimiter() -> None:
    frame = build_frame(0x10, 0, bytes.fromhex("0700010001"))
    assert stuff(frame).hex(" ") == "03 01 10 01 02 05 02 07 02 01 04 01 a1 b2 00"
    assert stuff(frame) == cobs.encode(frame) + b"\x00"


def test_encoder_numbers_and_wraps() -> None:
    enc = Encoder(Framing.PACKET, first_seq=0xFFFE)
    seqs = [parse_frame(enc.encode(LogText(20, "x"))).seq for _ in range(3)]
    assert seqs == [0xFFFE, 0xFFFF, 0]
    enc.reset()
    assert parse_frame(enc.encode(LogText(20, "x"))).seq == 0
    stream = Encoder(Framing.STREAM, first_seq=5)
    wire = stream.encode(LogText(20, "y"))
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    assert wire == encode_message(LogText(20, "y"), 5, Framing.STREAM)


@SETTINGS
@given(frame_messages, st.integers(0, 0xFFFF))
def test_encode_message_both_framings(message: object, seq: int) -> None:
    packet = encode_message(message, seq, Framing.PACKET)  # type: ignore[arg-type]
    decoded = decode_packet(packet)
    assert decoded.seq == seq and decoded.message == message
    assert PacketDecoder().feed(packet)[0].message == message
    wire = encode_message(message, seq, Framing.STREAM)  # type: ignore[arg-type]
    assert wire == stuff(packet)
    out = StreamDecoder().feed(wire)
    assert len(out) == 1 and out[0].message == message and out[0].seq == seq
