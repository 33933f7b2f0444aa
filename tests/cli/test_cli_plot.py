"""`knotsense plot`: writes a readable PNG; bad outputs are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.synthetic import make_session

from knotsense.cli.main import main


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> tuple[Path, float]:
    s = make_session(3, rate=50.0, channels=3, lies=3)
    path = tmp_path_factory.mktemp("plot") / "session.csv"
    with path.open("w") as fh:
        fh.write("t,left,middle,right\n")
        np.savetxt(fh, np.column_stack([s.t, s.forces]), delimiter=",", fmt="%.5f")
    return path, s.threshold


def test_plot_writes_a_png(capsys, tmp_path: Path, csv_file) -> None:
    path, thr = csv_file
    out = tmp_path / "session.png"
    rc = main(
        [
            "plot",
            str(path),
            "-o",
            str(out),
            "--release-threshold",
            f"{thr}",
            "--max-force",
            f"{thr * 1.4}",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["out.jpg", "missing_dir/out.png"])
def test_bad_output_is_a_one_line_error(capsys, tmp_path: Path, csv_file, target: str) -> None:
    path, thr = csv_file
    rc = main(["plot", str(path), "-o", str(tmp_path / target), "--release-threshold", f"{thr}"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("knotsense plot: error:") and "Traceback" not in err
