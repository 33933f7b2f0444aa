"""Columns of the ``sessions`` and ``events`` tables, with their units.

The tables are Hive-partitioned by ``device_serial`` (a folder
``device_serial=<serial>`` per device, one Parquet file per session), so the
partition column lives in the path, not in the files. Units are stored in
each field's Parquet metadata (``unit``) and listed in docs/study.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EVENT_COLUMNS", "PARTITION", "SESSION_COLUMNS", "arrow_schema"]

PARTITION = "device_serial"

# (name, arrow type name, unit, description)
SESSION_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("session_id", "string", "", "content id of the session file"),
    ("source", "string", "", "path of the session file when analysed"),
    ("file_type", "string", "", "ksr, csv or xdf"),
    ("device_model", "string", "", "device model from DeviceInfo"),
    ("firmware", "string", "", "firmware version a.b.c"),
    ("sensor", "string", "", "sensor kind of the calibration (load_cell, fsr)"),
    ("calibration_checksum", "string", "", "checksum of the calibration record applied"),
    ("calibration_date", "string", "", "date of that calibration"),
    ("calibration_verdict", "string", "", "bench verdict of that calibration"),
    ("start_time", "string", "ISO 8601", "session start (host clock, UTC)"),
    ("channels", "int32", "", "force channels analysed"),
    ("duration_s", "float64", "s", "first to last sample"),
    ("samples", "int64", "", "samples analysed"),
    ("sample_rate_hz", "float64", "Hz", "mean sample rate outside gaps"),
    ("release_threshold_n", "float64", "N", "release level used"),
    ("hold_s", "float64", "s", "hold a release needs"),
    ("gap_s", "float64", "s", "dips bridged inside a release"),
    ("max_force_n", "float64", "N", "overpressure level (null: not checked)"),
    ("contacts", "int32", "", "contacts (someone on the knob)"),
    ("contact_time_s", "float64", "s", "time in contact"),
    ("releases", "int32", "", "release episodes (held >= hold_s)"),
    ("release_hold_times_s", "list<float64>", "s", "hold time of each release"),
    ("release_time_s", "float64", "s", "sum of release hold times"),
    ("longest_release_s", "float64", "s", "longest release"),
    ("mean_release_force_n", "float64", "N", "mean force over the releases (null: none)"),
    ("time_in_band_s", "float64", "s", "time at or above the release threshold"),
    ("rocking_episodes", "int32", "", "rocking episodes"),
    ("rocking_time_s", "float64", "s", "time rocking"),
    ("circling_episodes", "int32", "", "circling episodes (null: detector not available)"),
    ("overpressure_episodes", "int32", "", "overpressure episodes"),
    ("overpressure_time_s", "float64", "s", "time above max_force_n"),
    ("gaps", "int32", "", "holes in the data longer than 0.1 s"),
    ("gap_time_s", "float64", "s", "time in those holes"),
    ("spikes_removed", "int64", "", "samples replaced by the spike filter"),
    ("nan_samples", "int64", "", "samples missing (NaN)"),
    ("saturated_samples", "int64", "", "samples at the input's limits"),
    ("analysed_at", "string", "ISO 8601", "when the batch analysed the session"),
    ("knotsense_version", "string", "", "version that analysed it"),
)

EVENT_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("session_id", "string", "", "the session (sessions.session_id)"),
    ("kind", "string", "", "contact, release, rocking, circling or overpressure"),
    ("start_s", "float64", "s", "start, on the session's time axis"),
    ("end_s", "float64", "s", "end"),
    ("duration_s", "float64", "s", "end - start"),
    ("detected_at_s", "float64", "s", "when the live pipeline closed the episode"),
    ("mean_force_n", "float64", "N", "mean total force (release, rocking)"),
    ("peak_force_n", "float64", "N", "peak total force (overpressure, contact)"),
    ("frequency_hz", "float64", "Hz", "rocking frequency"),
    ("cycles", "int32", "", "rocking cycles"),
    ("peak_to_peak_n", "float64", "N", "rocking swing"),
    ("detail", "string", "", "JSON object: any further figures of the event"),
)


def arrow_schema(columns: tuple[tuple[str, str, str, str], ...]) -> Any:
    """The pyarrow schema of *columns* (partition column excluded), units in metadata."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "list<float64>": pa.list_(pa.float64()),
    }
    return pa.schema(
        [
            pa.field(name, types[kind], metadata={"unit": unit, "description": text})
            for name, kind, unit, text in columns
        ]
    )
