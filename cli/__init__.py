"""The ``mlx`` command (``cli.app``): thin — parse flags, call the core, map errors."""

from cli.app import main

__all__ = ["main"]
