"""The ``knotsense`` command line: the application layer on top of the library.

``main`` parses and dispatches; ``common`` holds the helpers every subcommand
shares (argument types, ``--json`` output, device and analysis options); each
module of ``commands`` is one subcommand, discovered by its file. Nothing in
the library imports this package (DESIGN.md, "The house"); it may import
everything below it.
"""
