"""The inference log: one record per gateway request, feedback joined on ``request_id``.

``records`` (the record shapes), ``schema`` (tables, indexes, migrations), ``store`` (SQLite
WAL / PostgreSQL), ``writer`` (the background batch writer a request handler submits to),
``query`` (what ``mlx logs``, rollouts, monitors, budgets and the dashboard read), ``buckets``
(log-scale latency buckets for percentiles), ``times`` (``--since`` values) and ``location``
(which database a spec dir logs to).

Importing this package imports nothing heavy; ``schema``, ``store`` and ``query`` import
SQLAlchemy.
"""
