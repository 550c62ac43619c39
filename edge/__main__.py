"""``python -m edge`` runs the CLI."""

from edge.cli.main import main

raise SystemExit(main())
