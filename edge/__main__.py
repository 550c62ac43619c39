"""``python -m edge`` runs the CLI."""

from edge.cli import main

raise SystemExit(main())
