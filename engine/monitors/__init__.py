"""Monitors run by ``mlx refresh``: which are due (``schedule``), each run through its provider's
``Watcher`` capability, its alert (``engine.alerting``) and its event in the state (``run``)."""
