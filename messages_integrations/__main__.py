"""``python -m messages_integrations``: the same as the ``messages-integrations`` command."""

from .cli import main

raise SystemExit(main())
