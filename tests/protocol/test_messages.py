"""Messages, commands and results: round trips, forward compatibility, malformed payloads."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import (
    FIXED_BODIES,
    SETTINGS,
    command_bodies,
    commands,
    device_events,
    device_infos,
    fast,
    log_texts,
    messages,
    ok_responses,
    responses,
    sample_blocks,
    statuses,
    stream_configs,
    thresholds,
    unknown_messages,
)

from knotsense.errors import MessageError
from knotsense.protocol import (
    MESSAGE_TYPES,
    RESULT_TYPES,
    ChannelInfo,
    ChannelWeight,
    Command,
    DeviceEvent,
    DeviceInfo,
    Encoding,
    EventCode,
    LogText,
    MessageType,
    Opcode,
    Ping,
    Response,
    SampleBlock,
    SampleUnit,
    SensorKind,
    Status,
    StatusCode,
    StreamConfig,
    Thresholds,
    UnknownCommand,
    UnknownMessage,
    decode_message,
)
from knotsense.protocol.commands import COMMAND_BODIES, UNREADABLE_OPCODE, UNREADABLE_REQUEST_ID


def round_trip(message: object) -> object:
    payload = message.encode()  # type: ignore[attr-defined]
    return decode_message(message.TYPE, payload)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "strategy",
    [
        device_infos,
        stream_configs,
        sample_blocks(),
        device_events,
        statuses,
        log_texts,
        unknown_messages,
        commands,
        responses,
    ],
    ids=lambda s: repr(s)[:30],
)
def test_round_trip_every_message(strategy: st.SearchStrategy) -> None:
    @SETTINGS
    @given(strategy)
    def check(message: object) -> None:
        decoded = round_trip(message)
        assert decoded == message
        assert type(decoded) is type(message)
        assert decoded.encode() == message.encode()  # type: ignore[attr-defined]

    check()


def test_message_registry_is_complete() -> None:
    assert set(MESSAGE_TYPES) == {int(t) for t in MessageType}
    assert set(COMMAND_BODIES) == {int(o) for o in Opcode}
    assert set(RESULT_TYPES) == {int(o) for o in Opcode}


@SETTINGS
@given(command_bodies, st.integers(0, 0xFFFF))
def test_command_body_round_trip(body: object, request_id: int) -> None:
    command = Command(request_id, body)  # type: ignore[arg-type]
    decoded = Command.decode(command.encode())
    assert decoded == command
    assert decoded.opcode == command.opcode


@SETTINGS
@given(ok_responses())
def test_result_round_trip(pair: tuple[Response, object]) -> None:
    response, result = pair
    decoded = Response.decode(response.encode())
    assert decoded.parse_result() == result
    assert type(decoded.parse_result()) is RESULT_TYPES[response.opcode]


def test_each_command_is_typed_with_the_result_it_parses() -> None:
    """CommandBody[R].parse_result narrows to R by a cast; this keeps the cast true."""
    import typing

    for cls in COMMAND_BODIES.values():
        (base,) = [b for b in cls.__orig_bases__ if typing.get_origin(b) is not None]
        assert typing.get_args(base) == (cls.RESULT,), cls.__name__
        assert RESULT_TYPES[cls.OPCODE] is cls.RESULT


@SETTINGS
@given(ok_responses())
def test_a_command_parses_its_own_result(pair: tuple[Response, object]) -> None:
    response, result = pair
    body_cls = COMMAND_BODIES[response.opcode]
    parsed = body_cls.parse_result(None, Response.decode(response.encode()))  # type: ignore[arg-type]
    assert parsed == result and type(parsed) is body_cls.RESULT


# --- forward compatibility ----------------------------------------------------------------

tail = st.binary(min_size=1, max_size=16)


@SETTINGS
@given(
    st.one_of(device_infos, stream_configs, sample_blocks(), device_events, statuses),
    tail,
)
def test_unknown_trailing_fields_are_ignored(message: object, extra: bytes) -> None:
    payload = message.encode() + extra  # type: ignore[attr-defined]
    assert decode_message(message.TYPE, payload) == message  # type: ignore[attr-defined]


@SETTINGS
@given(FIXED_BODIES, st.integers(0, 0xFFFF), tail)
def test_unknown_trailing_arguments_are_ignored(body: object, rid: int, extra: bytes) -> None:
    command = Command(rid, body)  # type: ignore[arg-type]
    assert Command.decode(command.encode() + extra) == command


@SETTINGS
@given(ok_responses(), tail)
def test_unknown_trailing_result_fields_are_ignored(pair: tuple, extra: bytes) -> None:
    response, result = pair
    if response.opcode in (Opcode.PING, Opcode.READ_CALIBRATION):
        return  # their last field is "the rest of the payload"
    longer = Response(
        response.request_id, response.opcode, response.status, response.result + extra
    )
    assert Response.decode(longer.encode()).parse_result() == result


def test_device_info_without_model() -> None:
    info = DeviceInfo(
        1, 0, (1, 2, 3), 4, 24, SampleUnit.COUNTS, 7, (10, 80), (ChannelInfo(1, -1.5, 2.5),), "SN"
    )
    payload = info.encode()
    assert payload.endswith(b"\x02SN\x00")
    assert DeviceInfo.decode(payload[:-1]) == info


def test_unknown_enum_values_are_kept() -> None:
    event = DeviceEvent.decode(DeviceEvent(5, 0xC8, 3, -7).encode())
    assert event.code == 0xC8 and not isinstance(event.code, EventCode)
    assert DeviceEvent.decode(DeviceEvent(5, 8, 1, 0).encode()).code is EventCode.BOOT
    info = DeviceInfo(1, 3, (0, 0, 0), 0, 0, 9, 0, (), (ChannelInfo(77, 0.0, 0.0),), "", "")
    back = DeviceInfo.decode(info.encode())
    assert back.units == 9 and back.channels[0].kind == 77
    status = Status(0, 0, 0, 0xFF, 0xF1, 0.0, 42, 0, 0, 0, 0, 0)
    back_status = Status.decode(status.encode())
    assert int(back_status.flags) == 0xF1 and back_status.reset_reason == 42
    response = Response.decode(Response(1, 2, 0x42).encode())
    assert response.status == 0x42
    assert Command.decode(Command(1, UnknownCommand(0x7F, b"ab")).encode()).body == UnknownCommand(
        0x7F, b"ab"
    )
    assert decode_message(0x7E, b"xyz") == UnknownMessage(0x7E, b"xyz")


# --- malformed payloads -------------------------------------------------------------------


def _prefixes_must_fail(message: object, valid_lengths: set[int]) -> None:
    payload = message.encode()  # type: ignore[attr-defined]
    for n in range(len(payload)):
        if n in valid_lengths:
            continue
        with pytest.raises(MessageError):
            decode_message(message.TYPE, payload[:n])  # type: ignore[attr-defined]


@fast(25)
@given(st.one_of(stream_configs, device_events, statuses, sample_blocks(), thresholds))
def test_truncated_fixed_payloads_raise(message: object) -> None:
    if isinstance(message, Thresholds):
        payload = message.encode()
        for n in range(len(payload)):
            with pytest.raises(MessageError):
                Thresholds.decode(payload[:n])
        return
    _prefixes_must_fail(message, set())


@fast(25)
@given(device_infos)
def test_truncated_device_info_raises(info: DeviceInfo) -> None:
    full = info.encode()
    without_model = len(full) - 1 - len(info.model.encode())
    _prefixes_must_fail(info, {without_model})


def test_malformed_examples() -> None:
    with pytest.raises(MessageError):
        LogText.decode(b"")
    with pytest.raises(MessageError):
        Command.decode(b"\x01\x00")
    with pytest.raises(MessageError):
        Response.decode(b"\x01\x00\x01")
    with pytest.raises(MessageError, match="Ping"):
        Command.decode(b"\x01\x00\x01" + bytes(65))
    assert Command.decode(b"\x01\x00\x01" + bytes(64)).body == Ping(bytes(64))
    for opcode in (Opcode.SET_STREAM_CONFIG, Opcode.TARE, Opcode.READ_CALIBRATION):
        with pytest.raises(MessageError):
            Command.decode(bytes([1, 0, opcode, 0]))
    block = bytearray(SampleBlock(0, 0, 0, 1, Encoding.INT16, np.zeros((1, 1), np.int32)).encode())
    block[13] = 5
    with pytest.raises(MessageError, match="encoding"):
        SampleBlock.decode(bytes(block))
    info = bytearray(DeviceInfo(1, 0, (0, 0, 0), 0, 0, 0, 0, (), (), "ab", "").encode())
    info[-3] = 0xFF  # serial number bytes: invalid UTF-8
    with pytest.raises(MessageError, match="UTF-8"):
        DeviceInfo.decode(bytes(info))
    ok = Response(1, Opcode.TARE, StatusCode.OK, b"\x03\x01\x00\x00\x00")
    with pytest.raises(MessageError):
        ok.parse_result()  # mask says 2 zeros, 1 present
    with pytest.raises(MessageError):
        Response(1, Opcode.PING, StatusCode.BAD_ARGUMENT).parse_result()
    with pytest.raises(MessageError):
        Response(1, 0x7F, StatusCode.OK).parse_result()


def test_log_text_replaces_invalid_utf8() -> None:
    assert LogText.decode(b"\x1eab\xffc") == LogText(30, "ab\ufffdc")


@SETTINGS
@given(st.integers(0, 255), st.binary(max_size=80))
def test_random_payloads_raise_only_message_error(msg_type: int, payload: bytes) -> None:
    try:
        message = decode_message(msg_type, payload)
    except MessageError:
        return
    if isinstance(message, Response) and message.status == StatusCode.OK:
        with contextlib.suppress(MessageError):
            message.parse_result()


# --- helpers, sizes and the load index ----------------------------------------------------


def test_response_helpers() -> None:
    command = Command(0x1234, Ping(b"x"))
    assert Response.ok(command, Ping(b"x").encode_args()).encode().hex() == "34120100" + "78"
    assert Response.error(command, StatusCode.BAD_ARGUMENT) == Response(0x1234, 1, 2)
    unreadable = Response.error(None, StatusCode.MALFORMED)
    assert (unreadable.request_id, unreadable.opcode) == (UNREADABLE_REQUEST_ID, UNREADABLE_OPCODE)
    assert unreadable.encode().hex() == "ffffff08"
    config = StreamConfig(250, 3, 2, 4_000_000, 13, True, 244)
    assert Response.ok(Command(1, Ping()), config).result == config.encode()


def test_sample_encodings_on_the_wire() -> None:
    rows = np.array([[-2, 0x123456]], dtype=np.int32)
    b24 = SampleBlock(0, 0, 0, 3, Encoding.INT24, rows).encode()[18:]
    assert b24.hex() == "feffff563412"
    b32 = SampleBlock(0, 0, 0, 3, Encoding.INT32, rows).encode()[18:]
    assert b32.hex() == "feffffff56341200"
    b16 = SampleBlock(0, 0, 0, 3, Encoding.INT16, np.array([[-2, 1], [3, -32768]])).encode()[18:]
    assert b16.hex() == "feff010003000080"  # sample-major
    with pytest.raises(MessageError):
        SampleBlock(0, 0, 0, 1, Encoding.INT16, np.array([[40000]])).encode()
    with pytest.raises(MessageError):
        SampleBlock(0, 0, 0, 3, Encoding.INT16, np.zeros((1, 1))).encode()


@pytest.mark.parametrize("encoding", [Encoding.INT16, Encoding.INT24, Encoding.INT32])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("frame_limit", [20, 26, 27, 40, 100, 182, 244])
def test_max_samples_fills_the_frame(encoding: Encoding, channels: int, frame_limit: int) -> None:
    n = SampleBlock.max_samples(frame_limit, channels, encoding)
    assert n == min(255, max(0, (frame_limit - 8 - 18) // (channels * int(encoding))))

    def size(k: int) -> int:
        samples = np.zeros((k, channels), dtype=np.int32)
        return 8 + len(SampleBlock(0, 0, 0, (1 << channels) - 1, encoding, samples).encode())

    if n:
        assert size(n) <= frame_limit
    assert size(n + 1) > frame_limit or n == 255


@SETTINGS
@given(thresholds.filter(lambda t: t.channels), st.data())
def test_load_index_is_floor_of_int64_sum(t: Thresholds, data: st.DataObject) -> None:
    raw = [data.draw(st.integers(-(1 << 24), (1 << 24) - 1)) for _ in t.channels]
    exact = sum((r - c.zero) * c.weight_q16 for r, c in zip(raw, t.channels, strict=True))
    assert t.load_index(raw) == exact // 65536
    if abs(exact) < (1 << 62):
        s = np.int64(0)
        for r, c in zip(raw, t.channels, strict=True):
            s += (np.int64(r) - np.int64(c.zero)) * np.int64(c.weight_q16)
        assert t.load_index(raw) == int(s >> np.int64(16))


def test_load_index_rounds_toward_minus_infinity() -> None:
    t = Thresholds(0, 0, 0, 0, 0, 0, (ChannelWeight(0, 1),))
    assert t.load_index([-1]) == -1
    assert t.load_index([65535]) == 0
    assert t.load_index([65536]) == 1
    assert t.load_index([-65537]) == -2


def test_every_message_class_has_a_strategy() -> None:
    @fast(200)
    @given(messages)
    def collect(m: object) -> None:
        seen.add(type(m))

    seen: set[type] = set()
    collect()
    assert seen >= {*MESSAGE_TYPES.values(), UnknownMessage}
    assert SensorKind.LOAD_CELL == 1
