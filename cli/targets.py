"""What a command-line argument names -- a device, a recording, a table -- and one-line refusals.

A device URL and a file path share the command line: ``knotsense info s.ksr``
and ``knotsense info /dev/ttyACM0`` differ only in what the path *is*. These
helpers look before anything is opened, so a recording is never taken for a
serial port (pyserial's "Inappropriate ioctl for device") and a device URL is
never taken for a file name; every refusal says in one line what was expected.
"""

from __future__ import annotations

import enum
import stat
from pathlib import Path

from knotsense.errors import ConfigurationError, SessionFileError

DEVICE_EXAMPLES = "/dev/ttyACM0, serial://..., ble://ADDRESS, sim://?..., replay://FILE.ksr"
"""How a device URL looks, for the messages (DESIGN.md "Device URLs")."""

FILE_SUFFIXES = frozenset(
    {".ksr", ".csv", ".json", ".parquet", ".png", ".svg", ".pdf", ".toml", ".xdf"}
)
"""Suffixes that make a path that does not exist read as a missing file, not a port."""


class Kind(enum.Enum):
    """What an argument names, decided from the text and the file system only."""

    URL = "a device URL"
    PORT = "a device or special file"
    MISSING = "a path that does not exist"
    DIRECTORY = "a directory"
    RECORDING = "a knotsense recording"
    TABLE = "a CSV table"
    FILE = "a regular file"


def kind_of(text: str) -> Kind:
    """Classify *text*; a recording is recognised by its magic bytes, not its suffix."""
    from knotsense.host.recording import is_recording

    if "://" in text:
        return Kind.URL
    path = Path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Kind.MISSING
    except OSError:  # unreadable, or a path through a file: let the opener say why
        return Kind.MISSING
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    if not stat.S_ISREG(mode):
        return Kind.PORT  # a tty, pty, fifo or socket: what a serial port is
    if is_recording(path):
        return Kind.RECORDING
    if path.suffix.lower() == ".csv":
        return Kind.TABLE
    return Kind.FILE


def _what(text: str, kind: Kind) -> str:
    return f"{text!r} is {kind.value}"


def device_url(text: str, option: str | None = None) -> str:
    """*text* when it can name a device; else a one-line :class:`ConfigurationError`.

    A path that does not exist is passed on (an unplugged port is the
    transport's to report) unless its suffix says it was meant as a file.
    *option* names the option the text came from (None: the positional URL).
    """
    kind = kind_of(text)
    if kind in (Kind.URL, Kind.PORT):
        return text
    if kind is Kind.MISSING and Path(text).suffix.lower() not in FILE_SUFFIXES:
        return text
    what = f"a device URL ({DEVICE_EXAMPLES})"
    expected = f"{option} expects {what}" if option else f"expected {what}"
    if kind is Kind.RECORDING:
        raise ConfigurationError(
            f"{expected}, but {_what(text, kind)} (to replay it: replay://{text}; "
            f"to see what it holds: knotsense info {text})"
        )
    if kind is Kind.MISSING:
        raise ConfigurationError(f"{expected}, but {text!r} looks like a file name (no such file)")
    raise ConfigurationError(f"{expected}, but {_what(text, kind)}")


def input_file(
    text: str, expected: str, accept: frozenset[Kind] | None = None, *, session: bool = False
) -> Path:
    """*text* as a path to an existing regular file, or a one-line :class:`SessionFileError`.

    Args:
        text: the argument as typed (not a Path: ``Path("sim://")`` is ``sim:``).
        expected: what the command reads, for the message ("a recording (.ksr)").
        accept: the regular-file kinds the command reads; ``None`` accepts any and
            leaves the content to the command's own loader.
        session: the command reads a recorded session: a device URL gets the hint
            to record it first.
    """
    kind = kind_of(text)
    if kind is Kind.URL:
        hint = f" (record it first: knotsense record {text} -o FILE.ksr)" if session else ""
        raise SessionFileError(f"expected {expected}, but {_what(text, kind)}{hint}")
    if kind is Kind.MISSING:
        raise SessionFileError(f"{text}: no such file (expected {expected})")
    if kind in (Kind.DIRECTORY, Kind.PORT):
        raise SessionFileError(f"expected {expected}, but {_what(text, kind)}")
    if accept is not None and kind not in accept:
        raise SessionFileError(f"expected {expected}, but {_what(text, kind)}")
    return Path(text)


def output_file(text: str, option: str, expected: str) -> Path:
    """*text* as a file to write: refuse a device URL or a directory in one line."""
    kind = kind_of(text)
    if kind in (Kind.URL, Kind.DIRECTORY, Kind.PORT):
        raise ConfigurationError(f"{option} expects {expected}, but {_what(text, kind)}")
    return Path(text)


def output_folder(text: str, option: str) -> Path:
    """*text* as a folder to fill (made if missing): refuse a file or a device URL."""
    kind = kind_of(text)
    if kind not in (Kind.DIRECTORY, Kind.MISSING):
        raise ConfigurationError(f"{option} expects a folder, but {_what(text, kind)}")
    return Path(text)
