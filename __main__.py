"""``python -m knotsense``: the same as the ``knotsense`` command."""

from knotsense.host.cli.main import main

raise SystemExit(main())
