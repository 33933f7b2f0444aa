"""The raw capture of a session: an append-only, crash-safe record file (``.ksr``).

A recording is the source of truth for a session: every byte received from the
device exactly as it arrived, with its host receive time, every byte sent, the
session metadata and the host's marks (link lost, reconnected, user notes).
Everything else (decoded samples, CSV, Parquet, plots) is derived from it.
docs/recording-format.md is the normative description of the bytes.

Where each part lives:

* :mod:`~knotsense.host.recording.format` -- the bytes: header, record framing, kinds, marks;
* :mod:`~knotsense.host.recording.records` -- the typed records and the :class:`Damage` report;
* :mod:`~knotsense.host.recording.metadata` -- JSON bodies and the host facts;
* :mod:`~knotsense.host.recording.writer` -- :class:`Recorder` (buffering, fsync thread);
* :mod:`~knotsense.host.recording.reader` -- :class:`SessionReader`;
* :mod:`~knotsense.host.recording.salvage` -- torn tails, corruption, resync.

Everything is re-exported here: ``from knotsense.host.recording import Recorder``.
"""

from knotsense.host.recording.format import (
    FILE_HEADER_SIZE,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    LINK_MARKS,
    MAGIC,
    MARK_GAP,
    MARK_LINK_LOST,
    MARK_NOTE,
    MARK_RECONNECTED,
    MARK_USER,
    MAX_BODY,
    SUFFIX,
    RecordKind,
    file_header,
    pack_record,
)
from knotsense.host.recording.metadata import default_metadata, jsonable
from knotsense.host.recording.reader import SessionReader, is_recording
from knotsense.host.recording.records import (
    Damage,
    EndRecord,
    MarkRecord,
    MetaRecord,
    Record,
    RxRecord,
    TxRecord,
    UnknownRecord,
)
from knotsense.host.recording.writer import Recorder

__all__ = [
    "FILE_HEADER_SIZE",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "LINK_MARKS",
    "MAGIC",
    "MARK_GAP",
    "MARK_LINK_LOST",
    "MARK_NOTE",
    "MARK_RECONNECTED",
    "MARK_USER",
    "MAX_BODY",
    "SUFFIX",
    "Damage",
    "EndRecord",
    "MarkRecord",
    "MetaRecord",
    "Record",
    "RecordKind",
    "Recorder",
    "RxRecord",
    "SessionReader",
    "TxRecord",
    "UnknownRecord",
    "default_metadata",
    "file_header",
    "is_recording",
    "jsonable",
    "pack_record",
]
