"""Typed models of the mlx spec language (SPEC.md). Pure data: no I/O here."""
