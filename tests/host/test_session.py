"""load_session: the decoded timeline, drift, wraps, reboots, gaps, calibration, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_session_support import START, make_recording, raw_value

from knotsense.errors import SessionFileError
from knotsense.host.recording import SessionReader
from knotsense.host.session import load_session
from knotsense.host.tables import load_force_table
from knotsense.protocol import DeviceInfo, EventCode, SampleUnit, Status

LINEAR = {
    "kind": "calibration",
    "channels": [
        {"kind": "linear", "gain": 0.01, "offset": 1.0},
        {"kind": "linear", "gain": 0.02, "offset": -2.0},
    ],
}


def _truth_raw(truth) -> np.ndarray:
    return raw_value(np.asarray(truth.kept_index), truth.channels)


def test_samples_times_and_messages(tmp_path: Path) -> None:
    truth = make_recording(tmp_path / "s.ksr", duration_s=8.0)
    s = load_session(tmp_path / "s.ksr")
    assert s.framing == "stream"
    assert s.start_unix == START
    assert isinstance(s.device_info, DeviceInfo) and s.device_info.serial_number == "KS-TEST-1"
    assert s.channel_ids == (0, 1) and s.channel_names == ("ch0", "ch1")
    assert s.raw.dtype == np.int32
    np.testing.assert_array_equal(s.raw, _truth_raw(truth))
    assert s.present is None and s.forces is None and s.calibration_error is None
    assert np.all(np.diff(s.t) > 0) and np.all(np.diff(s.device_time_us) > 0)
    err = s.t - np.asarray(truth.true_time)
    assert err.min() >= 0 and err.max() < 0.002  # latency >= 0.5 ms, fit within ~1 ms
    assert np.all(s.host_rx_s >= s.t)
    assert s.gaps == () and s.samples_lost == 0
    assert [type(m.message) for m in s.statuses] == [Status] * len(s.statuses)
    assert len(s.statuses) == 2
    assert abs(s.statuses[0].t_s - 2.0) < 0.002  # device time of the status, mapped
    assert s.decoder_stats["frames"] == truth.frames_written + 2
    assert s.damage.clean_close
    summary = s.summary()
    assert summary["samples"] == s.n_samples and summary["sample_rate_hz"] == pytest.approx(
        250, rel=1e-3
    )


def test_drift_of_50_ppm_over_an_hour_is_removed(tmp_path: Path) -> None:
    truth = make_recording(
        tmp_path / "s.ksr",
        duration_s=3600.0,
        rate=50,
        spb=25,
        drift_ppm=50.0,
        frames_per_record=4,  # bursty: most frames arrive late
        extras=False,
    )
    s = load_session(tmp_path / "s.ksr")
    err = s.t - np.asarray(truth.true_time)
    assert abs(err[-1] - err[0]) < 0.001
    assert np.abs(err).max() < 0.0005 + 0.001
    assert s.drift_ppm[0] == pytest.approx(-50.0, abs=1.0)
    # Without the fit, the device clock alone would be 180 ms off at the end.
    device_s = (s.device_time_us - s.device_time_us[0]) / 1e6
    assert device_s[-1] - truth.true_time[-1] == pytest.approx(0.18, abs=0.001)


def test_u32_clock_wraps_are_unwrapped(tmp_path: Path) -> None:
    truth = make_recording(tmp_path / "s.ksr", duration_s=6.0, t0_us=(1 << 32) - 2_000_000)
    s = load_session(tmp_path / "s.ksr")
    steps = np.diff(s.device_time_us)
    assert steps.min() == 3999 or steps.min() == 4000
    assert steps.max() <= 4001
    assert s.device_time_us[-1] > 1 << 32
    assert s.gaps == ()
    np.testing.assert_allclose(s.t, truth.true_time, atol=0.002)


def test_an_outage_longer_than_half_the_wrap_period_is_unwrapped(tmp_path: Path) -> None:
    # 40 minutes of lost frames: the u32 delta alone would read as going backwards.
    lost = frozenset(range(100, 100 + 2400))
    truth = make_recording(
        tmp_path / "s.ksr", duration_s=2600.0, rate=10, spb=10, drop_blocks=lost, extras=False
    )
    s = load_session(tmp_path / "s.ksr")
    assert len(s.gaps) == 1
    gap = s.gaps[0]
    assert gap.reason == "frames_lost" and gap.samples_lost == 24000
    assert gap.start_s == pytest.approx(100.0, abs=0.002)
    assert gap.end_s == pytest.approx(2500.0, abs=0.002)
    assert (s.epoch == 0).all()
    np.testing.assert_allclose(s.t, truth.true_time, atol=0.002)


def test_reboot_starts_a_new_epoch(tmp_path: Path) -> None:
    truth = make_recording(tmp_path / "s.ksr", duration_s=8.0, reboot_block=100)
    s = load_session(tmp_path / "s.ksr")
    np.testing.assert_array_equal(s.raw, _truth_raw(truth))
    assert set(np.unique(s.epoch)) == {0, 1}
    assert np.all(np.diff(s.t) > 0) and np.all(np.diff(s.device_time_us) > 0)
    assert [g.reason for g in s.gaps] == ["reboot"]
    np.testing.assert_allclose(s.t, truth.true_time, atol=0.002)
    boots = [e for e in s.events if e.message.code == EventCode.BOOT]
    assert len(boots) == 1
    assert boots[0].t_s == pytest.approx(4.0 - 0.3 + 0.05, abs=0.003)  # BOOT at 50 ms uptime
    assert s.decoder_stats["seq_resets"] == 1


@pytest.mark.parametrize("uptime_us", [1_000_000, 3_600_000_000])
def test_reboot_without_boot_event_is_found_from_the_clock(tmp_path: Path, uptime_us) -> None:
    # After 60 min of uptime the restarted u32 stamp reads as ~12 min *ahead*.
    path = tmp_path / "s.ksr"
    truth = make_recording(
        path, duration_s=8.0, reboot_block=100, t0_us=uptime_us, boot_event=False
    )
    s = load_session(path)
    assert [g.reason for g in s.gaps] == ["reboot"]
    assert set(np.unique(s.epoch)) == {0, 1}
    np.testing.assert_allclose(s.t, truth.true_time, atol=0.002)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"drop_blocks": frozenset({40, 41})}, "frames_lost"),
        ({"overflow_blocks": frozenset({40, 41})}, "overflow"),
        ({"link_lost_blocks": frozenset({40, 41})}, "link"),
    ],
)
def test_gaps_are_recorded_with_their_reason(tmp_path: Path, kwargs, reason) -> None:
    truth = make_recording(tmp_path / "s.ksr", duration_s=4.0, **kwargs)
    s = load_session(tmp_path / "s.ksr")
    assert len(s.gaps) == 1
    gap = s.gaps[0]
    assert gap.reason == reason
    assert gap.samples_lost == 20
    assert gap.start_s == pytest.approx(40 * 10 / 250, abs=0.002)
    assert gap.end_s == pytest.approx(42 * 10 / 250, abs=0.002)
    assert gap.duration_s == pytest.approx(0.08, abs=0.001)
    np.testing.assert_array_equal(s.raw, _truth_raw(truth))
    # The timeline jumps over the gap: nothing is bridged.
    jump = np.diff(s.t).max()
    assert jump == pytest.approx(21 * 0.004, abs=0.001)
    if reason == "link":
        assert [m.kind for m in s.marks] == ["link_lost", "reconnected"] * 2


def test_chunking_and_framing_do_not_change_the_result(tmp_path: Path) -> None:
    common = {"duration_s": 6.0, "drop_blocks": frozenset({30}), "latency_mean": 0.0}
    a = load_session(make_recording(tmp_path / "a.ksr", frames_per_record=1, **common).path)
    b = load_session(make_recording(tmp_path / "b.ksr", frames_per_record=64, **common).path)
    c = load_session(make_recording(tmp_path / "c.ksr", framing="packet", **common).path)
    for other in (b, c):
        np.testing.assert_array_equal(a.raw, other.raw)
        np.testing.assert_array_equal(a.device_time_us, other.device_time_us)
        assert [(g.reason, g.samples_lost) for g in a.gaps] == [
            (g.reason, g.samples_lost) for g in other.gaps
        ]
    assert c.framing == "packet"


def test_calibration_gives_forces(tmp_path: Path) -> None:
    make_recording(tmp_path / "s.ksr", duration_s=2.0, calibration=LINEAR)
    s = load_session(tmp_path / "s.ksr")
    assert s.calibrated
    np.testing.assert_allclose(s.forces[:, 0], s.raw[:, 0] * 0.01 + 1.0)
    np.testing.assert_allclose(s.forces[:, 1], s.raw[:, 1] * 0.02 - 2.0)


def test_calibration_per_device_channel_and_mismatch(tmp_path: Path) -> None:
    three = {"channels": [{"kind": "linear", "gain": g, "offset": 0.0} for g in (1, 2, 3)]}
    make_recording(tmp_path / "a.ksr", duration_s=1.0, channels=3, calibration=three)
    s = load_session(tmp_path / "a.ksr")
    np.testing.assert_allclose(s.forces, s.raw * [1.0, 2.0, 3.0])
    make_recording(tmp_path / "b.ksr", duration_s=1.0, channels=2, calibration=three)
    s = load_session(tmp_path / "b.ksr")
    assert s.forces is None and "3 channels" in s.calibration_error


def test_millinewton_devices_need_no_calibration(tmp_path: Path) -> None:
    make_recording(tmp_path / "s.ksr", duration_s=1.0, units=SampleUnit.MILLINEWTON)
    s = load_session(tmp_path / "s.ksr")
    np.testing.assert_allclose(s.forces, s.raw / 1000)


def test_corrupt_recordings_need_salvage(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    make_recording(path, duration_s=4.0)
    offsets = [r.offset for r in SessionReader(path)]
    data = bytearray(path.read_bytes())
    data[offsets[40] + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SessionFileError, match=f"offset {offsets[40]}"):
        load_session(path)
    s = load_session(path, salvage=True)
    assert len(s.gaps) == 1 and s.gaps[0].samples_lost == 10
    assert s.damage.skipped_bytes > 0


def test_force_tables_from_recordings(tmp_path: Path) -> None:
    make_recording(tmp_path / "raw.ksr", duration_s=2.0)
    table = load_force_table(tmp_path / "raw.ksr")
    assert table.forces.shape == (500, 0) and table.names == ()
    assert table.raw.shape == (500, 2) and table.raw_names == ("raw0", "raw1")
    assert table.meta["device_url"].startswith("sim://")
    # Dispatch is by magic bytes, not by name.
    make_recording(tmp_path / "cal.csv", duration_s=2.0, calibration=LINEAR)
    table = load_force_table(tmp_path / "cal.csv")
    assert table.names == ("f0", "f1")
    np.testing.assert_allclose(table.forces[:, 0], table.raw[:, 0] * 0.01 + 1.0)
    (tmp_path / "fake.ksr").write_text("t,f0\n0,1\n")
    with pytest.raises(SessionFileError, match="not a knotsense recording"):
        load_force_table(tmp_path / "fake.ksr")


def test_a_recording_without_samples_loads_empty(tmp_path: Path) -> None:
    from knotsense.host.recording import Recorder

    path = tmp_path / "s.ksr"
    with Recorder(path, {"framing": "packet"}, host_time=5.0) as rec:
        rec.rx(b"not a frame", 5.1)
    s = load_session(path)
    assert s.n_samples == 0 and s.raw.shape == (0, 0) and s.gaps == ()
    assert s.decoder_stats["bytes_discarded"] == 11
    with pytest.raises(SessionFileError, match="no samples"):
        load_force_table(path)
