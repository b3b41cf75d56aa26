"""``python -m regularkit`` is the ``regularkit`` command."""
from regularkit.cli import main

raise SystemExit(main())
