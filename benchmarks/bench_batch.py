"""Benchmark ``batch``: sessions/s on a local Dask cluster against a plain loop of analyze.

The same simulated recordings (24 x 10 min, 4 channels at 80 Hz; made
before timing) are analysed twice in this process: by a plain loop calling
what ``knotsense analyze`` runs for each file and writing nothing (the
baseline), and by :func:`run_batch` on a fresh local cluster (one worker
process per core) that also writes the Parquet dataset. ``ratio`` is batch
over loop: on 2 cores it can reach about 2 when the cluster's start-up and
the Parquet writes are small against the analysis.

Also reported: the peak memory of one worker analysing a 2-hour recording
(``worker_2h_peak_mb``, a subprocess's max RSS) against a subprocess that
only imports the same modules (``import_only_mb``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "study"))

NAME = "batch"

_WORKER = """
import resource, sys
from knotsense.study.batch import analyse_into
from knotsense.host.analysis_options import AnalysisOptions
if sys.argv[1] != "-":
    status = analyse_into(sys.argv[1], sys.argv[2], AnalysisOptions())
    assert "error" not in status, status
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_mb(*args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, *args], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


def run(quick: bool) -> dict:
    from study_sessions import make_sessions

    from knotsense.study.batch import run_batch
    from knotsense.study.session_result import analyse_source

    count, duration = (8, 120.0) if quick else (24, 600.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_sessions(root / "recs", count, duration)
        started = time.perf_counter()
        for f in files:
            analyse_source(f)
        loop_s = time.perf_counter() - started
        started = time.perf_counter()
        first: list[float] = []
        result = run_batch(
            files,
            root / "out",
            progress=lambda done, total, status: first.append(time.perf_counter()),
        )
        batch_s = time.perf_counter() - started
        assert len(result.done) == count, result.failed

        long_s = 600.0 if quick else 7200.0
        (long_file,) = make_sessions(root / "long", 1, long_s)
        peak = _peak_mb(str(long_file), str(root / "long-out"))
        base = _peak_mb("-", "-")
    loop_rate, batch_rate = count / loop_s, count / batch_s
    return {
        "value": round(batch_rate, 2),
        "unit": "sessions/s",
        "baseline": round(loop_rate, 2),
        "ratio": round(batch_rate / loop_rate, 3),
        "sessions": count,
        "workers": result.workers,
        "seconds_to_first_session": round(first[0] - started, 2),
        "cores": os.cpu_count(),
        "long_session_s": long_s,
        "worker_2h_peak_mb": round(peak, 1),
        "import_only_mb": round(base, 1),
    }
