"""One module per ``knotsense`` subcommand.

Each module defines ``COMMAND`` (its name), ``HELP`` (one line),
``configure(parser)`` and ``run(args) -> int``. Modules are discovered by
:mod:`knotsense.cli.main`, so adding a subcommand is adding a file. Keep
module-level imports light: heavy imports belong inside ``run``.
"""
