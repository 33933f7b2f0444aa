"""Which files a batch analyses: folders, globs and files, expanded and de-duplicated."""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from knotsense.errors import ConfigurationError

__all__ = ["SESSION_SUFFIXES", "expand_sources", "session_id"]

SESSION_SUFFIXES = (".ksr", ".csv", ".xdf")
"""File types a folder is searched for (a file named directly may be any loader's type)."""

_EDGE = 1 << 20


def expand_sources(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every session file named by *sources*, sorted, each once.

    A folder is searched recursively for :data:`SESSION_SUFFIXES`; a pattern
    with ``*``, ``?`` or ``[`` is a glob (``**`` recursive); anything else must
    be an existing file.

    Raises:
        ConfigurationError: a source names nothing.
    """
    found: dict[Path, None] = {}
    for source in sources:
        text = os.fspath(source)
        if any(ch in text for ch in "*?["):
            matches = [Path(m) for m in glob.glob(text, recursive=True)]
            files = [m for m in matches if m.is_file()]
            if not files:
                raise ConfigurationError(f"{text}: the pattern matches no file")
        else:
            path = Path(text)
            if path.is_dir():
                files = [p for p in path.rglob("*") if p.is_file() and p.suffix in SESSION_SUFFIXES]
            elif path.is_file():
                files = [path]
            else:
                raise ConfigurationError(f"{text}: no such file or folder")
        for f in files:
            found.setdefault(f.resolve(), None)
    return sorted(found)


def session_id(path: Path) -> str:
    """A stable id for a session file, from its content (size, first and last MiB).

    The id does not depend on where the file lives, so a dataset built on one
    machine is still recognised when the files move or a cluster mounts them
    elsewhere; reading two MiB keeps it cheap for a 2-hour recording.
    """
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=10)
    digest.update(size.to_bytes(8, "little"))
    with path.open("rb") as f:
        digest.update(f.read(_EDGE))
        if size > _EDGE:
            f.seek(max(_EDGE, size - _EDGE))
            digest.update(f.read(_EDGE))
    return digest.hexdigest()
