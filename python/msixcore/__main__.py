"""``python -m msixcore`` runs the CLI."""

from msixcore.cli import main

raise SystemExit(main())
