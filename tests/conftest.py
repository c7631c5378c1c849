"""Fixtures that compose by name: app → client → users → sockets.

The database is made once per run by the migrations (`flask db upgrade`), on
SQLite in a temporary file by default, or on `DATABASE_URL` when it names
PostgreSQL (as CI does); every test then starts from empty tables.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import pytest
from flask_migrate import upgrade
from flask_socketio.test_client import SocketIOTestClient
from socketio import packet
from sqlalchemy import text

from app import create_app
from app.extensions import db, socketio

# Children first, so SQLite's foreign keys allow each DELETE.
TABLES = (
    "revoked_tokens", "activity_logs", "notifications", "message_reactions", "message_edits", "attachments",
    "task_chat", "task_members", "tasks", "users",
)
_emails = itertools.count(1)


def _test_env(database_url: str, **settings: str) -> dict[str, str]:
    return {
        "APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": "test-secret-" + "x" * 32,
        **settings,
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    app = create_app(env=_test_env(url))
    with app.app_context():
        upgrade(directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    return url


@pytest.fixture
def settings() -> dict[str, str]:
    """Extra environment for the app of one test: override it to change a setting."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, settings):
    app = create_app(env=_test_env(database_url, ATTACHMENTS_DIR=str(tmp_path / "attachments"), **settings))
    with app.app_context():
        _empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _empty_tables() -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    else:
        for table in TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class User:
    id: int
    email: str
    first_name: str
    last_name: str
    token: str
    refresh_token: str
    password: str = "correct horse battery"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def register(client):
    """Register a user through the REST API; returns its id and tokens."""

    def make(first_name: str = "Ann", last_name: str = "Lee", email: str | None = None) -> User:
        email = email or f"user{next(_emails)}@example.com"
        response = client.post(
            "/api/auth/register",
            json={"email": email, "password": User.password, "firstName": first_name, "lastName": last_name},
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return User(
            id=body["user"]["id"], email=email, first_name=first_name, last_name=last_name,
            token=body["accessToken"], refresh_token=body["refreshToken"],
        )

    return make


@pytest.fixture
def alice(register) -> User:
    return register("Alice", "Owner")


@pytest.fixture
def bob(register) -> User:
    return register("Bob", "Editor")


@pytest.fixture
def carol(register) -> User:
    return register("Carol", "Outsider")


@pytest.fixture
def make_task(client):
    """A task created over REST by `owner`; returns its JSON."""

    def make(owner: User, title: str = "Write the report", **fields) -> dict:
        response = client.post("/api/tasks", json={"title": title, **fields}, headers=owner.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def add_member(client):
    """`owner` adds `user` to the task by email, as one adds someone they know (an id
    finds only someone who already shares a task with the owner)."""

    def add(owner: User, task: dict, user: User, role: str = "commenter") -> dict:
        response = client.post(
            f"/api/tasks/{task['id']}/members", json={"email": user.email, "role": role}, headers=owner.headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return add


ADDED = "added_to_task"


def read_added_notices(client, user: User) -> None:
    """Mark read the notifications telling `user` they were added to a task. For tests
    of mention notifications, where being added is only their setup."""
    items = client.get("/api/notifications", query_string={"limit": 100}, headers=user.headers).get_json()["items"]
    ids = [n["id"] for n in items if n["type"] == ADDED and not n["read"]]
    response = client.post("/api/notifications/read", json={"ids": ids}, headers=user.headers)
    assert response.status_code == 200, response.get_json()


def with_added_notices_read(add_member, client):
    """`add_member`, after which the added user has read the notice that they were added."""

    def add(owner: User, task: dict, user: User, role: str = "commenter") -> dict:
        member = add_member(owner, task, user, role)
        read_added_notices(client, user)
        return member

    return add


def mentions_only(body: dict) -> dict:
    """A GET /api/notifications answer without the (read) notices of being added."""
    return {**body, "items": [n for n in body["items"] if n["type"] != ADDED]}


@pytest.fixture
def task(alice, bob, make_task, add_member) -> dict:
    """Alice's task, with Bob as an editor."""
    created = make_task(alice)
    add_member(alice, created, bob, "editor")
    return created


@pytest.fixture
def socket(app, client):
    """Connect a Socket.IO test client as `user` (to `/tasks` unless told otherwise)."""
    opened = []

    def connect(user: User | None, namespace: str = "/tasks", auth: object = "token", headers=None):
        if auth == "token":
            auth = {"token": user.token} if user else None
        sock = socketio.test_client(app, namespace=namespace, auth=auth, flask_test_client=client, headers=headers)
        opened.append((sock, namespace))
        return sock

    yield connect
    for sock, namespace in opened:
        if sock.is_connected(namespace):
            sock.disconnect(namespace)


class RecordingTestClient(SocketIOTestClient):
    """Flask-SocketIO's test client, keeping the CONNECT_ERROR payload it otherwise drops.

    Only the delivery to this client is observed; the server handles the connect as usual.
    """

    connect_error = None

    def connect(self, namespace=None, query_string=None, headers=None, auth=None):
        deliver = self.socketio.server._send_packet

        def record(eio_sid, pkt):
            if eio_sid == self.eio_sid and pkt.packet_type == packet.CONNECT_ERROR:
                self.connect_error = pkt.data
            deliver(eio_sid, pkt)

        self.socketio.server._send_packet = record
        try:
            super().connect(namespace=namespace, query_string=query_string, headers=headers, auth=auth)
        finally:
            self.socketio.server._send_packet = deliver


@pytest.fixture
def refused(app, client):
    """Try to connect; assert it was refused; return the client's `connect_error` payload."""

    def attempt(namespace: str = "/tasks", auth=None, headers=None) -> dict:
        sock = RecordingTestClient(app, socketio, namespace=namespace, auth=auth, headers=headers,
                                   flask_test_client=client)
        assert not sock.is_connected(namespace)
        assert sock.connect_error is not None, "the client was not told why it was refused"
        return sock.connect_error

    return attempt


def events(sock, name: str, namespace: str = "/tasks") -> list:
    """The payloads of every `name` event the socket received since last asked."""
    return [e["args"][0] for e in sock.get_received(namespace) if e["name"] == name]


def emit(sock, event: str, *args, ns: str = "/tasks"):
    """Emit with an ack and return the ack."""
    return sock.emit(event, *args, namespace=ns, callback=True)


def send(sock, task_id, text, ns: str = "/tasks", **extra) -> dict:
    """`send_message` with an ack; returns the ack."""
    return emit(sock, "send_message", {"taskId": task_id, "message": text, **extra}, ns=ns)


def drain(*socks, ns: str = "/tasks") -> None:
    """Forget what the sockets received so far."""
    for sock in socks:
        sock.get_received(ns)


def join(sock, task_id, ns: str = "/tasks") -> dict:
    ack = emit(sock, "join_task", task_id, ns=ns)
    assert ack["ok"] is True, ack
    return ack


def assert_error(response, status: int, code: str) -> dict:
    """A REST error in the one shape: {"error": {"code", "message", "details"?}}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error
