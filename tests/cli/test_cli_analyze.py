"""`knotsense analyze`: JSON shape, readable text, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.synthetic import make_session

from knotsense.cli.main import main
from knotsense.dsp.calibration_models import Calibration, LinearModel
from knotsense.host.tables import load_force_table


@pytest.fixture(scope="module")
def session():
    return make_session(3, rate=50.0, channels=3, lies=3)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory, session) -> Path:
    path = tmp_path_factory.mktemp("cli") / "session.csv"
    with path.open("w") as fh:
        fh.write("t,f0,f1,f2\n")
        np.savetxt(fh, np.column_stack([session.t, session.forces]), delimiter=",", fmt="%.6f")
    return path


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on one line
    return json.loads(out)


def test_json_shape(capsys, csv_file: Path, session) -> None:
    doc = _json(
        capsys, ["analyze", str(csv_file), "--json", "--release-threshold", f"{session.threshold}"]
    )
    assert set(doc) == {"events", "summary"}
    kinds = {e["kind"] for e in doc["events"]}
    assert kinds <= {"release", "rocking", "overpressure", "contact"} and "contact" in kinds
    for e in doc["events"]:
        assert e["start"] < e["end"] and session.t[0] - 1 <= e["start"] <= session.t[-1]
    rel = [e for e in doc["events"] if e["kind"] == "release"]
    assert len(rel) == len(session.of("release"))
    for e, truth in zip(rel, session.of("release"), strict=True):
        assert abs(e["start"] - truth.start) < 0.5
        assert {"mean_force", "min_force", "peak_force", "threshold", "duration"} <= set(e)
    for e in doc["events"]:
        if e["kind"] == "rocking":
            assert {"frequency", "cycles", "peak_to_peak"} <= set(e)
    summary = doc["summary"]
    assert summary["releases"]["count"] == len(rel)
    assert {
        "contacts",
        "releases",
        "time_in_release_band_s",
        "overpressure",
        "rocking",
        "signal_quality",
    } <= set(summary)


def test_options_change_the_answer(capsys, csv_file: Path, session) -> None:
    thr = f"{session.threshold}"
    base = _json(capsys, ["analyze", str(csv_file), "--json", "--release-threshold", thr])
    short = _json(
        capsys, ["analyze", str(csv_file), "--json", "--release-threshold", thr, "--hold", "20"]
    )
    assert short["summary"]["releases"]["count"] >= base["summary"]["releases"]["count"]
    over = _json(
        capsys,
        [
            "analyze",
            str(csv_file),
            "--json",
            "--release-threshold",
            thr,
            "--max-force",
            f"{session.threshold * 1.2}",
        ],
    )
    assert over["summary"]["overpressure"]["count"] > 0
    assert any(e["kind"] == "overpressure" for e in over["events"])


def test_text_output(capsys, csv_file: Path, session) -> None:
    assert main(["analyze", str(csv_file), "--release-threshold", f"{session.threshold}"]) == 0
    out = capsys.readouterr().out
    assert "releases" in out and "rocking" in out and "quality" in out
    assert not out.lstrip().startswith("{")


def test_raw_columns_with_calibration(capsys, tmp_path: Path, session) -> None:
    cal = Calibration((LinearModel(0.05, -2.0), LinearModel(0.05, -2.0), LinearModel(0.05, -2.0)))
    raw = cal.inverse(session.forces)
    path = tmp_path / "raw.csv"
    with path.open("w") as fh:
        fh.write("t,raw0,raw1,raw2\n")
        np.savetxt(fh, np.column_stack([session.t, raw]), delimiter=",", fmt="%.4f")
    cal_path = tmp_path / "cal.json"
    cal_path.write_text(json.dumps(cal.to_dict()))
    thr = f"{session.threshold}"
    doc = _json(
        capsys,
        [
            "analyze",
            str(path),
            "--json",
            "--release-threshold",
            thr,
            "--calibration",
            str(cal_path),
        ],
    )
    assert doc["summary"]["releases"]["count"] == len(session.of("release"))
    assert main(["analyze", str(path), "--release-threshold", thr]) == 1
    assert "raw" in capsys.readouterr().err


BAD_FILES = {
    "empty.csv": "",
    "no_t.csv": "time,f0\n0,1\n",
    "malformed.csv": "t,f0\n0,1\n0.1,abc\n",
    "ragged.csv": "t,f0,f1\n0,1,2\n0.1,3\n",
    "backwards.csv": "t,f0\n0,1\n0.2,1\n0.1,1\n",
    "no_rows.csv": "t,f0\n",
    "data.txt": "t,f0\n0,1\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_give_one_line_errors(capsys, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(BAD_FILES[name])
    assert main(["analyze", str(path), "--release-threshold", "100"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("knotsense analyze: error:") and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_threshold_and_impossible_options(capsys, csv_file: Path) -> None:
    assert main(["analyze", str(csv_file)]) == 1
    assert "--release-threshold" in capsys.readouterr().err
    assert main(["analyze", str(csv_file), "--release-threshold", "100", "--max-force", "50"]) == 1
    assert "max force" in capsys.readouterr().err
    assert main(["analyze", str(csv_file), "--release-threshold", "100", "--gap", "-1"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(csv_file), "--release-threshold", "-5"])
    assert exc.value.code == 2


def test_loader_dispatch(csv_file: Path) -> None:
    table = load_force_table(csv_file)
    t, forces, names, meta = table
    assert names == ("f0", "f1", "f2") and forces.shape == (t.size, 3) and meta == {}


def test_subprocess_round_trip(csv_file: Path, session) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "knotsense",
            "analyze",
            str(csv_file),
            "--json",
            "--release-threshold",
            f"{session.threshold}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"events", "summary"}
    bad = subprocess.run(
        [sys.executable, "-m", "knotsense", "analyze", str(csv_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
