"""Study scale: many sessions analysed on Dask into a Parquet dataset, and HTML reports.

The layer above ``host`` for researchers and clinics: ``run_batch`` analyses
recordings with the same pipeline as ``knotsense analyze`` on a
``dask.distributed`` cluster (local by default) and writes the ``sessions``
and ``events`` tables (docs/study.md); ``write_session_report`` and
``write_study_report`` write self-contained HTML pages (Bokeh, inline).

Needs the ``study`` extra (``pip install 'knotsense[study]'``); names are
imported lazily so ``import knotsense.study`` costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AnalysisOptions": "knotsense.host.analysis_options",
    "analyse_source": "knotsense.study.session_result",
    "SessionResult": "knotsense.study.session_result",
    "expand_sources": "knotsense.study.sources",
    "run_batch": "knotsense.study.batch",
    "BatchResult": "knotsense.study.batch",
    "read_dataset": "knotsense.study.dataset",
    "write_session_report": "knotsense.study.report_session",
    "write_study_report": "knotsense.study.report_study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'knotsense.study' has no attribute {name!r}")
    return getattr(import_module(module), name)
