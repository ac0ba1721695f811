"""mlx engine: load → validate → resolve → graph → plan → apply.

The engine never imports a concrete provider (ruff's banned-api enforces it).
"""

__version__ = "0.1.0"
