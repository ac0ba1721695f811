"""Versioned state: SQLite by default, PostgreSQL by URL, one code path (SQLAlchemy/sqlmodel)."""
