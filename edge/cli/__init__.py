"""The command line: ``edge run | status | verify | keys | demo | fleet | score | bench``.

:func:`main` parses the arguments and dispatches to the command modules of this package;
an :class:`edge.errors.EdgeError` becomes one line on stderr and exit status 2.
"""

from edge.cli.main import main

__all__ = ["main"]
