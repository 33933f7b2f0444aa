"""Export to CSV and Parquet, and the ``knotsense export`` command."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_session_support import make_recording

from knotsense.cli.main import main
from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.export import column_names, export_csv, export_parquet
from knotsense.host.recording import SessionReader
from knotsense.host.session import load_session

LINEAR = {
    "channels": [
        {"kind": "linear", "gain": 0.01, "offset": 1.0},
        {"kind": "linear", "gain": 0.02, "offset": -2.0},
    ]
}


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "s.ksr"
    make_recording(path, duration_s=3.0, drop_blocks=frozenset({20}), calibration=LINEAR)
    return path


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def test_csv_columns_and_values(recording: Path, tmp_path: Path) -> None:
    session = load_session(recording)
    out = tmp_path / "s.csv"
    assert export_csv(session, out) == session.n_samples == 740
    header, data = _read_csv(out)
    assert header == ["t", "f0", "f1", "raw0", "raw1"] == column_names(session)
    np.testing.assert_allclose(data[:, 0], session.t, atol=5e-7)
    np.testing.assert_allclose(data[:, 1:3], session.forces, rtol=1e-6)
    np.testing.assert_array_equal(data[:, 3:], session.raw)
    # The lost block is left out: t jumps by 11 periods there.
    steps = np.diff(data[:, 0])
    assert steps.max() == pytest.approx(11 * 0.004, abs=1e-4)
    assert (steps > 0).all()
    first = out.read_text().splitlines()[1].split(",")[0]
    assert len(first.split(".")[1]) == 6  # microseconds
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_csv_without_calibration_has_raw_columns_only(tmp_path: Path) -> None:
    path = make_recording(tmp_path / "s.ksr", duration_s=1.0).path
    out = tmp_path / "s.csv"
    export_csv(load_session(path), out)
    header, data = _read_csv(out)
    assert header == ["t", "raw0", "raw1"]
    assert data.shape == (250, 3)


def test_parquet_columns_and_values(recording: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    session = load_session(recording)
    out = tmp_path / "s.parquet"
    export_parquet(session, out)
    table = pq.read_table(out)
    assert table.column_names == ["t", "f0", "f1", "raw0", "raw1", "device_time_us", "epoch"]
    np.testing.assert_array_equal(table["t"].to_numpy(), session.t)
    np.testing.assert_array_equal(table["raw1"].to_numpy(), session.raw[:, 1])
    np.testing.assert_array_equal(table["device_time_us"].to_numpy(), session.device_time_us)
    meta = json.loads(table.schema.metadata[b"knotsense"])
    assert meta["metadata"]["framing"] == "stream"
    assert meta["gaps"][0][2:] == [10, "frames_lost"]


def test_parquet_without_pyarrow_is_a_clear_error(
    recording: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ConfigurationError, match="needs pyarrow"):
        export_parquet(load_session(recording), tmp_path / "s.parquet")
    assert not (tmp_path / "s.parquet").exists()


def test_unwritable_output(recording: Path, tmp_path: Path) -> None:
    session = load_session(recording)
    with pytest.raises(SessionFileError, match="does not exist"):
        export_csv(session, tmp_path / "no" / "s.csv")
    with pytest.raises(SessionFileError, match="is a directory"):
        export_csv(session, tmp_path)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("knotsense export: error: ")
    return err


def test_cli_export(recording: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("pyarrow")
    out, pq = tmp_path / "o.csv", tmp_path / "o.parquet"
    assert main(["export", str(recording), "--csv", str(out), "--parquet", str(pq)]) == 0
    assert out.exists() and pq.exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["export", str(recording), "--csv", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["written"] == {"csv": str(out)}
    assert result["session"]["gaps"] == 1 and result["session"]["samples_lost"] == 10


def test_cli_errors_are_one_line(recording: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o.csv")
    assert main(["export", str(tmp_path / "missing.ksr"), "--csv", out]) == 1
    assert "no such file" in _one_line_error(capsys)
    assert main(["export", str(recording)]) == 1
    assert "nothing to do" in _one_line_error(capsys)
    assert main(["export", str(recording), "--csv", str(tmp_path / "no" / "o.csv")]) == 1
    assert "cannot write" in _one_line_error(capsys)
    (tmp_path / "text.ksr").write_text("t,f0\n0,1\n")
    assert main(["export", str(tmp_path / "text.ksr"), "--csv", out]) == 1
    assert "not a knotsense recording" in _one_line_error(capsys)
    # Corrupt inside: an error naming the offset; --salvage recovers.
    offsets = [r.offset for r in SessionReader(recording)]
    data = bytearray(recording.read_bytes())
    data[offsets[10] + 20] ^= 0xFF
    recording.write_bytes(bytes(data))
    assert main(["export", str(recording), "--csv", out]) == 1
    assert f"offset {offsets[10]}" in _one_line_error(capsys)
    assert main(["export", str(recording), "--csv", out, "--salvage"]) == 0
    assert "salvage skipped" in capsys.readouterr().err
    # A torn tail is a note, not an error.
    recording.write_bytes(bytes(data[:-5]))
    assert main(["export", str(recording), "--csv", out, "--salvage"]) == 0
    assert "torn tail" in capsys.readouterr().err
