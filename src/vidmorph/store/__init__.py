"""The store: the only code that writes SQL (SQLAlchemy 2 Core, Alembic migrations)."""
