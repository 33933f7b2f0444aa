"""Commands: every command answers with its request id; latency; malformed commands get errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from knotsense.hil.measure import capture, fmt_ms, percentiles
from knotsense.hil.plugin import StreamHandle
from knotsense.hil.report import BenchReport
from knotsense.hil.target import Client, Target
from knotsense.protocol import (
    UNREADABLE_OPCODE,
    UNREADABLE_REQUEST_ID,
    Command,
    CommandBody,
    DeviceInfo,
    Framing,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    Opcode,
    Ping,
    ReadCalibration,
    ReadThresholds,
    Response,
    SetStreamConfig,
    StatusCode,
    StopStream,
    build_frame,
    stuff,
)

LATENCY_PINGS = 100
ANSWER_TIMEOUT_S = 3.0


def wait_response(
    client: Client, request_id: int, timeout: float = ANSWER_TIMEOUT_S
) -> list[Response]:
    """Responses with *request_id* seen by the raw tap within *timeout* (waits for the first).

    The stream is read meanwhile (a virtual-time simulator only runs while someone reads).
    """

    def found() -> list[Response]:
        return [r for r in client.tap.responses() if r.request_id == request_id]

    async def go(adev: object) -> list[Response]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not found():
            await capture(adev, 1e9, wall_limit=0.05, idle_timeout=0.05)  # type: ignore[arg-type]
        if found():  # let a duplicate answer show itself
            await capture(adev, 1e9, wall_limit=0.05, idle_timeout=0.05)  # type: ignore[arg-type]
        return found()

    return client.run(go, timeout + 30.0)


def raw_frame(client: Client, payload: bytes, *, bad_crc: bool = False) -> bytes:
    """A command frame (type 0x10) with an arbitrary payload, as this link carries it."""
    frame = bytearray(build_frame(Command.TYPE, client.next_seq(), payload))
    if bad_crc:
        frame[-1] ^= 0x5A
    return stuff(bytes(frame)) if client.adev.transport.framing is Framing.STREAM else bytes(frame)


def commands(info: DeviceInfo) -> list[tuple[CommandBody, StatusCode]]:
    """Commands safe to send to any device, with the status each must get."""
    rate = max(info.sample_rates)
    all_ch = (1 << info.channel_count) - 1
    return [
        (Ping(b"knotsense-hil"), StatusCode.OK),
        (GetInfo(), StatusCode.OK),
        (GetStatus(), StatusCode.OK),
        (GetStreamConfig(), StatusCode.OK),
        (ReadThresholds(), StatusCode.OK),
        (ReadCalibration(0, 16), StatusCode.OK),
        (StopStream(), StatusCode.OK),
        (SetStreamConfig(rate, all_ch, 4), StatusCode.OK),
        (SetStreamConfig(rate + 1, all_ch, 4), StatusCode.BAD_ARGUMENT),
        (SetStreamConfig(rate, 0, 4), StatusCode.BAD_ARGUMENT),
    ]


def test_every_command_answers_with_its_request_id(
    hil_client: Client, device_info: DeviceInfo, bench_report: BenchReport
) -> None:
    hil_client.device.stop_stream()
    problems = []
    for k, (body, expected) in enumerate(commands(device_info)):
        request_id = 0x4800 + k * 17
        hil_client.send_raw(hil_client.encode(request_id, body))
        answers = wait_response(hil_client, request_id)
        name = type(body).__name__
        if len(answers) != 1:
            problems.append(f"{name} (id {request_id:#06x}): {len(answers)} answers")
            continue
        answer = answers[0]
        if answer.opcode != body.OPCODE:
            problems.append(f"{name}: opcode {answer.opcode:#04x} in the answer")
        allowed = {expected}
        if expected is StatusCode.BAD_ARGUMENT and isinstance(body, SetStreamConfig):
            allowed.add(StatusCode.UNSUPPORTED)  # an unadvertised rate may be either
        if answer.status not in allowed:
            problems.append(f"{name}: status {answer.status!r}, expected {expected.name}")
        if answer.status == StatusCode.OK:
            answer.parse_result()  # the result decodes for its opcode
    # Through the client as well: its request ids come back on every answer.
    before = len(hil_client.tap.responses())
    hil_client.device.get_status()
    hil_client.device.ping(b"x")
    seen = hil_client.tap.responses()[before:]
    sent_ids = [r.request_id for r in seen]
    assert len(set(sent_ids)) == len(sent_ids) == 2, f"answers to client requests: {seen}"
    assert not problems, "; ".join(problems)
    bench_report.add("Commands", "request ids echoed", f"{len(commands(device_info)) + 2} commands")


def test_command_latency(hil_client: Client, hil_target: Target, bench_report: BenchReport) -> None:
    """Round trip of PING and GET_STATUS, idle and while streaming at the highest rate."""
    dev = hil_client.device
    note = "virtual-time simulator: host compute time" if hil_target.virtual_time else ""
    retries0 = dev.stats["command_retries"]
    idle = [dev.ping(b"latency") * 1e3 for _ in range(LATENCY_PINGS)]
    status = []
    for _ in range(LATENCY_PINGS // 4):
        t0 = time.monotonic()
        dev.get_status()
        status.append((time.monotonic() - t0) * 1e3)
    info = dev.info or dev.get_info()
    dev.start_stream(rate_hz=max(info.sample_rates))
    try:
        busy = [dev.ping(b"latency") * 1e3 for _ in range(LATENCY_PINGS // 2)]
    finally:
        dev.stop_stream()
    bench_report.add("Command latency", "PING idle", fmt_ms(percentiles(idle)), note)
    bench_report.add("Command latency", "GET_STATUS idle", fmt_ms(percentiles(status)), note)
    bench_report.add("Command latency", "PING while streaming", fmt_ms(percentiles(busy)), note)
    assert dev.stats["command_retries"] == retries0, "commands needed retries on a clean link"
    if not hil_target.has_faults:
        assert percentiles(idle)["p99"] < 1000.0


BAD_FRAMES = {
    # case: (payload, expected (request id, opcode, status) or None for "no answer", counter)
    "unknown opcode": (b"\x01\x51\x7e", (0x5101, 0x7E, StatusCode.UNKNOWN_COMMAND)),
    "payload of 1 byte": (
        b"\x02",
        (UNREADABLE_REQUEST_ID, UNREADABLE_OPCODE, StatusCode.MALFORMED),
    ),
    "arguments too short": (
        b"\x03\x51" + bytes([Opcode.SET_STREAM_CONFIG]) + b"\x01",
        (0x5103, Opcode.SET_STREAM_CONFIG, StatusCode.MALFORMED),
    ),
    "PING data of 65 bytes": (
        b"\x04\x51" + bytes([Opcode.PING]) + bytes(65),
        (0x5104, Opcode.PING, StatusCode.MALFORMED),
    ),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_malformed_command_gets_error_and_stream_continues(
    case: str, fresh_stream: StreamHandle, hil_client: Client
) -> None:
    payload, (req, opcode, status) = BAD_FRAMES[case]
    before = fresh_stream.capture(0.3, wall_limit=20.0)
    assert before.samples, "the stream did not start"
    hil_client.send_raw(raw_frame(hil_client, payload))
    answers = wait_response(hil_client, req)
    after = fresh_stream.capture(1.0, wall_limit=30.0)
    assert len(answers) == 1, f"{len(answers)} answers with request id {req:#06x}"
    answer = answers[0]
    assert (answer.request_id, answer.opcode) == (req, opcode)
    assert answer.status == status, (
        f"status {answer.status!r}, docs/protocol.md 10.3 says {status.name}"
    )
    assert after.samples, "the stream stopped after a malformed command"
    assert not after.gaps and after.delta("seq_gaps") == 0, "samples lost after a malformed command"


@pytest.mark.parametrize("case", ["bad CRC", "broken framing"])
def test_corrupt_command_is_counted_not_answered(
    case: str, fresh_stream: StreamHandle, hil_client: Client
) -> None:
    """A frame failing the frame checks gets no answer; the device counts it in Status."""
    dev = hil_client.device
    status0 = dev.get_status()
    if case == "bad CRC":
        data = raw_frame(hil_client, b"\x05\x51" + bytes([Opcode.PING]), bad_crc=True)
    elif hil_client.adev.transport.framing is Framing.STREAM:
        data = b"\x03\x11\x22\x00"  # a 2-byte segment: too short for a frame
    else:
        data = b"\x01\x10\x00"  # a 3-byte packet
    hil_client.send_raw(data)
    assert not wait_response(hil_client, 0x5105, timeout=0.5), "a corrupt command was answered"
    after = fresh_stream.capture(0.5, wall_limit=20.0)
    status1 = dev.get_status()
    if case == "bad CRC":
        assert status1.rx_crc_errors == status0.rx_crc_errors + 1
    else:
        assert status1.rx_framing_errors == status0.rx_framing_errors + 1
    assert after.samples and not after.gaps, "the stream suffered from a corrupt command"
