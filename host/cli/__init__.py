"""The ``knotsense`` command line: one command, one module per subcommand."""
