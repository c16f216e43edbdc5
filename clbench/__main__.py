"""`python -m clbench`: the command line."""

from clbench.cli import entry

entry()
