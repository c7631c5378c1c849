"""The test database: its tables, and emptying them (inside an app context)."""
from __future__ import annotations

from sqlalchemy import text

from app.extensions import db

# Children first, so SQLite's foreign keys allow each DELETE.
TABLES = (
    "revoked_tokens", "activity_logs", "notifications", "message_reactions", "message_edits", "attachments",
    "task_chat", "task_members", "tasks", "users",
)


def dialect(app) -> str:
    """The database's SQLAlchemy dialect: "sqlite" or "postgresql"."""
    with app.app_context():
        return db.engine.dialect.name


def empty_tables() -> None:
    """Delete every row of every table (PostgreSQL: and restart the ids)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    else:
        for table in TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


def snapshot(app, connection=None) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: equal snapshots mean nothing stored changed.
    Read in a new session, or on `connection` (one in autocommit mode sees every commit)."""
    if connection is not None:
        return {table: sorted(repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}")))
                for table in TABLES}
    with app.app_context():
        return snapshot(app, db.session)
