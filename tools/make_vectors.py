"""Generate protocol/vectors.json, the spec test vectors of protocol v1.

A build tool of the repository, not part of the package (the wheel does not
ship ``tools/``). Run ``python tools/make_vectors.py`` from a checkout to
regenerate ``protocol/vectors.json`` (``--check`` compares instead of
writing, ``--output PATH`` writes elsewhere). The committed JSON is the source of truth that a C
implementation tests against; docs/protocol.md section "Test vectors"
describes its layout.

Every value is a JSON number, a string, a list of numbers, or a hex string
(lowercase, no separators): field values are the integers that travel on the
wire (0.1 mm, 0.01 degC, enum codes), so a C test compares them directly.

This module also holds the mapping between messages and those flat fields
(:func:`message_fields`, :func:`message_from_fields`), which the tests use to
check the file against the encoder and decoder in both directions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.protocol import cobs
from knotsense.protocol.codec import Framing, encode_message
from knotsense.protocol.commands import (
    CALIBRATION_CAPACITY,
    MAX_PING_DATA,
    RESULT_TYPES,
    UNREADABLE_OPCODE,
    UNREADABLE_REQUEST_ID,
    CalibrationChunk,
    ChannelWeight,
    Command,
    CommandBody,
    CommitCalibration,
    EmptyResult,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    Opcode,
    Ping,
    PingResult,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    Response,
    SetStreamConfig,
    StartStream,
    StatusCode,
    StopStream,
    Tare,
    TareResult,
    ThresholdFlags,
    Thresholds,
    UnknownCommand,
    WriteCalibration,
    WriteThresholds,
)
from knotsense.protocol.crc import crc16
from knotsense.protocol.frame import (
    MAX_ENCODED_SIZE,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_SIZE,
    PROTOCOL_MINOR,
    PROTOCOL_VERSION,
    build_frame,
    frame_size_for_mtu,
    stuff,
)
from knotsense.protocol.messages import (
    BlockFlags,
    ChannelInfo,
    DeviceEvent,
    DeviceInfo,
    Encoding,
    EventCode,
    LogText,
    Message,
    ResetReason,
    SampleBlock,
    SampleUnit,
    SensorKind,
    Status,
    StatusFlags,
    StreamConfig,
    UnknownMessage,
)

FORMAT = "knotsense-protocol-vectors"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "protocol" / "vectors.json"


# --- flat fields <-> records ----------------------------------------------------------------


def _hex(data: bytes) -> str:
    return bytes(data).hex()


def _unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def device_info_fields(m: DeviceInfo) -> dict[str, Any]:
    return {
        "protocol_major": m.protocol_major,
        "protocol_minor": m.protocol_minor,
        "fw_major": m.firmware_version[0],
        "fw_minor": m.firmware_version[1],
        "fw_patch": m.firmware_version[2],
        "hw_revision": m.hw_revision,
        "adc_bits": m.adc_bits,
        "units": int(m.units),
        "channel_count": len(m.channels),
        "calibration_id": m.calibration_id,
        "rate_count": len(m.sample_rates),
        "sample_rates": list(m.sample_rates),
        "channel_kind": [int(c.kind) for c in m.channels],
        "channel_x_01mm": [round(c.x_mm * 10) for c in m.channels],
        "channel_y_01mm": [round(c.y_mm * 10) for c in m.channels],
        "serial_number": m.serial_number,
        "model": m.model,
    }


def device_info_from(f: dict[str, Any]) -> DeviceInfo:
    return DeviceInfo(
        f["protocol_major"],
        f["protocol_minor"],
        (f["fw_major"], f["fw_minor"], f["fw_patch"]),
        f["hw_revision"],
        f["adc_bits"],
        f["units"],
        f["calibration_id"],
        tuple(f["sample_rates"]),
        tuple(
            ChannelInfo(k, x / 10, y / 10)
            for k, x, y in zip(
                f["channel_kind"], f["channel_x_01mm"], f["channel_y_01mm"], strict=True
            )
        ),
        f["serial_number"],
        f["model"],
    )


def stream_config_fields(m: StreamConfig) -> dict[str, Any]:
    return {
        "rate_hz": m.rate_hz,
        "channel_mask": m.channel_mask,
        "encoding": int(m.encoding),
        "period_ns": m.period_ns,
        "samples_per_block": m.samples_per_block,
        "streaming": int(m.streaming),
        "max_frame_size": m.max_frame_size,
    }


def stream_config_from(f: dict[str, Any]) -> StreamConfig:
    return StreamConfig(
        f["rate_hz"],
        f["channel_mask"],
        f["encoding"],
        f["period_ns"],
        f["samples_per_block"],
        bool(f["streaming"]),
        f["max_frame_size"],
    )


def sample_block_fields(m: SampleBlock) -> dict[str, Any]:
    return {
        "t_first_us": m.t_first_us,
        "sample_index": m.sample_index,
        "period_ns": m.period_ns,
        "channel_mask": m.channel_mask,
        "encoding": int(m.encoding),
        "flags": int(m.flags),
        "saturated_mask": m.saturated_mask,
        "fault_mask": m.fault_mask,
        "n_samples": m.n_samples,
        "channel_count": m.channel_count,
        "samples": [int(v) for v in np.asarray(m.samples).reshape(-1)],
    }


def sample_block_from(f: dict[str, Any]) -> SampleBlock:
    samples = np.array(f["samples"], dtype=np.int32).reshape(f["n_samples"], f["channel_count"])
    return SampleBlock(
        f["t_first_us"],
        f["sample_index"],
        f["period_ns"],
        f["channel_mask"],
        f["encoding"],
        samples,
        f["flags"],
        f["saturated_mask"],
        f["fault_mask"],
    )


def device_event_fields(m: DeviceEvent) -> dict[str, Any]:
    return {"t_us": m.t_us, "code": int(m.code), "arg": m.arg, "value": m.value}


def device_event_from(f: dict[str, Any]) -> DeviceEvent:
    return DeviceEvent(f["t_us"], f["code"], f["arg"], f["value"])


def status_fields(m: Status) -> dict[str, Any]:
    return {
        "t_us": m.t_us,
        "uptime_s": m.uptime_s,
        "battery_mv": m.battery_mv,
        "battery_pct": m.battery_pct,
        "flags": int(m.flags),
        "temperature_cdeg": round(m.temperature_c * 100),
        "reset_reason": int(m.reset_reason),
        "frames_sent": m.frames_sent,
        "frames_dropped": m.frames_dropped,
        "rx_crc_errors": m.rx_crc_errors,
        "rx_framing_errors": m.rx_framing_errors,
        "sensor_faults": m.sensor_faults,
    }


def status_from(f: dict[str, Any]) -> Status:
    return Status(
        f["t_us"],
        f["uptime_s"],
        f["battery_mv"],
        f["battery_pct"],
        f["flags"],
        f["temperature_cdeg"] / 100,
        f["reset_reason"],
        f["frames_sent"],
        f["frames_dropped"],
        f["rx_crc_errors"],
        f["rx_framing_errors"],
        f["sensor_faults"],
    )


def thresholds_fields(t: Thresholds) -> dict[str, Any]:
    return {
        "flags": int(t.flags),
        "channel_count": len(t.channels),
        "debounce_ms": t.debounce_ms,
        "hold_s": t.hold_s,
        "release_on": t.release_on,
        "release_off": t.release_off,
        "overpressure_on": t.overpressure_on,
        "zero": [c.zero for c in t.channels],
        "weight_q16": [c.weight_q16 for c in t.channels],
    }


def thresholds_from(f: dict[str, Any]) -> Thresholds:
    return Thresholds(
        f["flags"],
        f["debounce_ms"],
        f["hold_s"],
        f["release_on"],
        f["release_off"],
        f["overpressure_on"],
        tuple(ChannelWeight(z, w) for z, w in zip(f["zero"], f["weight_q16"], strict=True)),
    )


def command_body_fields(body: CommandBody) -> dict[str, Any]:
    """The argument fields of a command body (without request id and opcode)."""
    if isinstance(body, Ping):
        return {"data": _hex(body.data)}
    if isinstance(body, SetStreamConfig):
        return {
            "rate_hz": body.rate_hz,
            "channel_mask": body.channel_mask,
            "encoding": int(body.encoding),
        }
    if isinstance(body, Tare):
        return {"channel_mask": body.channel_mask, "n_samples": body.n_samples}
    if isinstance(body, ReadCalibration):
        return {"offset": body.offset, "max_length": body.max_length}
    if isinstance(body, WriteCalibration):
        return {
            "offset": body.offset,
            "total_length": body.total_length,
            "data": _hex(body.data),
        }
    if isinstance(body, CommitCalibration):
        return {
            "calibration_id": body.calibration_id,
            "total_length": body.total_length,
            "crc": body.crc,
        }
    if isinstance(body, WriteThresholds):
        return thresholds_fields(body.thresholds)
    if isinstance(body, UnknownCommand):
        return {"args": _hex(body.args)}
    return {}


def command_body_from(opcode: int, f: dict[str, Any]) -> CommandBody:
    if opcode == Opcode.PING:
        return Ping(_unhex(f["data"]))
    if opcode == Opcode.SET_STREAM_CONFIG:
        return SetStreamConfig(f["rate_hz"], f["channel_mask"], f["encoding"])
    if opcode == Opcode.TARE:
        return Tare(f["channel_mask"], f["n_samples"])
    if opcode == Opcode.READ_CALIBRATION:
        return ReadCalibration(f["offset"], f["max_length"])
    if opcode == Opcode.WRITE_CALIBRATION:
        return WriteCalibration(f["offset"], f["total_length"], _unhex(f["data"]))
    if opcode == Opcode.COMMIT_CALIBRATION:
        return CommitCalibration(f["calibration_id"], f["total_length"], f["crc"])
    if opcode == Opcode.WRITE_THRESHOLDS:
        return WriteThresholds(thresholds_from(f))
    simple = {
        Opcode.GET_INFO: GetInfo,
        Opcode.START_STREAM: StartStream,
        Opcode.STOP_STREAM: StopStream,
        Opcode.GET_STREAM_CONFIG: GetStreamConfig,
        Opcode.READ_THRESHOLDS: ReadThresholds,
        Opcode.REBOOT: Reboot,
        Opcode.GET_STATUS: GetStatus,
    }
    if opcode in simple:
        return simple[opcode]()
    return UnknownCommand(opcode, _unhex(f["args"]))


def result_fields(result: object) -> dict[str, Any]:
    """The fields of a parsed response result."""
    if isinstance(result, DeviceInfo):
        return device_info_fields(result)
    if isinstance(result, StreamConfig):
        return stream_config_fields(result)
    if isinstance(result, Status):
        return status_fields(result)
    if isinstance(result, Thresholds):
        return thresholds_fields(result)
    if isinstance(result, TareResult):
        return {"channel_mask": result.channel_mask, "zeros": list(result.zeros)}
    if isinstance(result, CalibrationChunk):
        return {
            "calibration_id": result.calibration_id,
            "total_length": result.total_length,
            "offset": result.offset,
            "data": _hex(result.data),
        }
    if isinstance(result, PingResult):
        return {"data": _hex(result.data)}
    if isinstance(result, EmptyResult):
        return {}
    raise TypeError(f"not a result record: {result!r}")


_RESULT_FROM = {
    "DeviceInfo": device_info_from,
    "StreamConfig": stream_config_from,
    "Status": status_from,
    "Thresholds": thresholds_from,
    "TareResult": lambda f: TareResult(f["channel_mask"], tuple(f["zeros"])),
    "CalibrationChunk": lambda f: CalibrationChunk(
        f["calibration_id"], f["total_length"], f["offset"], _unhex(f["data"])
    ),
    "PingResult": lambda f: PingResult(_unhex(f["data"])),
    "EmptyResult": lambda f: EmptyResult(),
}


def result_from_fields(result_type: str, f: dict[str, Any]) -> object:
    return _RESULT_FROM[result_type](f)


def message_fields(m: Message) -> dict[str, Any]:
    """Flat JSON fields of a message (wire integers, bytes as hex)."""
    if isinstance(m, DeviceInfo):
        return device_info_fields(m)
    if isinstance(m, StreamConfig):
        return stream_config_fields(m)
    if isinstance(m, SampleBlock):
        return sample_block_fields(m)
    if isinstance(m, DeviceEvent):
        return device_event_fields(m)
    if isinstance(m, Status):
        return status_fields(m)
    if isinstance(m, LogText):
        return {"level": m.level, "text": m.text}
    if isinstance(m, Command):
        return {
            "request_id": m.request_id,
            "opcode": m.opcode,
            **command_body_fields(m.body),
        }
    if isinstance(m, Response):
        out: dict[str, Any] = {
            "request_id": m.request_id,
            "opcode": m.opcode,
            "status": int(m.status),
            "result": _hex(m.result),
        }
        if m.status == StatusCode.OK and m.opcode in RESULT_TYPES:
            result = m.parse_result()
            out["result_type"] = type(result).__name__
            out.update({f"result_{k}": v for k, v in result_fields(result).items()})
        return out
    if isinstance(m, UnknownMessage):
        return {"msg_type": m.msg_type, "payload": _hex(m.payload)}
    raise TypeError(f"not a message: {m!r}")


def message_from_fields(message: str, f: dict[str, Any]) -> Message:
    """Inverse of :func:`message_fields`; *message* is the class name."""
    if message == "DeviceInfo":
        return device_info_from(f)
    if message == "StreamConfig":
        return stream_config_from(f)
    if message == "SampleBlock":
        return sample_block_from(f)
    if message == "DeviceEvent":
        return device_event_from(f)
    if message == "Status":
        return status_from(f)
    if message == "LogText":
        return LogText(f["level"], f["text"])
    if message == "Command":
        return Command(f["request_id"], command_body_from(f["opcode"], f))
    if message == "Response":
        return Response(f["request_id"], f["opcode"], f["status"], _unhex(f["result"]))
    if message == "UnknownMessage":
        return UnknownMessage(f["msg_type"], _unhex(f["payload"]))
    raise ValueError(f"unknown message class {message!r}")


# --- the example records ----------------------------------------------------------------------

INFO = DeviceInfo(
    protocol_major=PROTOCOL_VERSION,
    protocol_minor=PROTOCOL_MINOR,
    firmware_version=(1, 2, 300),
    hw_revision=3,
    adc_bits=24,
    units=SampleUnit.COUNTS,
    calibration_id=0x12345678,
    sample_rates=(10, 80, 250, 1000),
    channels=(
        ChannelInfo(SensorKind.LOAD_CELL, -12.5, 0.0),
        ChannelInfo(SensorKind.LOAD_CELL, 12.5, 0.0),
        ChannelInfo(SensorKind.FSR, 0.0, -21.7),
        ChannelInfo(SensorKind.BAROMETRIC, 0.0, 21.7),
    ),
    serial_number="KS-0012AB",
    model="KnotSense P1",
)
CONFIG = StreamConfig(
    rate_hz=250,
    channel_mask=0x0F,
    encoding=Encoding.INT16,
    period_ns=4_000_000,
    samples_per_block=27,
    streaming=True,
    max_frame_size=MAX_FRAME_SIZE,
)
STATUS = Status(
    t_us=4_000_123_456,
    uptime_s=4000,
    battery_mv=3987,
    battery_pct=81,
    flags=StatusFlags.STREAMING | StatusFlags.CALIBRATED,
    temperature_c=-3.25,
    reset_reason=ResetReason.WATCHDOG,
    frames_sent=123456,
    frames_dropped=7,
    rx_crc_errors=2,
    rx_framing_errors=1,
    sensor_faults=0,
)
THRESHOLDS = Thresholds(
    flags=ThresholdFlags.RELEASE_ENABLED | ThresholdFlags.OVERPRESSURE_ENABLED,
    debounce_ms=250,
    hold_s=60,
    release_on=80_000,
    release_off=70_000,
    overpressure_on=250_000,
    channels=(
        ChannelWeight(8_388_000, 1_966),
        ChannelWeight(-1_000, 2_000),
        ChannelWeight(0, 65_536),
        ChannelWeight(123_456, -3),
    ),
)
CAL_BLOB = bytes(range(40))


def _block(encoding: Encoding, rows: Any, **kw: Any) -> SampleBlock:
    samples = np.array(rows, dtype=np.int32)
    mask = kw.pop("channel_mask", (1 << samples.shape[1]) - 1)
    return SampleBlock(
        t_first_us=kw.pop("t_first_us", 0xFFFFFF00),
        sample_index=kw.pop("sample_index", 1000),
        period_ns=kw.pop("period_ns", 4_000_000),
        channel_mask=mask,
        encoding=encoding,
        samples=samples,
        **kw,
    )


def example_messages() -> list[tuple[str, Message]]:
    """(name, message) for every vector of the "messages" section."""
    cmd = Command  # shorthand
    out: list[tuple[str, Message]] = [
        ("device_info", INFO),
        (
            "device_info_no_model",
            DeviceInfo(
                1,
                0,
                (0, 1, 0),
                1,
                12,
                SampleUnit.MILLINEWTON,
                0,
                (100,),
                (ChannelInfo(SensorKind.FSR, 0.0, 0.0),),
                "A1",
                "",
            ),
        ),
        ("stream_config", CONFIG),
        (
            "stream_config_stopped_mtu23",
            StreamConfig(80, 0x03, Encoding.INT24, 12_500_000, 0, False, 20),
        ),
        (
            "sample_block_int16",
            _block(
                Encoding.INT16,
                [[0, 1, -1, 32767], [-32768, 256, -256, 0x1234], [100, -100, 0, -2]],
                flags=BlockFlags.OVERFLOW_BEFORE,
                saturated_mask=0x08,
            ),
        ),
        (
            "sample_block_int24",
            _block(
                Encoding.INT24,
                [[0, -1], [8_388_607, -8_388_608], [0x123456, -0x123456]],
                channel_mask=0x05,
                t_first_us=123,
                sample_index=0xFFFFFFFF,
                period_ns=12_500_000,
                fault_mask=0x04,
            ),
        ),
        (
            "sample_block_int32",
            _block(
                Encoding.INT32,
                [[2_147_483_647], [-2_147_483_648], [-1], [0x01020304]],
                channel_mask=0x80,
                period_ns=1_000_000,
            ),
        ),
        ("sample_block_no_samples", _block(Encoding.INT16, np.zeros((0, 2), dtype=np.int32))),
        (
            "device_event_release_enter",
            DeviceEvent(1_000_000, EventCode.RELEASE_ENTER, 0xFF, 81_234),
        ),
        ("device_event_boot", DeviceEvent(12, EventCode.BOOT, ResetReason.SOFTWARE, 0)),
        ("device_event_sensor_fault", DeviceEvent(0xFFFFFFFF, EventCode.SENSOR_FAULT, 2, -5)),
        ("device_event_unknown_code", DeviceEvent(77, 0xC8, 0xFF, 0)),
        ("status", STATUS),
        ("log_text", LogText(20, "tare done: 4 ch")),
        ("log_text_utf8", LogText(40, "Temperatur 85 °C überschritten")),
        ("unknown_message", UnknownMessage(0x7E, bytes.fromhex("00010203ff00"))),
        # commands: every opcode
        ("cmd_ping", cmd(1, Ping(b"\x00knot\x00"))),
        ("cmd_ping_empty", cmd(2, Ping())),
        ("cmd_get_info", cmd(3, GetInfo())),
        ("cmd_start_stream", cmd(4, StartStream())),
        ("cmd_stop_stream", cmd(5, StopStream())),
        ("cmd_set_stream_config", cmd(6, SetStreamConfig(1000, 0x0F, Encoding.INT24))),
        ("cmd_get_stream_config", cmd(7, GetStreamConfig())),
        ("cmd_tare", cmd(8, Tare(0x00, 0))),
        ("cmd_tare_mask", cmd(9, Tare(0x05, 64))),
        ("cmd_read_calibration", cmd(10, ReadCalibration(0, 200))),
        ("cmd_write_calibration", cmd(11, WriteCalibration(0, len(CAL_BLOB), CAL_BLOB[:32]))),
        (
            "cmd_commit_calibration",
            cmd(12, CommitCalibration(0x12345679, len(CAL_BLOB), crc16(CAL_BLOB))),
        ),
        ("cmd_read_thresholds", cmd(13, ReadThresholds())),
        ("cmd_write_thresholds", cmd(14, WriteThresholds(THRESHOLDS))),
        ("cmd_reboot", cmd(0xFFFE, Reboot())),
        ("cmd_get_status", cmd(0x1234, GetStatus())),
        ("cmd_unknown_opcode", cmd(15, UnknownCommand(0x7F, b"\x01\x02"))),
    ]
    # responses: one per result type, plus error answers
    responses: list[tuple[str, Message]] = [
        ("rsp_ping", Response(1, Opcode.PING, StatusCode.OK, b"\x00knot\x00")),
        ("rsp_get_info", Response(3, Opcode.GET_INFO, StatusCode.OK, INFO.encode())),
        ("rsp_start_stream", Response(4, Opcode.START_STREAM, StatusCode.OK, CONFIG.encode())),
        ("rsp_stop_stream", Response(5, Opcode.STOP_STREAM, StatusCode.OK)),
        (
            "rsp_tare",
            Response(9, Opcode.TARE, StatusCode.OK, TareResult(0x05, (8_388_001, -42)).encode()),
        ),
        (
            "rsp_read_calibration",
            Response(
                10,
                Opcode.READ_CALIBRATION,
                StatusCode.OK,
                CalibrationChunk(0x12345678, len(CAL_BLOB), 32, CAL_BLOB[32:]).encode(),
            ),
        ),
        (
            "rsp_read_thresholds",
            Response(13, Opcode.READ_THRESHOLDS, StatusCode.OK, THRESHOLDS.encode()),
        ),
        ("rsp_get_status", Response(0x1234, Opcode.GET_STATUS, StatusCode.OK, STATUS.encode())),
        ("rsp_unknown_command", Response(15, 0x7F, StatusCode.UNKNOWN_COMMAND)),
        (
            "rsp_unreadable_command",
            Response(UNREADABLE_REQUEST_ID, UNREADABLE_OPCODE, StatusCode.MALFORMED),
        ),
        ("rsp_bad_argument", Response(6, Opcode.SET_STREAM_CONFIG, StatusCode.BAD_ARGUMENT)),
        (
            "rsp_checksum_mismatch",
            Response(12, Opcode.COMMIT_CALIBRATION, StatusCode.CHECKSUM_MISMATCH),
        ),
        ("rsp_unknown_status", Response(16, Opcode.PING, 0x42)),
    ]
    return out + responses


def _cobs_cases() -> list[tuple[str, bytes]]:
    """The canonical examples (as on Wikipedia's COBS page) and edge cases."""
    return [
        ("empty", b""),
        ("single_zero", b"\x00"),
        ("two_zeros", b"\x00\x00"),
        ("zero_11_zero", b"\x00\x11\x00"),
        ("11_22_00_33", bytes.fromhex("11220033")),
        ("no_zero", bytes.fromhex("11223344")),
        ("trailing_zero_run", bytes.fromhex("11000000")),
        ("zero_run_8", bytes(8)),
        ("253_nonzero", bytes(range(1, 254))),
        ("254_nonzero_01_to_fe", bytes(range(1, 255))),
        ("zero_then_253_nonzero_00_to_fe", bytes(range(0, 255))),
        ("255_nonzero_01_to_ff", bytes(range(1, 256))),
        ("254_nonzero_then_zero_02_to_ff_00", bytes(range(2, 256)) + b"\x00"),
        ("253_nonzero_zero_01_03_to_ff_00_01", bytes(range(3, 256)) + b"\x00\x01"),
        ("508_nonzero", bytes((i % 255) + 1 for i in range(508))),
        ("254_nonzero_zero_254_nonzero", b"\x01" * 254 + b"\x00" + b"\x02" * 254),
    ]


def _frame_vectors() -> list[dict[str, Any]]:
    out = []
    for seq, (name, m) in enumerate(example_messages()):
        seq = (seq * 2111 + 7) & 0xFFFF  # spread seqs, some with zero bytes
        frame = encode_message(m, seq, Framing.PACKET)
        payload = m.encode()
        out.append(
            {
                "name": name,
                "message": type(m).__name__,
                "type": int(m.TYPE),
                "seq": seq,
                "fields": message_fields(m),
                "payload": _hex(payload),
                "frame": _hex(frame),
                "stream": _hex(encode_message(m, seq, Framing.STREAM)),
            }
        )
    return out


def _stats(framing: str, inputs: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from knotsense.protocol.decoder import PacketDecoder, StreamDecoder

    dec = StreamDecoder() if framing == "stream" else PacketDecoder()
    frames = []
    for chunk in inputs:
        frames += dec.feed(chunk)
    delivered = [
        {"seq": f.seq, "type": int(f.message.TYPE), "lost_before": f.lost_before} for f in frames
    ]
    return delivered, dec.stats.as_dict()


def _reject_vectors() -> list[dict[str, Any]]:
    """Corrupted and irregular input with the outcome a receiver must reach."""
    good = build_frame(0x06, 0x0102, LogText(20, "ok").encode())
    ping = Command(7, Ping(b"hi")).encode()
    bad_crc = bytearray(good)
    bad_crc[7] ^= 0x01
    v2 = bytearray(build_frame(0x06, 3, b"\x14x"))
    v2[0] = 2
    v2 = v2[:-2] + crc16(v2[:-2]).to_bytes(2, "big")
    bad_len = bytearray(good[:-2])
    bad_len[4] += 1
    bad_len += crc16(bad_len).to_bytes(2, "big")
    bad_block = build_frame(0x03, 9, bytes(13) + b"\x05" + bytes(3) + b"\x00")
    short_cmd = build_frame(0x10, 1, b"\x01\x00")
    long_ping = build_frame(0x10, 1, ping[:3] + bytes(range(1, 66)))
    truncated_cobs = bytearray(stuff(good))
    truncated_cobs[0] += 3  # the first code now runs past the delimiter

    cases: list[tuple[str, str, str, list[bytes], str]] = [
        (
            "crc_error",
            "stream",
            "bit flipped in the payload",
            [stuff(bytes(bad_crc))],
            "crc_errors",
        ),
        ("crc_error", "packet", "bit flipped in the payload", [bytes(bad_crc)], "crc_errors"),
        (
            "cobs_code_overruns",
            "stream",
            "a COBS code runs past the delimiter",
            [bytes(truncated_cobs)],
            "framing_errors",
        ),
        (
            "short_segment",
            "stream",
            "3 bytes then a delimiter",
            [b"\x02\x11\x01\x00"],
            "framing_errors",
        ),
        ("short_packet", "packet", "7 bytes", [good[:7]], "framing_errors"),
        ("version_2", "stream", "header version 2, CRC good", [stuff(bytes(v2))], "version_errors"),
        ("version_2", "packet", "header version 2, CRC good", [bytes(v2)], "version_errors"),
        (
            "length_mismatch",
            "stream",
            "length field one too big, CRC good",
            [stuff(bytes(bad_len))],
            "framing_errors",
        ),
        (
            "length_mismatch",
            "packet",
            "length field one too big, CRC good",
            [bytes(bad_len)],
            "framing_errors",
        ),
        (
            "oversize_run",
            "stream",
            "300 non-zero bytes then a delimiter",
            [b"\x55" * 300 + b"\x00"],
            "oversize",
        ),
        ("oversize_packet", "packet", "a 245-byte packet", [bytes(MAX_FRAME_SIZE + 1)], "oversize"),
        (
            "bad_sample_encoding",
            "stream",
            "SampleBlock with encoding 5, CRC good",
            [stuff(bad_block)],
            "message_errors",
        ),
        (
            "command_too_short",
            "packet",
            "Command payload of 2 bytes",
            [short_cmd],
            "message_errors",
        ),
        ("ping_too_long", "packet", "PING with 65 data bytes", [long_ping], "message_errors"),
        (
            "garbage_glued_to_frame",
            "stream",
            "garbage with no delimiter spoils the frame it runs into; the next frame is good",
            [b"\x13\x37\xff" + stuff(good) + stuff(build_frame(0x06, 0x0103, b"\x14ok"))],
            "framing_errors",
        ),
        (
            "garbage_then_delimiter",
            "stream",
            "garbage ended by a delimiter, then a good frame",
            [b"\x13\x37\xff\x00" + stuff(good)],
            "framing_errors",
        ),
        (
            "delimiters_only",
            "stream",
            "empty segments are ignored",
            [b"\x00\x00" + stuff(good)],
            "frames",
        ),
        ("duplicate", "stream", "the same frame twice", [stuff(good) * 2], "duplicates"),
        ("duplicate", "packet", "the same frame twice", [good, good], "duplicates"),
        (
            "seq_gap",
            "stream",
            "seq 0x0102 then 0x0105",
            [stuff(good), stuff(build_frame(0x06, 0x0105, LogText(20, "ok").encode()))],
            "seq_gaps",
        ),
        (
            "seq_reset",
            "stream",
            "seq 0x0102 then 0 (a reboot)",
            [stuff(good), stuff(build_frame(0x04, 0, DeviceEvent(5, EventCode.BOOT, 1).encode()))],
            "seq_resets",
        ),
        (
            "seq_wrap",
            "packet",
            "seq 0xffff then 0 is no gap",
            [build_frame(0x06, 0xFFFF, b"\x14a"), build_frame(0x06, 0, b"\x14b")],
            "frames",
        ),
        (
            "unknown_type",
            "stream",
            "type 0x7e is delivered, not rejected",
            [stuff(build_frame(0x7E, 1, b"\x01\x02"))],
            "unknown_types",
        ),
    ]
    out = []
    for name, framing, what, inputs, counter in cases:
        delivered, stats = _stats(framing, inputs)
        if stats[counter] == 0:
            raise AssertionError(f"reject vector {name}: {counter} not counted: {stats}")
        out.append(
            {
                "name": f"{framing}_{name}",
                "framing": framing,
                "description": what,
                "inputs": [_hex(b) for b in inputs],
                "counter": counter,
                "delivered": delivered,
                "stats": {k: v for k, v in stats.items() if v},
            }
        )
    return out


def _load_index_vectors() -> list[dict[str, Any]]:
    raws = [
        (8_388_000, -1_000, 0, 123_456),
        (8_428_000, 19_000, 1_000, 123_456),
        (8_387_999, -1_001, -1, 123_457),  # negative sum: floor, not truncation
        (0, 0, 0, 0),
        (8_388_607, 8_388_607, 8_388_607, -8_388_608),
    ]
    return [
        {
            "zero": [c.zero for c in THRESHOLDS.channels],
            "weight_q16": [c.weight_q16 for c in THRESHOLDS.channels],
            "raw": list(raw),
            "sum": sum(
                (r - c.zero) * c.weight_q16 for r, c in zip(raw, THRESHOLDS.channels, strict=True)
            ),
            "load_index": THRESHOLDS.load_index(raw),
        }
        for raw in raws
    ]


def _link_vectors() -> list[dict[str, Any]]:
    out = []
    for mtu in (23, 27, 50, 100, 185, 247, 512):
        frame = frame_size_for_mtu(mtu)
        for ch in (1, 4, 8):
            for enc in (Encoding.INT16, Encoding.INT24, Encoding.INT32):
                out.append(
                    {
                        "att_mtu": mtu,
                        "max_frame_size": frame,
                        "channels": ch,
                        "encoding": int(enc),
                        "max_samples": SampleBlock.max_samples(frame, ch, enc),
                    }
                )
    return out


def _fragment_vectors() -> list[dict[str, Any]]:
    """Frames cut into v1.1 BLE fragments (spec 6.2) at several MTUs and counters."""
    from knotsense.protocol.fragment import Fragmenter

    small = build_frame(LogText.TYPE, 7, LogText(20, "ok").encode())
    full = build_frame(0x7E, 0x1234, bytes((i * 7 + 1) & 0xFF for i in range(MAX_PAYLOAD_SIZE)))
    cases = [
        ("one_fragment_mtu23", 23, 0, small),
        ("full_frame_mtu23", 23, 0, full),
        ("full_frame_mtu185", 185, 5, full),
        ("full_frame_mtu247", 247, 15, full),
        ("full_frame_mtu517", 517, 9, full),
        ("counter_wraps_mtu23", 23, 14, full[:60]),
    ]
    out = []
    for name, mtu, counter, frame in cases:
        tx = Fragmenter(mtu)
        tx.counter = counter
        out.append(
            {
                "name": name,
                "att_mtu": mtu,
                "counter": counter,
                "frame": _hex(frame),
                "fragments": [_hex(p) for p in tx.split(frame)],
            }
        )
    return out


def _fragment_reject_vectors() -> list[dict[str, Any]]:
    """Fragment sequences with losses, reordering and junk, fed to one fresh reassembler."""
    from knotsense.protocol.fragment import Fragmenter, Reassembler

    frames = [
        build_frame(0x7E, seq, bytes((seq + i) & 0xFF for i in range(n)))
        for seq, n in enumerate((50, 30, 5, 90))
    ]
    tx = Fragmenter(23)
    a, b, c, d = (tx.split(f) for f in frames)
    cases = [
        ("lost_middle_fragment", [*a[:1], *a[2:], *b], "a fragment lost: frame dropped, next kept"),
        ("reordered_fragments", [a[0], a[2], a[1], *a[3:], *b], "a swap costs the frame"),
        ("lost_start_orphans", [*a[1:], *b], "continues with no start are orphans"),
        ("lost_end_new_start", [*a[:-1], *b], "a start while rebuilding drops the partial"),
        ("malformed_packets", [b"", a[0][:1], *c], "packets under 2 bytes are counted"),
        ("lost_whole_frame", [*a, *c, *d], "a frame lost whole costs nothing else"),
        (
            "oversize",
            [bytes([0x80]) + bytes(19), *[bytes([i]) + bytes(19) for i in range(1, 14)]],
            "a frame growing past 244 bytes is dropped",
        ),
    ]
    out = []
    for name, inputs, description in cases:
        rx = Reassembler()
        delivered = [f for p in inputs if (f := rx.feed(p)) is not None]
        out.append(
            {
                "name": name,
                "description": description,
                "inputs": [_hex(p) for p in inputs],
                "delivered": [_hex(f) for f in delivered],
                "stats": {k: v for k, v in rx.stats.as_dict().items() if v},
            }
        )
    return out


def build_vectors() -> dict[str, Any]:
    """The whole vectors document."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "protocol_minor": PROTOCOL_MINOR,
        "generated_by": "python tools/make_vectors.py",
        "notes": [
            "Hex strings are lowercase bytes with no separators.",
            "cobs.encoded excludes the 0x00 delimiter; frames[].stream includes it.",
            "frames[].frame is the unencoded frame (one BLE notification or write).",
            "Field values are wire integers: 0.1 mm, 0.01 degC, enum codes.",
            "rejects[].inputs are fed in order to one fresh decoder; "
            "stream inputs are byte-stream chunks, packet inputs are whole packets.",
        ],
        "constants": {
            "header_size": 6,
            "crc_size": 2,
            "max_frame_size": MAX_FRAME_SIZE,
            "max_payload_size": MAX_PAYLOAD_SIZE,
            "min_frame_size": MIN_FRAME_SIZE,
            "max_encoded_size": MAX_ENCODED_SIZE,
            "sample_block_head_size": SampleBlock.HEAD_SIZE,
            "calibration_capacity": CALIBRATION_CAPACITY,
            "max_ping_data": MAX_PING_DATA,
            "unreadable_request_id": UNREADABLE_REQUEST_ID,
            "unreadable_opcode": UNREADABLE_OPCODE,
        },
        "crc": [
            {"name": name, "data": _hex(data), "crc": crc16(data)}
            for name, data in [
                ("check_123456789", b"123456789"),
                ("empty", b""),
                ("single_zero", b"\x00"),
                ("ff_ff", b"\xff\xff"),
                ("a_256_bytes", bytes(range(256))),
            ]
        ],
        "cobs": [
            {"name": name, "decoded": _hex(data), "encoded": _hex(cobs.encode(data))}
            for name, data in _cobs_cases()
        ],
        "frames": _frame_vectors(),
        "rejects": _reject_vectors(),
        "load_index": _load_index_vectors(),
        "link": _link_vectors(),
        "fragments": _fragment_vectors(),
        "fragment_rejects": _fragment_reject_vectors(),
    }


def render() -> str:
    return json.dumps(build_vectors(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is stale: regenerate it", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
