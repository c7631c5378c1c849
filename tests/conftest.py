"""Fixtures that compose by name: app → client → users → task → chat and sockets → rooms.

- app, client; `settings` (the app's extra settings: the `settings` marker, or override it);
- register, alice, bob, carol; make_task, add_member (the `added_notices_read` marker),
  task (Alice's, Bob an editor);
- chat: the task chat over REST (toolkit/chat.py);
- socket (a Flask-SocketIO test client), connect (a Peer), room_of (Peers joined to the
  task's room), room (Alice, Bob and Carol there); refused (a refused connect).

The helpers they are built from, and those that tests import, are in toolkit/.

The database is made once per run by the migrations (`flask db upgrade`), on
SQLite in a temporary file by default, or on `DATABASE_URL` when it names
PostgreSQL (as CI does); every test then starts from empty tables.
"""
from __future__ import annotations

import itertools
import os

import pytest
from flask_migrate import upgrade
from flask_socketio.test_client import SocketIOTestClient
from socketio import packet

from app import create_app
from app.extensions import db, socketio
from toolkit.chat import Chat
from toolkit.database import empty_tables
from toolkit.env import app_env
from toolkit.notices import read_added_notices
from toolkit.sockets import NS, Peer
from toolkit.users import User

_emails = itertools.count(1)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    app = create_app(env=app_env(url))
    with app.app_context():
        upgrade(directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    return url


@pytest.fixture
def settings(request) -> dict[str, str]:
    """Extra environment for the app of one test: those of its `settings` marker
    (`pytest.mark.settings(RATE_LIMIT_MESSAGES="…")`, on the test or its module), or
    override the fixture, or parametrize it."""
    marker = request.node.get_closest_marker("settings")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def app(database_url, tmp_path, settings):
    app = create_app(env=app_env(database_url, ATTACHMENTS_DIR=str(tmp_path / "attachments"), **settings))
    with app.app_context():
        empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


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
def add_member(client, request):
    """`owner` adds `user` to the task by email, as one adds someone they know (an id
    finds only someone who already shares a task with the owner).

    Under the `added_notices_read` marker the added user has then read the notice that
    they were added, so that the notifications of the test are its mentions
    (test_security_directory.py tests the notices themselves)."""
    notices_read = request.node.get_closest_marker("added_notices_read") is not None

    def add(owner: User, task: dict, user: User, role: str = "commenter") -> dict:
        response = client.post(
            f"/api/tasks/{task['id']}/members", json={"email": user.email, "role": role}, headers=owner.headers
        )
        assert response.status_code == 201, response.get_json()
        if notices_read:
            read_added_notices(client, user)
        return response.get_json()

    return add


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


@pytest.fixture
def chat(client) -> Chat:
    """The task chat over REST (toolkit/chat.py): chat.sent(task, alice, "Hi"), …"""
    return Chat(client)


@pytest.fixture
def connect(socket):
    """Connect `user` on `namespace` (the `socket` fixture) and hold it as a Peer."""

    def make(user: User | None, namespace: str = NS) -> Peer:
        return Peer(socket(user, namespace=namespace), namespace)

    return make


@pytest.fixture
def room_of(connect, task):
    """Sockets in the task's room: `room_of(alice, (bob, "/"))` connects one socket for
    each member given (a user on /tasks, or a (user, namespace) pair), joins each to the
    room in turn, and then, unless `drain=False`, empties every inbox (so that none holds
    the others' `user_joined`). Answers a Peer for each, in the order given."""

    def enter(*members: User | tuple[User, str], drain: bool = True) -> list[Peer]:
        peers = [connect(*member) if isinstance(member, tuple) else connect(member) for member in members]
        for peer in peers:
            peer.join(task["id"])
        if drain:
            for peer in peers:
                peer.received()
        return peers

    return enter


@pytest.fixture
def room(room_of, alice, bob, carol, task, add_member) -> dict:
    """Alice (the owner), Bob (an editor) and Carol (a commenter), each with one socket on
    /tasks in the task's room, inboxes emptied; the sockets by first name."""
    add_member(alice, task, carol, "commenter")
    users = (alice, bob, carol)
    return {user.first_name: peer.sock for user, peer in zip(users, room_of(*users), strict=True)}


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
