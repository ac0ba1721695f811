"""The ``mlx`` command (``engine.cli.app``): thin — parse flags, call the core, map errors."""

from engine.cli.app import main

__all__ = ["main"]
