"""``python -m knotsense``: the same as the ``knotsense`` command."""

from knotsense.cli.main import main

raise SystemExit(main())
