"""The command line."""

from albench.cli.main import main

__all__ = ["main"]
