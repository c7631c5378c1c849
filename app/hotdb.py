"""A few PostgreSQL connections in autocommit, for the single statements of the hot path.

The plain chat send is one statement (services/chat_fast.py) that commits by
itself. Through SQLAlchemy's pool each one also paid for switching the pooled
connection to autocommit and back, and for SQLAlchemy's statement machinery:
together more than the statement's own round trip cost the gevent worker. These
connections are made in autocommit once and run the statement with psycopg
directly (prepared on each connection, so the server parses it once).

They are checked like the pool's (app/dbsession.py): a connection the server
closed while it was idle is replaced, found without a round trip.
A connection that fails is dropped; the error reaches the caller, and
`errors.as_app_error` answers `unavailable` for a database that cannot serve. A
statement the server refuses (a constraint, a deadlock) leaves its connection in use.
At most `size` statements run at once; one more waits up to `timeout` seconds for
a turn, then is `unavailable` too. `close()` runs when the app's engine is disposed.

`read_one` runs a SQLAlchemy Core select there too (connect's user lookup, join's
membership): written once, as SQLAlchemy statements, and run in the ORM session
instead on SQLite or when the session already holds a transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from flask import current_app
from sqlalchemy import Select

from . import cooperative
from .batches import Batcher
from .dbsession import server_closed
from .errors import Unavailable
from .extensions import db


class HotConnections:
    def __init__(self, conninfo: str, *, size: int, timeout: float, connect_timeout: int):
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._slots = cooperative.bounded_semaphore(size)
        self._lock = cooperative.lock()
        self._idle: list[psycopg.Connection] = []
        self._closed = False
        self._batchers: dict[str, Batcher[Any, Any]] = {}

    def fetch_one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run one statement in autocommit; its first row, or None."""
        rows = self.fetch_all(sql, params, first_only=True)
        return rows[0] if rows else None

    def fetch_all(self, sql: str, params: dict[str, Any], *, first_only: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit; its rows."""
        if not self._slots.acquire(timeout=self._timeout):
            raise Unavailable()
        try:
            conn = self._checkout()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql, params, prepare=True)
                    rows = cursor.fetchmany(1) if first_only else cursor.fetchall()
            except psycopg.Error as error:
                if error.sqlstate is not None and not conn.closed:
                    # The server refused the statement (in autocommit, it stored
                    # nothing), and the connection is as good as before.
                    self._checkin(conn)
                else:
                    self._discard(conn)
                raise
            except BaseException:
                self._discard(conn)
                raise
            self._checkin(conn)
            return rows
        finally:
            self._slots.release()

    def batcher(self, name: str, make: Callable[[], Batcher[Any, Any]]) -> Batcher[Any, Any]:
        """This app's batcher called `name` (app/batches.py), made once."""
        found = self._batchers.get(name)
        if found is None:
            with self._lock:
                found = self._batchers.setdefault(name, make())
        return found

    def close(self, *_args: Any) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)

    def _checkout(self) -> psycopg.Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._connect_timeout)
            if not conn.closed and not server_closed(conn.pgconn):
                return conn
            self._discard(conn)  # the server closed it while it was idle

    def _checkin(self, conn: psycopg.Connection) -> None:
        with self._lock:
            if not self._closed and not conn.closed:
                self._idle.append(conn)
                return
        self._discard(conn)

    @staticmethod
    def _discard(conn: psycopg.Connection) -> None:
        try:
            conn.close()
        except psycopg.Error:
            pass


_compiled: dict[int, tuple[Select[*tuple[Any, ...]], str]] = {}


def connections() -> HotConnections | None:
    """This app's hot connections: made on PostgreSQL only (app/__init__.py)."""
    return current_app.extensions.get("taskchat_hotdb")


def session_in_transaction() -> bool:
    """Whether this event or request's ORM session holds a transaction; an event that
    has not used the ORM has no session, and none is made to ask."""
    return db.session.registry.has() and db.session().in_transaction()


def read_one(stmt: Select[*tuple[Any, ...]], params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The first row of a select whose parameters are `bindparam`s named in `params`.
    On a hot connection when the app has them (PostgreSQL) and this event or
    request holds no transaction yet (asking for a second connection while holding
    one could wait forever), else in the ORM session."""
    hot = connections()
    if hot is None or session_in_transaction():
        return db.session.execute(stmt, params).one_or_none()
    entry = _compiled.get(id(stmt))
    if entry is None or entry[0] is not stmt:
        entry = _compiled[id(stmt)] = (stmt, str(stmt.compile(dialect=db.engine.dialect)))
    return hot.fetch_one(entry[1], params)
