"""Argument and output helpers shared by all subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from knotsense.errors import ConfigurationError


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json``: print exactly one JSON object on stdout instead of text."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout"
    )


def print_json(obj: Any) -> None:
    """Print one JSON object on one line of stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")


def existing_file(text: str) -> Path:
    """An argparse ``type=`` for a file that must exist and be a regular file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    return path


def positive_float(text: str) -> float:
    """An argparse ``type=`` for a strictly positive number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def require(condition: bool, message: str) -> None:
    """Raise a one-line :class:`ConfigurationError` unless *condition* holds."""
    if not condition:
        raise ConfigurationError(message)
