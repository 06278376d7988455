"""``python -m skdfa``: the ``skdfa`` command (see ``skdfa._cli``)."""

from ._cli import main

raise SystemExit(main())
