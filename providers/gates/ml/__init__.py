"""ML gates: rows → predictions → metrics (overall, per slice, for a baseline) → verdict."""
