"""What every layer shares and nothing else: errors that point at a user's line, the database
plumbing of the state and the inference log, the duration grammar, version references. It
imports no other mlx package (tests/unit/test_layering.py)."""
