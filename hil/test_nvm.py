"""Tare, the calibration record (write, read back, persist across reboot) and reboots."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from knotsense.errors import CommandError
from knotsense.hil.measure import Capture
from knotsense.hil.plugin import StreamHandle
from knotsense.hil.report import BenchReport
from knotsense.hil.target import Client
from knotsense.host.device import LinkChange, Samples
from knotsense.protocol import (
    CommitCalibration,
    DeviceEvent,
    DeviceInfo,
    EventCode,
    ResetReason,
    StatusCode,
    StatusFlags,
    WriteCalibration,
    crc16,
)

REBOOT_WAIT_S = 30.0


def test_tare_sets_detector_zeros(hil_client: Client, device_info: DeviceInfo) -> None:
    """TARE answers after its samples, with every channel's new zero; READ_THRESHOLDS shows them."""
    dev = hil_client.device
    before = dev.read_thresholds()
    result = dev.tare(n_samples=32)
    all_channels = (1 << device_info.channel_count) - 1
    assert result.channel_mask == all_channels
    assert len(result.zeros) == device_info.channel_count
    lo, hi = -(1 << (device_info.adc_bits - 1)), (1 << device_info.adc_bits) - 1
    assert all(lo <= z <= hi for z in result.zeros), f"zeros outside the ADC range: {result.zeros}"
    after = dev.read_thresholds()
    assert tuple(ch.zero for ch in after.channels) == result.zeros
    assert tuple(ch.weight_q16 for ch in after.channels) == tuple(
        ch.weight_q16 for ch in before.channels
    ), "TARE changed the weights"
    assert (after.release_on, after.release_off, after.overpressure_on) == (
        before.release_on,
        before.release_off,
        before.overpressure_on,
    )
    # One channel only: the others keep their zeros.
    one = dev.tare(channels=[0], n_samples=8)
    assert one.channel_mask == 1 and len(one.zeros) == 1
    assert tuple(ch.zero for ch in dev.read_thresholds().channels)[1:] == result.zeros[1:]
    if device_info.channel_count < 8:
        with pytest.raises(CommandError) as err:
            dev.tare(channels=1 << device_info.channel_count)
        assert err.value.status == StatusCode.BAD_ARGUMENT


def reboot_and_wait(client: Client, until_samples: bool = False) -> Capture:
    """REBOOT, reading the stream from before the command until the device is back.

    Returns what the stream showed. Done when the client saw the reboot (a BOOT
    event, or the link coming back on BLE) and, with *until_samples*, samples again.
    """
    from knotsense.errors import DeviceTimeoutError, LinkLostError
    from knotsense.hil.measure import capture

    state = {"rebooted": False}

    def done(item: object) -> bool:
        if isinstance(item, LinkChange) and item.kind in ("rebooted", "restored"):
            state["rebooted"] = True
        message = getattr(item, "message", None)
        if isinstance(message, DeviceEvent) and message.code == EventCode.BOOT:
            state["rebooted"] = True
        return state["rebooted"] and (not until_samples or isinstance(item, Samples))

    async def go(adev: object) -> Capture:
        task = asyncio.ensure_future(
            capture(adev, 1e9, wall_limit=REBOOT_WAIT_S, idle_timeout=REBOOT_WAIT_S, until=done)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.02)  # the capture listens before the command goes out
        # The answer may be lost with the link (BLE); the reboot shows in the stream.
        with contextlib.suppress(DeviceTimeoutError, LinkLostError):
            await adev.reboot()  # type: ignore[attr-defined]
        return await task

    cap = client.run(go, REBOOT_WAIT_S + 30)
    assert state["rebooted"], f"no reboot seen within {REBOOT_WAIT_S:g} s"
    deadline = time.monotonic() + REBOOT_WAIT_S
    while True:  # commands work again
        try:
            client.device.ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return cap


@pytest.mark.destructive
def test_calibration_record_write_read_back_and_persist(
    hil_client: Client, device_info: DeviceInfo, bench_report: BenchReport
) -> None:
    dev = hil_client.device
    orig_id, orig_blob = dev.read_calibration()
    assert orig_id == device_info.calibration_id or orig_id == dev.get_info().calibration_id
    blob = b"knotsense-hil test record\n" + os.urandom(700)
    cal_id = int.from_bytes(os.urandom(4), "little") | 1
    try:
        t0 = time.monotonic()
        dev.write_calibration(blob, cal_id)  # stages, commits and reads back
        write_s = time.monotonic() - t0
        assert dev.read_calibration() == (cal_id, blob)
        assert dev.get_info().calibration_id == cal_id
        assert dev.get_status().flags & StatusFlags.CALIBRATED
        # A commit whose CRC does not match the staged bytes is refused; nothing changes.
        run = hil_client.run
        run(lambda adev: adev.request(WriteCalibration(0, 4, b"bad!")))
        with pytest.raises(CommandError) as err:
            run(lambda adev: adev.request(CommitCalibration(cal_id ^ 2, 4, crc16(b"bad!") ^ 1)))
        assert err.value.status == StatusCode.CHECKSUM_MISMATCH
        assert dev.read_calibration() == (cal_id, blob)
        # It survives a reboot.
        cap = reboot_and_wait(hil_client)
        assert dev.read_calibration() == (cal_id, blob), "calibration record lost across reboot"
        info = dev.get_info()
        assert info.calibration_id == cal_id
        boots = [e for e in cap.events(EventCode.BOOT)]
        if boots:
            assert boots[-1].arg == ResetReason.SOFTWARE
        bench_report.add(
            "NVM",
            "calibration record",
            f"{len(blob)} B written, read back, kept across reboot",
            f"write+verify {write_s * 1e3:.0f} ms",
        )
    finally:
        if orig_id:
            dev.write_calibration(orig_blob, orig_id)


@pytest.mark.destructive
def test_reboot_while_streaming_resumes(
    fresh_stream: StreamHandle, hil_client: Client, bench_report: BenchReport
) -> None:
    first = fresh_stream.capture(0.5, wall_limit=20.0)
    assert first.samples
    t0 = time.monotonic()
    cap = reboot_and_wait(hil_client, until_samples=True)
    back_s = time.monotonic() - t0
    kinds = [link.kind for link in cap.links]
    assert "rebooted" in kinds or "restored" in kinds, f"no reboot seen by the client: {kinds}"
    boots = cap.events(EventCode.BOOT)
    assert boots, "no BOOT event after REBOOT"
    assert boots[-1].arg == ResetReason.SOFTWARE
    assert cap.samples and cap.samples[-1].sample_index < 1_000_000, "the stream did not resume"
    after = fresh_stream.capture(0.5, wall_limit=20.0)
    assert after.samples and not after.gaps, "the stream is not clean after the reboot"
    bench_report.add(
        "Reboot",
        "REBOOT to streaming again",
        f"{back_s:.2f} s wall",
        "link changes: " + ", ".join(kinds),
    )
