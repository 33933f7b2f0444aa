"""Running the CLI in-process and checking its one-line errors, for the tests/cli modules."""

from __future__ import annotations

import pytest

from knotsense.cli.main import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``knotsense ARGV`` in-process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str) -> str:
    """The single ``knotsense COMMAND: error: ...`` line of *err* (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"knotsense {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]
