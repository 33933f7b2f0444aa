"""Finding the records of a file, and telling a torn tail from corruption.

An incomplete or damaged region that runs to the end of the file is a *torn
tail* (the normal result of a crash): it is reported in :class:`Damage` and
ignored. A damaged region followed by a valid record is corruption:
:class:`~knotsense.errors.SessionFileError` naming the byte offset, unless
``salvage=True``, which skips to the next valid record and reports how many
bytes were skipped.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from knotsense.errors import SessionFileError
from knotsense.host.recording.format import (
    CRC,
    FILE_HEADER_SIZE,
    MAX_BODY,
    MAX_KIND,
    OVERHEAD,
    REC_HEAD,
    REC_HEAD_SIZE,
    RecordKind,
)
from knotsense.host.recording.records import Damage

__all__ = ["IndexEntry", "scan"]

IndexEntry = tuple[int, int, int]
"""(byte offset, kind, total size) of one valid record."""

_KINDS = bytes(range(1, MAX_KIND + 1))


class _Bad(Exception):
    """A record at some offset does not parse; ``incomplete`` if it runs past EOF."""

    def __init__(self, why: str, incomplete: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.incomplete = incomplete


def _check_at(data: bytes, pos: int) -> tuple[int, int]:
    """(kind, total size) of a valid record at *pos*, else raise :class:`_Bad`."""
    size = len(data)
    if size - pos < REC_HEAD_SIZE:
        raise _Bad("incomplete record header", incomplete=True)
    length, kind, _ = REC_HEAD.unpack_from(data, pos)
    if length > MAX_BODY:
        raise _Bad(f"impossible record length {length}")
    if not 1 <= kind <= MAX_KIND:
        raise _Bad(f"invalid record kind {kind}")
    end = pos + OVERHEAD + length
    if end > size:
        raise _Bad("record runs past the end of the file", incomplete=True)
    (crc,) = CRC.unpack_from(data, end - 4)
    if zlib.crc32(memoryview(data)[pos : end - 4]) != crc:
        raise _Bad("CRC mismatch")
    return kind, end - pos


def _resync(data: bytes, pos: int) -> int | None:
    """Offset of the next valid record after *pos*, or None."""
    size = len(data)
    p = pos + 1
    while p + OVERHEAD <= size:
        # Cheap filter first: the kind byte must be legal.
        if data[p + 4] in _KINDS:
            try:
                _check_at(data, p)
            except _Bad:
                pass
            else:
                return p
        p += 1
    return None


def scan(path: Path, data: bytes, salvage: bool) -> tuple[list[IndexEntry], Damage]:
    """Index the valid records after the file header and report the damage.

    Raises:
        SessionFileError: a corrupt region followed by valid records, unless *salvage*.
    """
    index: list[IndexEntry] = []
    skipped: list[tuple[int, int]] = []
    pos = FILE_HEADER_SIZE
    size = len(data)
    torn_at: int | None = None
    while pos < size:
        try:
            kind, total = _check_at(data, pos)
        except _Bad as bad:
            nxt = _resync(data, pos)
            if nxt is None:
                torn_at = pos  # nothing valid follows: a torn tail
                break
            if not salvage:
                raise SessionFileError(
                    f"{path}: corrupt record at byte offset {pos} ({bad.why}); "
                    f"{nxt - pos} bytes damaged before valid records (salvage skips them)"
                ) from None
            skipped.append((pos, nxt - pos))
            pos = nxt
            continue
        index.append((pos, kind, total))
        pos += total
    clean = bool(index) and index[-1][1] == RecordKind.END and torn_at is None
    damage = Damage(
        torn_tail_offset=torn_at,
        torn_tail_bytes=0 if torn_at is None else size - torn_at,
        skipped=tuple(skipped),
        clean_close=clean,
    )
    return index, damage
