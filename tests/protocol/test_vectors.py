"""protocol/vectors.json agrees with the encoder and decoders, and the spec names everything."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import make_vectors as mv  # tools/ (pytest pythonpath)
import numpy as np
import pytest

from knotsense.protocol import (
    MESSAGE_TYPES,
    RESULT_TYPES,
    ChannelWeight,
    Encoding,
    EventCode,
    MessageType,
    Opcode,
    PacketDecoder,
    Response,
    SampleBlock,
    StatusCode,
    StreamDecoder,
    Thresholds,
    build_frame,
    cobs,
    crc16,
    decode_message,
    frame_size_for_mtu,
    stuff,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = resources.files("knotsense.protocol").joinpath("vectors.json")
VECTORS = json.loads(VECTORS_FILE.read_text("utf-8"))
SPEC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_file_is_up_to_date() -> None:
    assert VECTORS_FILE.read_text("utf-8") == mv.render(), "run: python tools/make_vectors.py"


def test_crc_vectors() -> None:
    names = {v["name"]: v for v in VECTORS["crc"]}
    assert names["check_123456789"]["crc"] == 0x29B1
    for v in VECTORS["crc"]:
        assert crc16(bytes.fromhex(v["data"])) == v["crc"]


def test_cobs_vectors() -> None:
    assert len(VECTORS["cobs"]) >= 12
    for v in VECTORS["cobs"]:
        decoded, encoded = bytes.fromhex(v["decoded"]), bytes.fromhex(v["encoded"])
        assert cobs.encode(decoded) == encoded, v["name"]
        assert cobs.decode(encoded) == decoded, v["name"]


@pytest.mark.parametrize("v", VECTORS["frames"], ids=lambda v: v["name"])
def test_frame_vector(v: dict) -> None:
    payload, frame, wire = (bytes.fromhex(v[k]) for k in ("payload", "frame", "stream"))
    # fields -> bytes
    message = mv.message_from_fields(v["message"], v["fields"])
    assert message.encode() == payload
    assert int(message.TYPE) == v["type"]
    assert build_frame(v["type"], v["seq"], payload) == frame
    assert stuff(frame) == wire
    # bytes -> fields
    decoded = decode_message(v["type"], payload)
    assert type(decoded).__name__ == v["message"]
    assert mv.message_fields(decoded) == v["fields"]
    assert decoded == message
    # through both receivers
    (got,) = StreamDecoder().feed(wire)
    assert (got.seq, got.message) == (v["seq"], message)
    (got,) = PacketDecoder().feed(frame)
    assert (got.seq, got.message) == (v["seq"], message)


@pytest.mark.parametrize("v", VECTORS["rejects"], ids=lambda v: v["name"])
def test_reject_vector(v: dict) -> None:
    dec = StreamDecoder() if v["framing"] == "stream" else PacketDecoder()
    delivered = []
    for chunk in v["inputs"]:
        delivered += dec.feed(bytes.fromhex(chunk))
    assert [
        {"seq": f.seq, "type": int(f.message.TYPE), "lost_before": f.lost_before} for f in delivered
    ] == v["delivered"]
    stats = {k: n for k, n in dec.stats.as_dict().items() if n}
    assert stats == v["stats"]
    assert stats[v["counter"]] > 0


def test_load_index_vectors() -> None:
    for v in VECTORS["load_index"]:
        t = Thresholds(
            0,
            0,
            0,
            0,
            0,
            0,
            tuple(ChannelWeight(z, w) for z, w in zip(v["zero"], v["weight_q16"], strict=True)),
        )
        assert t.load_index(v["raw"]) == v["load_index"] == v["sum"] >> 16
    assert any(v["sum"] < 0 and v["sum"] % 65536 for v in VECTORS["load_index"])


def test_link_vectors() -> None:
    for v in VECTORS["link"]:
        assert frame_size_for_mtu(v["att_mtu"]) == v["max_frame_size"]
        assert (
            SampleBlock.max_samples(v["max_frame_size"], v["channels"], v["encoding"])
            == (v["max_samples"])
        )


def test_constants() -> None:
    c = VECTORS["constants"]
    assert (c["max_frame_size"], c["min_frame_size"], c["max_encoded_size"]) == (244, 20, 245)
    assert c["calibration_capacity"] == 4096
    assert (c["unreadable_request_id"], c["unreadable_opcode"]) == (0xFFFF, 0xFF)


def test_vectors_cover_the_protocol() -> None:
    frames = VECTORS["frames"]
    assert {v["type"] for v in frames} >= {int(t) for t in MessageType}
    assert any(v["message"] == "UnknownMessage" for v in frames)
    commands = [v["fields"] for v in frames if v["message"] == "Command"]
    assert {f["opcode"] for f in commands} >= {int(o) for o in Opcode}
    assert any(f["opcode"] not in RESULT_TYPES for f in commands)  # an unknown opcode
    results = {v["fields"].get("result_type") for v in frames if v["message"] == "Response"}
    assert results >= {cls.__name__ for cls in RESULT_TYPES.values()}
    blocks = [v["fields"] for v in frames if v["message"] == "SampleBlock"]
    for enc in Encoding:
        assert any(b["encoding"] == enc and min(b["samples"], default=0) < 0 for b in blocks)
    assert all(json.dumps(v["fields"]) for v in frames)  # plain JSON values only
    counters = {v["counter"] for v in VECTORS["rejects"]}
    assert counters >= {
        "crc_errors",
        "framing_errors",
        "oversize",
        "version_errors",
        "message_errors",
        "duplicates",
        "seq_gaps",
        "seq_resets",
        "unknown_types",
    }


def test_response_vectors_parse() -> None:
    for v in VECTORS["frames"]:
        if v["message"] != "Response" or "result_type" not in v["fields"]:
            continue
        response = Response.decode(bytes.fromhex(v["payload"]))
        fields = {
            k[7:]: x
            for k, x in v["fields"].items()
            if k.startswith("result_") and k != "result_type"
        }
        assert response.parse_result() == mv.result_from_fields(v["fields"]["result_type"], fields)


# --- the spec names every message, opcode, status and event ------------------------------


@pytest.mark.parametrize(
    "name",
    [t.name for t in MessageType]
    + [cls.__name__ for cls in MESSAGE_TYPES.values()]
    + [o.name for o in Opcode]
    + [s.name for s in StatusCode]
    + [e.name for e in EventCode]
    + ["UnknownMessage", "0x29B1", "IBM-3740", "0xFFFF", "4096", "MTU", "0x180A", "0x180F"],
)
def test_spec_mentions(name: str) -> None:
    assert name in SPEC


def test_spec_tables_agree_with_code() -> None:
    for t in MessageType:
        assert f"| 0x{int(t):02X} | {t.name} |" in SPEC
    for o in Opcode:
        assert f"| 0x{int(o):02X} | {o.name} |" in SPEC
    for s in StatusCode:
        assert f"| {int(s)} | {s.name} |" in SPEC
    for e in EventCode:
        assert f"| {int(e)} | {e.name} |" in SPEC
    from knotsense.protocol import gatt

    for uuid in (gatt.SERVICE_UUID, gatt.DATA_CHAR_UUID, gatt.CONTROL_CHAR_UUID):
        assert uuid in SPEC
    assert np.int64(-69505) >> 16 == -2  # the worked example of section 10.5


def test_tool_regenerates_the_identical_file(tmp_path: Path) -> None:
    """The build tool, run as a script from the checkout, writes the committed file exactly."""
    import subprocess
    import sys

    out = tmp_path / "vectors.json"
    tool = ROOT / "tools" / "make_vectors.py"
    run = subprocess.run(
        [sys.executable, str(tool), "--output", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == VECTORS_FILE.read_bytes()
    check = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
