"""The end of every request and socket event: its database session is removed,
even when the database went away under it."""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

log = logging.getLogger(__name__)


def end_session(_exc: BaseException | None = None) -> None:
    """Remove the session, surviving a connection the server closed meanwhile.

    Removing a session rolls back its open transaction; when the database went away
    after the last statement, that ROLLBACK fails, and the failure would escape the
    teardown: the REST answer would become a bare 500, a socket event's ack would be
    lost. The failed ROLLBACK has already discarded the connection (SQLAlchemy sees a
    disconnect), so the session only needs removing again, now without a transaction.
    """
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        log.warning("database session ended on a lost connection (%s); connection discarded", type(exc).__name__)
        db.session.remove()


def register(app: Flask) -> None:
    # Each request and each socket event has its own app context. Registered after
    # Flask-SQLAlchemy's own teardown, so it runs first (Flask runs them in reverse).
    app.teardown_appcontext(end_session)
