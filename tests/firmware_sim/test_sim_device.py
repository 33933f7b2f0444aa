"""The simulated device on a clean link: boot, streaming, commands, NVM, detector, timing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_sim import Host

from knotsense.errors import SimulationError
from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.framing import sample_block_frames, stuff_rows
from knotsense.protocol import (
    BlockFlags,
    CalibrationChunk,
    ChannelWeight,
    Command,
    CommitCalibration,
    DeviceEvent,
    DeviceInfo,
    Encoder,
    Encoding,
    EventCode,
    Framing,
    GetInfo,
    GetStatus,
    GetStreamConfig,
    Ping,
    ReadCalibration,
    ReadThresholds,
    Reboot,
    ResetReason,
    Response,
    SampleBlock,
    SetStreamConfig,
    StartStream,
    Status,
    StatusCode,
    StopStream,
    StreamConfig,
    Tare,
    ThresholdFlags,
    Thresholds,
    UnknownCommand,
    WriteCalibration,
    WriteThresholds,
    crc16,
    frame_size_for_mtu,
)


def test_boot_sequence_and_clean_decode() -> None:
    h = Host(scenario="quiet_baseline", seed=1)
    h.run(2.5)
    kinds = [type(f.message).__name__ for f in h.frames[:3]]
    assert kinds == ["DeviceInfo", "DeviceEvent", "Status"]
    assert [f.seq for f in h.frames] == list(range(len(h.frames)))
    boot = h.frames[1].message
    assert boot.code == EventCode.BOOT and boot.arg == ResetReason.POWER_ON
    assert h.decoder.stats.errors == 0 and len(h.messages(Status)) == 3
    assert h.messages(DeviceInfo)[0] == h.device.info


def _session(step: float, framing: Framing = Framing.STREAM) -> list[bytes]:
    h = Host(SimConfig(scenario="back_session", seed=5, framing=framing, max_frame_size=100))
    h.run(0.5, step)
    h.send(SetStreamConfig(250, 0b1011, Encoding.INT32))
    h.send(StartStream())
    h.run(20.0, step)
    h.send(Tare(0, 8))
    h.send(StopStream())
    h.run(21.0, step)
    assert h.decoder.stats.errors == 0 and h.decoder.stats.frames_lost == 0
    return h.raw


@pytest.mark.parametrize("framing", [Framing.STREAM, Framing.PACKET])
def test_same_seed_same_bytes_however_stepped(framing: Framing) -> None:
    a = _session(0.02, framing)
    b = _session(0.37, framing)
    if framing is Framing.STREAM:
        assert b"".join(a) == b"".join(b)
    else:
        assert a == b and max(len(p) for p in a) <= 100


def test_different_seed_different_bytes() -> None:
    h1, h2 = Host(seed=1), Host(seed=2)
    h1.send(StartStream())
    h2.send(StartStream())
    assert b"".join(h1.device.run_until(2)) != b"".join(h2.device.run_until(2))


def test_streaming_blocks_fit_the_link_and_rate_matches_crystal() -> None:
    mfs = frame_size_for_mtu(65)
    h = Host(SimConfig(scenario="back_session", seed=9, framing=Framing.PACKET, max_frame_size=mfs))
    h.send(SetStreamConfig(500, 0x0F, Encoding.INT24))
    h.send(StartStream())
    h.run(40.0, 0.1)
    blocks = h.messages(SampleBlock)
    # Sample blocks fit the link; DeviceInfo (about 90 bytes) cannot (see device.py).
    assert all(len(p) <= mfs for p in h.raw if p[1] == 0x03)
    assert h.device.injected.oversize_frames == 1
    spb = SampleBlock.max_samples(mfs, 4, Encoding.INT24)
    assert {b.n_samples for b in blocks} == {spb}
    idx = np.array([b.sample_index for b in blocks])
    assert np.all(np.diff(idx) == spb)
    t = np.array([b.t_first_us for b in blocks], dtype=np.int64)
    gaps = np.diff(t) - spb * 2000
    assert np.abs(gaps).max() <= 20  # jitter only: a few microseconds
    # Device seconds per host second: the crystal error, tens of ppm.
    ppm = (h.device.device_time_us(40.0) - h.device.device_time_us(1.0)) / 39e6 - 1
    assert abs(ppm * 1e6 - h.device.unit.crystal_ppm) < 0.5
    assert 0 < abs(ppm) * 1e6 < 50
    # Samples per host second, counted on the wire: the rate times the crystal.
    n = int(idx[-1] - idx[0])
    host_span = (t[-1] - t[0]) / 1e6 / (1 + ppm)
    assert abs(n / host_span / 500 - 1 - ppm) < 5e-6


def test_vectorised_frames_match_the_encoder() -> None:
    rng = np.random.default_rng(1)
    for enc in (Encoding.INT16, Encoding.INT24, Encoding.INT32):
        samples = rng.integers(-2000, 2000, (5, 7, 3)) * (256 if enc != 2 else 1)
        frames = sample_block_frames(
            np.arange(5) + 65534,
            np.arange(5) * 7000 + 2**32 - 9000,
            np.arange(5) * 7,
            1_000_000,
            0b10101,
            enc,
            samples,
            flags=1,
            saturated_mask=4,
            fault_mask=16,
        )
        stuffed = stuff_rows(frames)
        encoder = Encoder(Framing.STREAM, 65534)
        for i in range(5):
            block = SampleBlock(
                (i * 7000 + 2**32 - 9000) & 0xFFFFFFFF,
                i * 7,
                1_000_000,
                0b10101,
                enc,
                samples[i].astype(np.int32),
                BlockFlags.OVERFLOW_BEFORE,
                4,
                16,
            )
            assert stuffed[i].tobytes() == encoder.encode(block)


def test_every_command_is_answered_with_its_request_id(tmp_path) -> None:
    h = Host(scenario="quiet_baseline", seed=3)
    h.run(0.2)
    cases = {
        h.send(Ping(b"abc")): StatusCode.OK,
        h.send(GetInfo()): StatusCode.OK,
        h.send(GetStatus()): StatusCode.OK,
        h.send(GetStreamConfig()): StatusCode.OK,
        h.send(SetStreamConfig(333, 0x0F)): StatusCode.UNSUPPORTED,
        h.send(SetStreamConfig(80, 0x30, Encoding.INT24)): StatusCode.BAD_ARGUMENT,
        h.send(SetStreamConfig(80, 0x0F, Encoding.INT16)): StatusCode.UNSUPPORTED,
        h.send(SetStreamConfig(250, 0x03, Encoding.INT24)): StatusCode.OK,
        h.send(StartStream()): StatusCode.OK,
        h.send(SetStreamConfig(80, 0x0F, Encoding.INT24)): StatusCode.INVALID_STATE,
        h.send(StopStream()): StatusCode.OK,
        h.send(Tare(0x01, 32)): StatusCode.OK,
        h.send(ReadCalibration(0, 50)): StatusCode.OK,
        h.send(ReadThresholds()): StatusCode.OK,
        h.send(UnknownCommand(0x77, b"zz")): StatusCode.UNKNOWN_COMMAND,
        h.send(WriteCalibration(0, 5000, b"x")): StatusCode.BAD_ARGUMENT,
        h.send(CommitCalibration(5, 3, 0)): StatusCode.INVALID_STATE,
    }
    h.run(1.5)
    for rid, status in cases.items():
        r = h.response(rid)
        assert r.status == status, (rid, r)
        if status == StatusCode.OK:
            r.parse_result()
    tare = h.response(12).parse_result()
    assert tare.channel_mask == 1 and len(tare.zeros) == 1
    assert abs(tare.zeros[0] - h.device.unit.offset[0]) < 2000
    assert h.response(4).parse_result().rate_hz == 80
    assert h.response(9).parse_result().streaming is True
    # Unreadable and malformed commands.
    enc = h.encoder
    h.device.host_write(enc.encode(Command(40, Ping(b""))).replace(b"\x01\x01", b"\x01\x01", 1))
    from knotsense.protocol import build_frame, stuff

    h.device.host_write(stuff(build_frame(0x10, 99, b"\x05")))  # 1-byte command: unreadable
    h.device.host_write(stuff(build_frame(0x10, 100, b"\x29\x00\x01" + b"p" * 70)))  # ping > 64
    h.run(2.0)
    unreadable = [r for r in h.messages(Response) if r.request_id == 0xFFFF]
    assert len(unreadable) == 1 and unreadable[0].opcode == 0xFF
    assert unreadable[0].status == StatusCode.MALFORMED
    assert h.response(0x29).status == StatusCode.MALFORMED  # docs/protocol.md 10.3 step 5


def _write_calibration(h: Host, blob: bytes, cal_id: int, crc: int | None = None) -> Response:
    for off in range(0, len(blob), 100):
        rid = h.send(WriteCalibration(off, len(blob), blob[off : off + 100]))
        assert h.response(rid).status == StatusCode.OK
    crc = crc16(blob) if crc is None else crc
    return h.response(h.send(CommitCalibration(cal_id, len(blob), crc)))


def _read_calibration(h: Host) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk: CalibrationChunk = h.response(h.send(ReadCalibration(len(data), 200))).parse_result()
        data += chunk.data
        if len(data) >= chunk.total_length or not chunk.data:
            return chunk.calibration_id, data


def test_calibration_and_thresholds_survive_reboot_and_file(tmp_path) -> None:
    path = str(tmp_path / "nvm.json")
    blob = bytes(range(256)) * 3
    h = Host(scenario="quiet_baseline", seed=4, nvm_path=path)
    h.run(0.1)
    assert _write_calibration(h, blob, 77, crc=1234).status == StatusCode.CHECKSUM_MISMATCH
    assert _write_calibration(h, blob, 77).status == StatusCode.OK
    th = Thresholds(
        ThresholdFlags.RELEASE_ENABLED,
        300,
        60,
        1000,
        900,
        5000,
        tuple(ChannelWeight(i, 2**16) for i in range(4)),
    )
    assert h.response(h.send(WriteThresholds(th))).parse_result() == th
    h.send(Reboot())
    h.run(h.device.now + 1.0)
    boots = [m for m in h.messages(DeviceEvent) if m.code == EventCode.BOOT]
    assert boots[-1].arg == ResetReason.SOFTWARE and h.decoder.stats.seq_resets == 1
    assert h.messages(DeviceInfo)[-1].calibration_id == 77
    assert _read_calibration(h) == (77, blob)
    assert h.response(h.send(ReadThresholds())).parse_result() == th
    assert json.loads((tmp_path / "nvm.json").read_text())["calibration_id"] == 77
    # A new simulator process on the same file is the same unit with the same NVM.
    h2 = Host(scenario="quiet_baseline", seed=4, nvm_path=path)
    h2.run(0.1)
    assert h2.device.info.calibration_id == 77 and _read_calibration(h2) == (77, blob)
    assert h2.response(h2.send(ReadThresholds())).parse_result() == th


def test_threshold_events_fire_at_the_right_load_index() -> None:
    h = Host(scenario="back_session", seed=2)
    unit = h.device.unit
    # Weights so the load index reads millinewtons (the host's job, done here by hand).
    weights = tuple(
        ChannelWeight(int(unit.offset[i]), round(1000 / unit.gain[i] * 65536)) for i in range(4)
    )
    th = Thresholds(
        ThresholdFlags.RELEASE_ENABLED | ThresholdFlags.OVERPRESSURE_ENABLED,
        400,
        60,
        110_000,
        100_000,
        280_000,
        weights,
    )
    h.send(WriteThresholds(th))
    h.send(StartStream())
    h.run(300.0, 1.0)
    assert h.decoder.stats.errors == 0
    events = [m for m in h.messages(DeviceEvent) if m.code != EventCode.BOOT]
    codes = [e.code for e in events]
    assert codes[:3] == [
        EventCode.RELEASE_ENTER,
        EventCode.RELEASE_HOLD_REACHED,
        EventCode.RELEASE_EXIT,
    ]
    assert EventCode.OVERPRESSURE_ENTER in codes and EventCode.OVERPRESSURE_EXIT in codes
    # Every event's value is the load index of the sample it fired on, by Thresholds.load_index.
    samples = {}
    for b in h.messages(SampleBlock):
        for k in range(b.n_samples):
            samples[(b.t_first_us + round(k * b.period_ns / 1000)) & 0xFFFFFFFF] = b.samples[k]
    for e in events:
        nearest = min(samples, key=lambda t: abs(t - e.t_us))
        assert abs(nearest - e.t_us) <= 20
        assert e.value == th.load_index(samples[nearest].tolist())
        if e.code == EventCode.RELEASE_ENTER:
            assert e.value >= th.release_on
        if e.code == EventCode.OVERPRESSURE_ENTER:
            assert e.value > th.overpressure_on
    enter = next(e for e in events if e.code == EventCode.RELEASE_ENTER)
    hold = next(e for e in events if e.code == EventCode.RELEASE_HOLD_REACHED)
    assert 59.5e6 < (hold.t_us - enter.t_us) < 60.0e6
    truth = h.device.ground_truth().of_kind("release")[0]
    assert abs(enter.t_us / 1e6 - truth.start) < 2.0


def test_run_until_rejects_going_back() -> None:
    h = Host(scenario="quiet_baseline")
    h.device.run_until(1.0)
    with pytest.raises(SimulationError):
        h.device.run_until(0.5)


def test_status_and_stream_config_messages() -> None:
    h = Host(scenario="quiet_baseline", seed=8, framing=Framing.PACKET)
    h.send(StartStream())
    h.run(3.2)
    cfg = h.messages(StreamConfig)
    assert len(cfg) == 1 and cfg[0].streaming
    st = h.messages(Status)[-1]
    assert st.uptime_s == 3 and st.frames_sent > 0 and 0 < st.battery_pct <= 100
    assert 15 < st.temperature_c < 35
