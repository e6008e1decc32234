"""The polroute command line: one module per command; ``main`` is the entry point."""

from polroute.cli.app import main

__all__ = ["main"]
