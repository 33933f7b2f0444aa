"""Reading a recording: :class:`SessionReader` (records, merged metadata, damage).

The file is scanned once at open (:mod:`~knotsense.host.recording.salvage`
finds the records and judges the damage); iterating decodes the typed records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from knotsense.errors import SessionFileError
from knotsense.host.recording.format import (
    JSON_KINDS,
    MAGIC,
    REC_HEAD,
    REC_HEAD_SIZE,
    RecordKind,
    check_header,
)
from knotsense.host.recording.records import (
    EndRecord,
    MarkRecord,
    MetaRecord,
    Record,
    RxRecord,
    TxRecord,
    UnknownRecord,
)
from knotsense.host.recording.salvage import scan

__all__ = ["SessionReader", "is_recording"]


def is_recording(path: str | os.PathLike[str]) -> bool:
    """True when *path* starts with the recording magic (whatever its suffix)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class SessionReader:
    """Reads a recording: its records, merged metadata and a damage report.

    Args:
        path: a recording (identified by its magic, any suffix).
        salvage: skip corrupt regions inside the file instead of raising.

    Raises:
        SessionFileError: missing, empty, not a recording, cut inside the
            header, no META record, or (without *salvage*) corrupt inside.

    The file is scanned once at open (records are checked, not decoded);
    iterating yields typed frozen records in file order.
    """

    def __init__(self, path: str | os.PathLike[str], *, salvage: bool = False) -> None:
        self.path = Path(path)
        self.salvage = salvage
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise SessionFileError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise SessionFileError(f"{self.path}: is a directory, not a recording") from None
        except OSError as exc:
            raise SessionFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        check_header(self.path, data)
        self._data = data
        self._index, self.damage = scan(self.path, data, salvage)
        meta = [i for i, (_, kind, _) in enumerate(self._index) if kind == RecordKind.META]
        if not meta:
            raise SessionFileError(f"{self.path}: no META record (not a complete recording)")
        self.metadata: dict[str, Any] = {}
        for i in meta:
            record = self._record(*self._index[i])
            assert isinstance(record, MetaRecord)
            self.metadata.update(record.data)

    # records

    def _record(self, pos: int, kind: int, total: int) -> Record:
        data = self._data
        _, _, host_time = REC_HEAD.unpack_from(data, pos)
        body = data[pos + REC_HEAD_SIZE : pos + total - 4]
        if kind in JSON_KINDS:
            try:
                obj = json.loads(body)
            except (UnicodeDecodeError, ValueError):
                obj = None
            if not isinstance(obj, dict):
                raise SessionFileError(
                    f"{self.path}: record at byte offset {pos} is not a JSON object"
                )
            if kind == RecordKind.META:
                return MetaRecord(pos, host_time, obj)
            if kind == RecordKind.MARK:
                return MarkRecord(pos, host_time, str(obj.pop("kind", "")), obj)
            return EndRecord(pos, host_time, obj)
        if kind == RecordKind.RX:
            return RxRecord(pos, host_time, body)
        if kind == RecordKind.TX:
            return TxRecord(pos, host_time, body)
        return UnknownRecord(pos, host_time, kind, body)

    def __iter__(self) -> Iterator[Record]:
        for entry in self._index:
            yield self._record(*entry)

    def records(self, *kinds: type[Record]) -> Iterator[Record]:
        """Records of the given classes (all when none given), in file order."""
        for record in self:
            if not kinds or isinstance(record, kinds):
                yield record

    def __len__(self) -> int:
        return len(self._index)

    @property
    def framing(self) -> str:
        """ "stream" or "packet", from the metadata."""
        framing = self.metadata.get("framing")
        if framing not in ("stream", "packet"):
            raise SessionFileError(f"{self.path}: metadata has no valid framing ({framing!r})")
        return framing

    @property
    def start_time(self) -> float:
        """Session start, unix seconds (metadata ``start_unix``, else the first record)."""
        start = self.metadata.get("start_unix")
        if isinstance(start, int | float):
            return float(start)
        return float(REC_HEAD.unpack_from(self._data, self._index[0][0])[2])

    @property
    def end_time(self) -> float:
        """Host time of the last record."""
        return float(REC_HEAD.unpack_from(self._data, self._index[-1][0])[2])

    @property
    def summary(self) -> dict[str, Any] | None:
        """The END record's summary, when the file was closed cleanly."""
        if self.damage.clean_close:
            record = self._record(*self._index[-1])
            assert isinstance(record, EndRecord)
            return record.summary
        return None
