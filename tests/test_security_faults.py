"""Faults inside the server: a handler that raises, a database that fails during a send.

- An unexpected exception is an `internal_error` (ack, `error` event, REST 500)
  that says nothing of what went wrong; the same socket and everyone else carry on.
- A database failure during a send is `unavailable` and retryable: the
  transaction is rolled back, nothing is stored or broadcast, and the next send
  (the retry with the same clientId) stores the message once. The failure is
  real: on SQLite another connection holds the write lock (and the app's lock
  wait is shortened for the test); on PostgreSQL the app's connection is
  terminated by the server (`pg_terminate_backend`) while the send waits for a
  row lock another connection holds.
- PostgreSQL only, the server closing the app's connection at other moments:
  before the COMMIT (nothing stored, nothing announced), between two statements,
  after the last statement of an event (the answer must not be lost when the
  session's ROLLBACK fails), while idle in the pool (pool_pre_ping replaces it),
  and under /health (503, then 200).
- Every socket event ends with its session removed and its connection back in
  the pool; in production no error says anything internal.

The e2e test tests/e2e/test_live_db_faults.py stops a whole PostgreSQL cluster
under a live server; this module covers the same paths in-process.
"""
from __future__ import annotations

import logging
import socket as net
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import event

from app import create_app
from app.services.tokens import issue_access_token
from app.extensions import db
from app.services import reads

from toolkit.database import dialect
from toolkit.env import app_env
from toolkit.sockets import drain, emit, events, join, send
from toolkit.wire import UNAVAILABLE

INTERNAL = {"code": "internal_error", "message": "Internal server error"}
# What an exception could leak if its text reached a client.
SECRET = "boom: SELECT password FROM users WHERE token='eyJsecret'"
INTERNALS = ("boom", "SELECT", "UPDATE", "INSERT", "Traceback", 'File "', "sqlite", "psycopg", "sqlalchemy",
             "eyJsecret", "password")
PRODUCTION = {
    "APP_ENV": "production", "ALLOW_SQLITE_IN_PRODUCTION": "1",
    "SECRET_KEY": "faults-test-secret-key-" + "p" * 32, "JWT_SECRET_KEY": "faults-test-jwt-secret-" + "q" * 32,
}


def no_internals(payload) -> None:
    text = str(payload)
    assert not [word for word in INTERNALS if word.lower() in text.lower()], text


def session_state(app) -> tuple[int, int]:
    """(sessions still registered, connections checked out of the pool): (0, 0) between events."""
    with app.app_context():
        engine = db.engine
    return len(db.session.registry.registry), engine.pool.checkedout()


# ---- a database that fails during a send, for real ----------------------------------
@contextmanager
def database_fails_during_send(app, task_id: int) -> Iterator[list[int]]:
    """While inside, a chat write to the task fails in the database.

    SQLite: another connection holds the write lock; the app waits 50 ms for it
    (the app's own busy_timeout is 10 s) and gets "database is locked".
    PostgreSQL: another connection holds the task's row lock; the write waits
    for it, and a watcher terminates the waiting backend, as a failover or an
    administrator would. Yields the pids terminated (PostgreSQL).
    """
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        locker = sqlite3.connect(engine.url.database, isolation_level=None, timeout=1)
        locker.execute("BEGIN IMMEDIATE")

        def short_wait(dbapi_connection, _record, _proxy) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=50")

        event.listen(engine, "checkout", short_wait)
        try:
            yield []
        finally:
            event.remove(engine, "checkout", short_wait)
            locker.execute("ROLLBACK")
            locker.close()
        return

    # A writer of the task: the general path's `UPDATE tasks`, or the one-statement
    # send's `FOR UPDATE` (pg_stat_activity shows only a statement's first 1024 bytes).
    with cut_while_waiting(engine, "SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task_id,),
                           "%UPDATE%") as terminated:
        yield terminated


@contextmanager
def _terminated_once(app, engine_event: str, wanted: Callable[..., bool]) -> Iterator[list[int]]:
    """PostgreSQL: at the first `engine_event` (a SQLAlchemy engine event) that `wanted`
    accepts, the server terminates the app's connection, as a failover or
    `pg_ctl stop -m fast` does. The hook only picks the moment; the termination is
    real. Yields the pids terminated."""
    with app.app_context():
        engine = db.engine
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    terminated: list[int] = []

    def terminate(conn, *args) -> None:
        if terminated or not wanted(*args):
            return
        cursor = args[0] if args else None
        pid = (cursor.connection if cursor is not None else conn.connection.dbapi_connection).info.backend_pid
        with psycopg.connect(conninfo, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0] is True
        terminated.append(pid)

    event.listen(engine, engine_event, terminate)
    try:
        yield terminated
    finally:
        event.remove(engine, engine_event, terminate)


def connection_cut_mid_transaction(app, statement_part: str = "FROM task_members"):
    """Between two statements of one event: it has read something (its token's
    revocation), and its next statement containing `statement_part` meets the
    server's "terminating connection"."""
    return _terminated_once(app, "before_cursor_execute", lambda _cursor, statement, *_: statement_part in statement)


def connection_closed_after(app, statement_part: str):
    """Right after the first statement containing `statement_part` has run: the event
    meets the closed connection at its next statement, its COMMIT, or the ROLLBACK
    when its session is removed at the end."""
    return _terminated_once(app, "after_cursor_execute", lambda _cursor, statement, *_: statement_part in statement)


def connection_closed_at_commit(app):
    """At the first COMMIT: every statement of the transaction ran, the commit fails."""
    return _terminated_once(app, "commit", lambda *_: True)


@contextmanager
def cut_while_waiting(engine, lock_sql: str, params: tuple, query_like: str) -> Iterator[list[int]]:
    """Another connection takes a lock (`lock_sql`); a watcher terminates every
    backend of the app that waits for it running a query like `query_like`,
    as a failover or an administrator would. Yields the pids terminated."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    terminated: list[int] = []
    done = threading.Event()
    locker = psycopg.connect(conninfo)
    locker.execute(lock_sql, params)

    def terminate_waiting() -> None:
        with psycopg.connect(conninfo, autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while not done.is_set() and time.monotonic() < deadline:
                pids = [row[0] for row in watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
                    " AND wait_event_type = 'Lock' AND query ILIKE %s", (locker.info.backend_pid, query_like),
                )]
                for pid in pids:
                    watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    terminated.append(pid)
                time.sleep(0.01)
            if not done.is_set():  # bounded: free whatever still waits, and let the test fail
                watcher.execute("SELECT pg_terminate_backend(%s)", (locker.info.backend_pid,))

    watcher = threading.Thread(target=terminate_waiting, daemon=True)
    watcher.start()
    try:
        yield terminated
    finally:
        done.set()
        watcher.join(timeout=15)
        try:
            locker.rollback()
            locker.close()
        except psycopg.OperationalError:
            pass  # terminated by the watcher's bound


# ---- handler exceptions -------------------------------------------------------------
def explode(*_args, **_kwargs):
    raise RuntimeError(SECRET)


def test_handler_exception_is_a_bare_internal_error_and_everyone_carries_on(
    app, socket, task, alice, bob, monkeypatch, caplog
):
    alice_sock, bob_sock = socket(alice), socket(bob)
    join(alice_sock, task["id"])
    join(bob_sock, task["id"])
    first = send(bob_sock, task["id"], "first")["data"]
    drain(alice_sock, bob_sock)
    monkeypatch.setattr(reads, "mark_read", explode)  # the service behind `mark_read` breaks
    # The migrations' logging.config.fileConfig disabled the loggers that existed then.
    monkeypatch.setattr(logging.getLogger("app.realtime.namespace"), "disabled", False)

    with caplog.at_level(logging.ERROR):
        ack = emit(alice_sock, "mark_read", {"taskId": task["id"], "messageId": first["id"]})

    assert ack == {"ok": False, "error": INTERNAL}
    assert events(alice_sock, "error") == [INTERNAL]
    assert events(bob_sock, "error") == []
    # The operator sees what happened; the client does not.
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records), caplog.text
    # The same socket, the other client and a new one all carry on.
    assert alice_sock.is_connected("/tasks")
    ack = send(alice_sock, task["id"], "still here")
    assert ack["ok"] is True, ack
    assert [e["message"]["id"] for e in events(bob_sock, "new_message")] == [ack["data"]["id"]]
    assert send(bob_sock, task["id"], "me too")["ok"] is True
    assert emit(socket(bob), "join_task", task["id"])["ok"] is True
    assert session_state(app) == (0, 0)


def test_rest_handler_exception_is_a_bare_500(client, task, alice, monkeypatch):
    first = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "first"}, headers=alice.headers)
    assert first.status_code == 201, first.get_json()
    monkeypatch.setattr(reads, "mark_read", explode)

    response = client.post(f"/api/tasks/{task['id']}/read", json={"messageId": first.get_json()["id"]},
                           headers=alice.headers)

    assert response.status_code == 500, response.get_data(as_text=True)
    assert response.get_json() == {"error": INTERNAL}
    no_internals(response.get_data(as_text=True))
    again = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "second"}, headers=alice.headers)
    assert again.status_code == 201, again.get_json()


# ---- the database fails during a send ----------------------------------------------
def test_database_failure_during_a_send_is_unavailable_and_the_retry_stores_it_once(
    app, socket, task, alice, bob, chat):
    alice_sock, bob_sock = socket(alice), socket(bob)
    join(alice_sock, task["id"])
    join(bob_sock, task["id"])
    before = send(bob_sock, task["id"], "before")["data"]
    drain(alice_sock, bob_sock)

    with database_fails_during_send(app, task["id"]) as terminated:
        ack = send(alice_sock, task["id"], "during the outage", clientId="retry-me")

    assert ack == {"ok": False, "error": UNAVAILABLE}
    assert events(alice_sock, "error") == [UNAVAILABLE]
    assert events(alice_sock, "new_message") == [] and events(bob_sock, "new_message") == []
    assert [m["id"] for m in chat.history(task, alice)["items"]] == [before["id"]]  # rolled back
    assert session_state(app) == (0, 0)
    assert terminated or dialect(app) == "sqlite"  # on PostgreSQL the connection really was cut

    # The database is back: the retry, same clientId, on the same socket.
    ack = send(alice_sock, task["id"], "during the outage", clientId="retry-me")
    assert ack["ok"] is True and ack["data"]["duplicate"] is False, ack
    heard = events(bob_sock, "new_message")
    assert [e["message"]["id"] for e in heard] == [ack["data"]["id"]]
    assert heard[0]["message"]["clientId"] == "retry-me"
    again = send(alice_sock, task["id"], "during the outage", clientId="retry-me")
    assert again["ok"] is True and again["data"]["duplicate"] is True and again["data"]["id"] == ack["data"]["id"]
    assert [m["clientId"] for m in chat.history(task, alice)["items"]] == ["retry-me", None]
    assert session_state(app) == (0, 0)


@pytest.fixture
def watched_room(app, task, alice, bob, room_of):
    """PostgreSQL only: Alice's and Bob's sockets, joined to the task, nothing received yet."""
    if dialect(app) == "sqlite":
        pytest.skip("PostgreSQL only: a SQLite connection has no server to close it")
    alice_sock, bob_sock = (peer.sock for peer in room_of(alice, bob))
    return alice_sock, bob_sock


# A message with a mention takes the general path (several statements, then COMMIT);
# a plain one is a single statement in autocommit on PostgreSQL (services/chat_fast.py).
def test_connection_lost_at_commit_is_unavailable_and_nothing_is_announced(app, watched_room, task, alice, chat):
    """Every statement of the send ran, then the server closed the connection: the
    COMMIT fails, so the message is not stored, and it must not have been
    announced either (broadcasts come after the commit)."""
    alice_sock, bob_sock = watched_room
    general = {"mentions": [alice.id]}

    with connection_closed_at_commit(app) as terminated:
        ack = send(alice_sock, task["id"], "at commit", clientId="commit-1", **general)
    assert terminated
    assert ack == {"ok": False, "error": UNAVAILABLE}
    assert events(alice_sock, "new_message") == [] and events(bob_sock, "new_message") == []
    assert chat.history(task, alice)["items"] == []

    ack = send(alice_sock, task["id"], "at commit", clientId="commit-1", **general)
    assert ack["ok"] is True and ack["data"]["duplicate"] is False, ack
    assert [e["message"]["id"] for e in events(bob_sock, "new_message")] == [ack["data"]["id"]]
    assert [m["clientId"] for m in chat.history(task, alice)["items"]] == ["commit-1"]


def test_database_failure_during_a_rest_send_is_503_unavailable(app, client, socket, task, alice, bob, chat):
    bob_sock = socket(bob)
    join(bob_sock, task["id"])
    drain(bob_sock)
    body = {"message": "over REST", "clientId": "rest-retry"}

    with database_fails_during_send(app, task["id"]) as terminated:
        response = client.post(f"/api/tasks/{task['id']}/messages", json=body, headers=alice.headers)

    assert terminated or dialect(app) == "sqlite"
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json() == {"error": UNAVAILABLE}
    assert events(bob_sock, "new_message") == []
    assert chat.history(task, alice)["items"] == []
    response = client.post(f"/api/tasks/{task['id']}/messages", json=body, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    assert [e["message"]["id"] for e in events(bob_sock, "new_message")] == [response.get_json()["id"]]
    assert [m["clientId"] for m in chat.history(task, alice)["items"]] == ["rest-retry"]


def test_connections_cut_while_idle_in_the_pool_are_replaced_unnoticed(app, socket, task, alice, bob, chat):
    """pool_pre_ping: a pooled connection the server has closed (restart, failover,
    idle timeout) is found dead on checkout and replaced; the event does not fail."""
    if dialect(app) == "sqlite":
        pytest.skip("PostgreSQL only: a SQLite connection has no server to close it")
    alice_sock = socket(alice)
    join(alice_sock, task["id"])
    assert send(alice_sock, task["id"], "before")["ok"] is True
    with app.app_context():
        engine = db.engine
    idle = engine.pool.checkedin()
    assert idle >= 1
    held = [engine.raw_connection() for _ in range(idle)]  # exactly the idle ones: the pool's own
    pids = [conn.driver_connection.info.backend_pid for conn in held]
    for conn in held:
        conn.close()  # back to the pool, still open
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        for pid in pids:
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0] is True

    ack = send(alice_sock, task["id"], "after")
    assert ack["ok"] is True, ack
    assert [m["message"] for m in chat.history(task, alice)["items"]] == ["after", "before"]
    assert session_state(app) == (0, 0)


# ---- sessions end with their event -----------------------------------------------------
def test_every_socket_event_removes_its_session_and_returns_its_connection(
    app, socket, task, alice, bob, carol, monkeypatch
):
    """Flask-SocketIO runs each event in its own app context, and Flask-SQLAlchemy
    removes the session when it ends: whatever the event did, or failed to do,
    nothing is left open for the next one (no PendingRollbackError, no pool leak)."""
    alice_sock = socket(alice)
    assert session_state(app) == (0, 0)  # after connect
    calls = [
        ("join_task", task["id"], True),
        ("send_message", {"taskId": task["id"], "message": "hello"}, True),
        ("send_message", {"taskId": task["id"], "message": ""}, False),  # validation_error
        ("send_message", {"taskId": 999999, "message": "x"}, False),  # forbidden, after a query
        ("typing_start", {"taskId": task["id"]}, True),
        ("leave_task", task["id"], True),
    ]
    for event_name, payload, ok in calls:
        ack = emit(alice_sock, event_name, payload)
        assert ack["ok"] is ok, (event_name, ack)
        assert session_state(app) == (0, 0), event_name
    monkeypatch.setattr(reads, "mark_read", explode)
    monkeypatch.setattr(logging.getLogger("app.realtime.namespace"), "disabled", True)  # expected; keep quiet
    assert emit(alice_sock, "mark_read", {"taskId": task["id"], "messageId": 1})["ok"] is False
    assert session_state(app) == (0, 0), "after a handler exception"
    with database_fails_during_send(app, task["id"]):
        assert send(alice_sock, task["id"], "lost")["error"]["code"] == "unavailable"
    assert session_state(app) == (0, 0), "after a database failure"
    carol_sock = socket(carol)
    assert emit(carol_sock, "join_task", task["id"])["error"]["code"] == "forbidden"
    alice_sock.disconnect("/tasks")
    assert session_state(app) == (0, 0), "after disconnect"


# ---- production: nothing internal in any error -------------------------------------------
@pytest.mark.parametrize("settings", [PRODUCTION], ids=["production"])
def test_in_production_errors_carry_no_sql_or_trace(app, client, socket, task, alice, bob, monkeypatch, chat):
    assert app.config["APP_ENV"] == "production" and not app.testing and not app.debug
    alice_sock = socket(alice)
    join(alice_sock, task["id"])
    first = send(alice_sock, task["id"], "first")["data"]
    drain(alice_sock)
    answers = []

    with database_fails_during_send(app, task["id"]):
        ack = send(alice_sock, task["id"], "lost")
        response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "lost"}, headers=alice.headers)
    assert ack == {"ok": False, "error": UNAVAILABLE}
    assert (response.status_code, response.get_json()) == (503, {"error": UNAVAILABLE})
    answers += [ack, events(alice_sock, "error"), response.get_data(as_text=True)]

    monkeypatch.setattr(reads, "mark_read", explode)
    monkeypatch.setattr(logging.getLogger("app.realtime.namespace"), "disabled", True)
    monkeypatch.setattr(logging.getLogger("app.api.errors"), "disabled", True)
    ack = emit(alice_sock, "mark_read", {"taskId": task["id"], "messageId": first["id"]})
    response = client.post(f"/api/tasks/{task['id']}/read", json={"messageId": first["id"]}, headers=alice.headers)
    assert ack == {"ok": False, "error": INTERNAL}
    assert (response.status_code, response.get_json()) == (500, {"error": INTERNAL})
    answers += [ack, events(alice_sock, "error"), response.get_data(as_text=True)]

    no_internals(answers)
    assert [m["message"] for m in chat.history(task, alice)["items"]] == ["first"]


def test_connection_cut_mid_transaction_is_unavailable_and_the_next_event_works(
        app, client, watched_room, task, alice, chat):
    """A read outside the service's write transaction (the permission check) meets
    the server's "terminating connection": unavailable, nothing stored, and the
    retry on the same socket (a new connection from the pool) stores it once."""
    alice_sock, bob_sock = watched_room

    # The socket send takes the general path (a mention), which reads the permission
    # under the task's lock; the plain one checks it inside its single statement.
    with connection_cut_mid_transaction(app) as terminated:
        ack = send(alice_sock, task["id"], "during the cut", clientId="cut-1", mentions=[alice.id])
    assert terminated
    assert ack == {"ok": False, "error": UNAVAILABLE}
    with connection_cut_mid_transaction(app) as terminated:
        response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "cut", "clientId": "cut-2"},
                               headers=alice.headers)
    assert terminated
    assert (response.status_code, response.get_json()) == (503, {"error": UNAVAILABLE})
    assert events(bob_sock, "new_message") == []
    assert session_state(app) == (0, 0)

    assert send(alice_sock, task["id"], "during the cut", clientId="cut-1")["ok"] is True
    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "cut", "clientId": "cut-2"},
                           headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    assert [m["clientId"] for m in chat.history(task, alice)["items"]] == ["cut-2", "cut-1"]


def test_connection_closed_before_the_end_of_an_event_loses_no_answer(app, client, socket, task, alice, bob, chat):
    """The server closes the connection after the event's (or request's) last
    statement: the answer is already decided (here a validation error), and ending
    the session, whose ROLLBACK now fails, must neither lose the ack nor turn the
    REST answer into a bare 500; the next event and request work."""
    if dialect(app) == "sqlite":
        pytest.skip("PostgreSQL only: a SQLite connection has no server to close it")
    alice_sock = socket(alice)
    join(alice_sock, task["id"])

    # mark_read's last statement looks the message up; a message of no task is a validation_error.
    # (Socket events no longer read the blocklist on PostgreSQL: revocations are announced.)
    with connection_closed_after(app, "FROM task_chat") as terminated:
        ack = emit(alice_sock, "mark_read", {"taskId": task["id"], "messageId": 999999})
    assert terminated
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    with connection_closed_after(app, "FROM users") as terminated:  # the REST request's user lookup
        response = client.post(f"/api/tasks/{task['id']}/messages", json={}, headers=alice.headers)
    assert terminated
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "validation_error"
    assert session_state(app) == (0, 0)

    assert send(alice_sock, task["id"], "next")["ok"] is True
    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "and next"}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    assert [m["message"] for m in chat.history(task, alice)["items"]] == ["and next", "next"]


def test_health_is_503_while_the_database_fails_and_200_after(app, client):
    if dialect(app) == "sqlite":
        pytest.skip("PostgreSQL only: a SQLite connection has no server to close it")
    assert (client.get("/health").status_code, client.get("/health").get_json()["database"]) == (200, "ok")
    with connection_cut_mid_transaction(app, "SELECT 1") as terminated:
        response = client.get("/health")
    assert terminated
    assert (response.status_code, response.get_json()) == (503, {"status": "unavailable", "database": "unavailable"})
    assert client.get("/health").status_code == 200
    assert session_state(app) == (0, 0)


# ---- a database that does not answer at all ---------------------------------------------
def test_a_database_that_does_not_answer_is_unavailable_not_a_hang():
    """A PostgreSQL address that accepts TCP connections and never answers (a hung
    server, a half-open network path): each connect gives up after connect_timeout
    (PGCONNECT_TIMEOUT, 1 s here), so /health is 503 and a request is 503
    `unavailable`, instead of both waiting forever."""
    listener = net.socket(net.AF_INET, net.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    silent: list[net.socket] = []
    done = threading.Event()

    def accept_and_say_nothing() -> None:
        while not done.is_set():
            try:
                silent.append(listener.accept()[0])
            except (TimeoutError, OSError):
                pass

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{listener.getsockname()[1]}/silent"
    app = create_app(env={"APP_ENV": "testing", "DATABASE_URL": url, "JWT_SECRET_KEY": "faults-" + "s" * 32,
                          "PGCONNECT_TIMEOUT": "1"})
    with app.app_context():
        token = issue_access_token(1)
    answers: dict = {}

    def ask() -> None:
        client = app.test_client()
        answers["health"] = client.get("/health")
        answers["send"] = client.post("/api/tasks/1/messages", json={"message": "hello?"},
                                      headers={"Authorization": f"Bearer {token}"})

    asking = threading.Thread(target=ask, daemon=True)
    try:
        asking.start()
        asking.join(timeout=20)  # generous: two connects of 1 s each
        assert not asking.is_alive(), "the server waited for a database that does not answer"
    finally:
        done.set()
        for conn in silent:  # lets a hung connect fail, so the thread ends
            conn.close()
        listener.close()
        asking.join(timeout=10)
        with app.app_context():
            db.engine.dispose()
    assert silent, "the app never tried the silent database"
    health, sent = answers["health"], answers["send"]
    assert (health.status_code, health.get_json()) == (503, {"status": "unavailable", "database": "unavailable"})
    assert (sent.status_code, sent.get_json()) == (503, {"error": UNAVAILABLE})


def test_an_exhausted_connection_pool_is_unavailable_not_an_internal_error(database_url, tmp_path):
    """Every pooled connection busy past `pool_timeout`: SQLAlchemy's TimeoutError is
    a database that cannot serve now, so `unavailable` (503, retryable), not a 500;
    once a connection is free again the same request works."""
    small = create_app(
        env=app_env(database_url, ATTACHMENTS_DIR=str(tmp_path / "small")),
        overrides={"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}},
    )
    client = small.test_client()
    response = client.post("/api/auth/register", json={
        "email": f"pool-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery",
        "firstName": "P", "lastName": "Ool"})
    headers = {"Authorization": f"Bearer {response.get_json()['accessToken']}"}
    try:
        with small.app_context():
            held = db.engine.connect()  # the pool's only connection
            try:
                response = client.get("/api/tasks", headers=headers)
                assert response.status_code == 503
                assert response.get_json() == {"error": UNAVAILABLE}
            finally:
                held.close()
        assert client.get("/api/tasks", headers=headers).status_code == 200
    finally:
        with small.app_context():
            db.session.remove()
            db.engine.dispose()
