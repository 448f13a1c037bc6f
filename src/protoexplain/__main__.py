"""Allow ``python -m protoexplain``."""

from protoexplain.cli import main

raise SystemExit(main())
