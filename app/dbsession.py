"""Database connections around each request and socket event: the session is
removed at the end, even when the database went away under it; a pooled
connection is checked at checkout without a round trip."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import patches
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
    with app.app_context():
        ping_without_a_round_trip(db.engine)


def ping_without_a_round_trip(engine: Engine) -> None:
    """PostgreSQL: check a pooled connection at checkout by looking, not asking.

    `pool_pre_ping` sends `SELECT 1` at every checkout: a round trip, which under
    gevent cost about a fifth of the worker's CPU per chat message. Whether the
    server has closed an idle connection can be read off the connection itself
    (`server_closed`), without asking anything. A connection cut with no word from
    the server looks healthy either way until TCP gives up; `SELECT 1` would hang
    on it too.
    """
    if engine.dialect.name != "postgresql":
        return
    patches.ping_by_looking(engine, lambda dbapi_connection: server_closed(dbapi_connection.pgconn))


def server_closed(pgconn: Any) -> bool:
    """Whether the server has closed this idle connection (a restart,
    `pg_terminate_backend`, an idle timeout). It then has something to read: its
    last word, then the end of the stream, which libpq reports as an error. A
    healthy idle connection has nothing to read, or a harmless message (a notice,
    a changed parameter) that libpq takes in and the connection stays good."""
    for _ in range(4):
        if not has_input(pgconn.socket):
            break
        try:
            pgconn.consume_input()
        except Exception:  # noqa: BLE001 (psycopg's OperationalError: "server closed the connection unexpectedly")
            return True
    closed: bool = pgconn.status != _CONNECTION_OK
    return closed


def has_input(fd: int) -> bool:
    """Whether the socket has something to read now (never waits)."""
    try:
        readable, _, _ = _select(fd)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _select(fd: int) -> tuple[list[Any], list[Any], list[Any]]:
    # The operating system's select, even under gevent: a zero timeout never blocks,
    # so there is nothing to cooperate about, and gevent's would set up watchers.
    global _original_select
    if _original_select is None:
        _original_select = _find_original_select()
    return _original_select([fd], [], [], 0)


# select.select's type (gevent's `get_original` hands it back untyped).
_SelectFunction = Callable[..., tuple[list[Any], list[Any], list[Any]]]


def _find_original_select() -> _SelectFunction:
    import select

    if "gevent" in sys.modules:
        from gevent import monkey

        original: _SelectFunction = monkey.get_original("select", "select")
        return original
    return select.select


_original_select: _SelectFunction | None = None  # found on first use: gevent may patch after this module is imported
_CONNECTION_OK = 0  # libpq's CONNECTION_OK (psycopg.pq.ConnStatus.OK)
