"""The typed records a reader yields, and the damage report of a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Damage",
    "EndRecord",
    "MarkRecord",
    "MetaRecord",
    "Record",
    "RxRecord",
    "TxRecord",
    "UnknownRecord",
]


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record: byte offset in the file and host receive time (unix s)."""

    offset: int
    host_time: float


@dataclass(frozen=True, slots=True)
class MetaRecord(Record):
    """Session metadata; the first one is complete, later ones are updates (merged shallowly)."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RxRecord(Record):
    """Bytes exactly as received: a byte-stream chunk (stream framing) or one packet."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TxRecord(Record):
    """Bytes sent to the device."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MarkRecord(Record):
    """A host-side mark: ``kind`` (link_lost, reconnected, gap, user, note ...) and details."""

    kind: str
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndRecord(Record):
    """Written at a clean close, with a summary."""

    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownRecord(Record):
    """A record of a kind this version does not know (a newer writer); kept raw."""

    kind: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """What was wrong with a file and what the reader did about it.

    Attributes:
        torn_tail_offset: where an incomplete/damaged tail starts (None: clean end).
        torn_tail_bytes: bytes ignored at the end.
        skipped: (offset, bytes) of each corrupt region skipped by salvage.
        clean_close: the file ends with an END record.
    """

    torn_tail_offset: int | None = None
    torn_tail_bytes: int = 0
    skipped: tuple[tuple[int, int], ...] = ()
    clean_close: bool = False

    @property
    def skipped_bytes(self) -> int:
        return sum(n for _, n in self.skipped)

    @property
    def ok(self) -> bool:
        """Nothing was lost (a clean file, possibly still without END)."""
        return self.torn_tail_offset is None and not self.skipped

    def as_dict(self) -> dict[str, Any]:
        return {
            "torn_tail_offset": self.torn_tail_offset,
            "torn_tail_bytes": self.torn_tail_bytes,
            "skipped": [list(s) for s in self.skipped],
            "skipped_bytes": self.skipped_bytes,
            "clean_close": self.clean_close,
        }
