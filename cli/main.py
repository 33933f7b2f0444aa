"""Entry point of the ``knotsense`` command.

Subcommands are discovered from :mod:`knotsense.cli.commands`; every one
gets ``--help``, and every failure that is ours (a :class:`KnotsenseError`) is
printed as one line on stderr with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from knotsense._version import __version__
from knotsense.cli import commands as _commands_pkg
from knotsense.errors import KnotsenseError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def discover_commands() -> dict[str, ModuleType]:
    """Import every subcommand module and map its command name to it."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(_commands_pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands_pkg.__name__}.{info.name}")
        found[module.COMMAND] = module
    return dict(sorted(found.items()))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per discovered command."""
    parser = argparse.ArgumentParser(
        prog="knotsense",
        description="Log, simulate, analyse and calibrate a sensorised trigger-point massager.",
    )
    parser.add_argument("--version", action="version", version=f"knotsense {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in discover_commands().items():
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or EXIT_OK)
    except KnotsenseError as exc:
        print(f"knotsense {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"knotsense {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
