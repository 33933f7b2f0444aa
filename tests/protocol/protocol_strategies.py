"""Hypothesis strategies for every protocol v1 record (imported by the protocol tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from knotsense.protocol import (
    MESSAGE_TYPES,
    CalibrationChunk,
    ChannelInfo,
    ChannelWeight,
    Command,
    CommitCalibration,
    DeviceEvent,
    DeviceInfo,
    EmptyResult,
    Encoding,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    LogText,
    Opcode,
    Ping,
    PingResult,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    Response,
    SampleBlock,
    SetStreamConfig,
    StartStream,
    Status,
    StatusCode,
    StopStream,
    StreamConfig,
    Tare,
    TareResult,
    Thresholds,
    UnknownCommand,
    UnknownMessage,
    WriteCalibration,
    WriteThresholds,
)
from knotsense.protocol.commands import COMMAND_BODIES, RESULT_TYPES

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Derandomized (a fixed seed per test), no example database: every run tries the same
examples. Also registered as the hypothesis profile ``knotsense-protocol``."""
settings.register_profile("knotsense-protocol", SETTINGS)


def fast(n: int) -> settings:
    """The profile with *n* examples."""
    return settings(SETTINGS, max_examples=n)


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i16 = st.integers(-(1 << 15), (1 << 15) - 1)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
short_text = st.text(max_size=20).filter(lambda s: len(s.encode()) <= 255)

channel_infos = st.builds(ChannelInfo, u8, i16.map(lambda v: v / 10), i16.map(lambda v: v / 10))

device_infos = st.builds(
    DeviceInfo,
    u8,
    u8,
    st.tuples(u8, u8, u16),
    u8,
    u8,
    u8,
    u32,
    st.lists(u16, max_size=8).map(tuple),
    st.lists(channel_infos, min_size=0, max_size=8).map(tuple),
    short_text,
    short_text,
)
stream_configs = st.builds(StreamConfig, u16, u8, u8, u32, u8, st.booleans(), u16)
ENCODINGS = (Encoding.INT16, Encoding.INT24, Encoding.INT32)


@st.composite
def sample_blocks(draw: st.DrawFn, max_payload: int | None = None) -> SampleBlock:
    enc = draw(st.sampled_from(ENCODINGS))
    mask = draw(u8)
    c = mask.bit_count()
    limit = 255 if max_payload is None else (max_payload - 18) // max(1, c * int(enc))
    n = draw(st.integers(0, min(255, limit, 40)))
    bits = 8 * int(enc)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = draw(
        st.lists(
            st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, -1, 0])),
            min_size=n * c,
            max_size=n * c,
        )
    )
    samples = np.array(values, dtype=np.int64).reshape(n, c).astype(np.int32)
    return SampleBlock(
        draw(u32), draw(u32), draw(u32), mask, enc, samples, draw(u8), draw(u8), draw(u8)
    )


device_events = st.builds(DeviceEvent, u32, u8, u8, i32)
statuses = st.builds(
    Status,
    u32,
    u32,
    u16,
    u8,
    u8,
    i16.map(lambda v: v / 100),
    u8,
    u32,
    u32,
    u32,
    u32,
    u32,
)
log_texts = st.builds(LogText, u8, st.text(max_size=60))
unknown_messages = st.builds(
    UnknownMessage,
    u8.filter(lambda t: t not in MESSAGE_TYPES),
    st.binary(max_size=60),
)
thresholds = st.builds(
    Thresholds,
    u8,
    u16,
    u16,
    i32,
    i32,
    i32,
    st.lists(st.builds(ChannelWeight, i32, i32), max_size=8).map(tuple),
)

FIXED_BODIES = st.one_of(
    st.builds(GetInfo),
    st.builds(StartStream),
    st.builds(StopStream),
    st.builds(SetStreamConfig, u16, u8, u8),
    st.builds(GetStreamConfig),
    st.builds(Tare, u8, u16),
    st.builds(ReadCalibration, u16, u8),
    st.builds(CommitCalibration, u32, u16, u16),
    st.builds(ReadThresholds),
    st.builds(WriteThresholds, thresholds),
    st.builds(Reboot),
    st.builds(GetStatus),
)
"""Bodies whose arguments have a fixed layout (trailing bytes are ignored)."""
command_bodies = st.one_of(
    FIXED_BODIES,
    st.builds(Ping, st.binary(max_size=64)),
    st.builds(WriteCalibration, u16, u16, st.binary(max_size=60)),
    st.builds(UnknownCommand, u8.filter(lambda o: o not in COMMAND_BODIES), st.binary(max_size=30)),
)
commands = st.builds(Command, u16, command_bodies)

RESULTS = {
    PingResult: st.builds(PingResult, st.binary(max_size=64)),
    DeviceInfo: device_infos,
    StreamConfig: stream_configs,
    Status: statuses,
    Thresholds: thresholds,
    TareResult: st.lists(i32, max_size=8).flatmap(
        lambda zs: st.just(TareResult((1 << len(zs)) - 1, tuple(zs)))
    ),
    CalibrationChunk: st.builds(CalibrationChunk, u32, u16, u16, st.binary(max_size=60)),
    EmptyResult: st.just(EmptyResult()),
}


@st.composite
def ok_responses(draw: st.DrawFn) -> tuple[Response, object]:
    """An OK response and the result record it carries."""
    opcode = draw(st.sampled_from(sorted(RESULT_TYPES)))
    result = draw(RESULTS[RESULT_TYPES[opcode]])
    return Response(draw(u16), opcode, StatusCode.OK, result.encode()), result


responses = st.one_of(
    ok_responses().map(lambda pair: pair[0]),
    st.builds(Response, u16, u8, st.integers(1, 255)),
    st.builds(Response, u16, u8, u8, st.binary(max_size=40)),
)

messages = st.one_of(
    device_infos,
    stream_configs,
    sample_blocks(),
    device_events,
    statuses,
    log_texts,
    unknown_messages,
    commands,
    responses,
)


def fits(message: object) -> bool:
    from knotsense.protocol import MAX_PAYLOAD_SIZE

    return len(message.encode()) <= MAX_PAYLOAD_SIZE  # type: ignore[attr-defined]


frame_messages = st.one_of(
    sample_blocks(max_payload=236),
    sample_blocks(max_payload=236),
    messages,
).filter(fits)
"""Messages that fit one frame, sample blocks weighted up."""

__all__ = ["SETTINGS", "Opcode"]
