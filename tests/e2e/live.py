"""The live servers and clients of the end-to-end tests (the fixtures are in conftest.py).

Each server kind runs the way it runs for real, on a free loopback port:

- ``flask``: ``flask run`` (APP_ENV=development; Socket.IO in threading mode
  with simple-websocket);
- ``gunicorn``: ``gunicorn -c gunicorn.conf.py wsgi:app`` (the gevent-websocket
  worker), with APP_ENV=production, as it runs in production.

``JWT_SECRET_KEY`` is a known value, so that tests can forge tokens with PyJWT.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import socketio
import websocket

from toolkit.users import PASSWORD, User  # the same user record as the in-process tests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JWT_SECRET = "e2e-test-jwt-secret-" + "k" * 32
WAIT = 5.0  # seconds: the bound on every wait for an event or an ack
SETTLE = 0.3  # seconds to let stray events arrive before asserting that none did
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 150  # lines of server output shown with a failure
SERVER_KINDS = ("flask", "gunicorn")


# ---- the servers ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FLASK_APP": "wsgi.py",
            "DATABASE_URL": database_url,
            "JWT_SECRET_KEY": JWT_SECRET,
            "SOCKETIO_ROOT_NAMESPACE": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Every e2e test registers users from 127.0.0.1; tests of the throttling
            # itself start their own server with the real limits (start_server env=).
            "LOGIN_RATE_LIMIT_ACCOUNT": "10000/minute",
            "LOGIN_RATE_LIMIT_IP": "10000/minute",
            "REGISTER_RATE_LIMIT_IP": "10000/minute",
        }
    )
    env.pop("FLASK_DEBUG", None)
    env.update(extra)
    return env


@dataclass
class LiveServer:
    kind: str
    url: str
    port: int
    log_path: Path
    process: subprocess.Popen
    _log_file: Any = field(repr=False, default=None)
    _terminated: bool = field(repr=False, default=False)
    env: dict[str, str] | None = None  # the settings it was started with beyond its kind's

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            return fh.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        text = self.log_text().splitlines()
        status = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        return f"[{self.kind} server on {self.url}, {status}; log {self.log_path}]\n" + "\n".join(text[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        if self.process.poll() is None and not self._terminated:
            self.process.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group (gunicorn's worker too) if it lingers."""
        self.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the server and its workers
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait(timeout=STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()


def _command(kind: str, port: int) -> tuple[list[str], dict[str, str]]:
    if kind == "flask":
        cmd = [str(BIN / "flask"), "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"]
        # Development checks origins too; websocket-client sends the server's own URL.
        return cmd, {"APP_ENV": "development", "CORS_ORIGINS": f"http://localhost:3000,http://127.0.0.1:{port}"}
    if kind == "gunicorn":
        cmd = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        # Production refuses Socket.IO handshakes from unlisted origins, and
        # websocket-client sends the server's own URL as its Origin.
        return cmd, {
            "APP_ENV": "production", "SECRET_KEY": "e2e-test-secret-key-" + "s" * 32,
            "CORS_ORIGINS": f"http://localhost:3000,http://127.0.0.1:{port}",
            "APP_HOST": "127.0.0.1", "APP_PORT": str(port),
            # Production refuses SQLite unless told; the e2e database is SQLite without DATABASE_URL.
            "ALLOW_SQLITE_IN_PRODUCTION": "1",
        }
    raise ValueError(kind)


def _log_path(workdir: Path, kind: str, port: int) -> Path:
    """`<kind>-<port>.log`; a restart on the same port gets `<kind>-<port>-2.log` and so on."""
    path, n = workdir / f"{kind}-{port}.log", 1
    while path.exists():
        n += 1
        path = workdir / f"{kind}-{port}-{n}.log"
    return path


def start_server(
    kind: str, database_url: str, workdir: Path, port: int | None = None, env: dict[str, str] | None = None
) -> LiveServer:
    """Start a server of `kind` on `port` (default: a free one) and wait until /health answers.
    `env`: settings that override the kind's (e.g. the real login limits)."""
    port = free_port() if port is None else port
    cmd, extra = _command(kind, port)
    log_path = _log_path(workdir, kind, port)
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=server_env(database_url, **{**extra, **(env or {})}), stdin=subprocess.DEVNULL,
        stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = LiveServer(kind, f"http://127.0.0.1:{port}", port, log_path, process, log_file, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not server.alive():
            break
        try:
            # Connection: close, or the idle connection would hold up gunicorn's graceful stop.
            with requests.get(server.url + "/health", timeout=1, headers={"Connection": "close"}) as response:
                if response.status_code == 200:
                    return server
                last_error = f"/health answered {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last_error = f"{type(exc).__name__}"
        time.sleep(0.1)
    tail = server.log_tail()
    server.stop()
    pytest.fail(f"the {kind} server did not become healthy within {START_TIMEOUT:.0f}s ({last_error})\n{tail}",
                pytrace=False)


def restart_server(server: LiveServer, database_url: str, workdir: Path) -> Path:
    """Stop `server` (SIGTERM, as a deploy does; SIGKILL only if it lingers) and start
    the same kind again on the same port and database.

    The LiveServer is updated in place, so whoever holds it (a fixture, the failure
    report) sees the new process. Answers the log file of the stopped process.
    """
    server.stop()
    old_log = server.log_path
    new = start_server(server.kind, database_url, workdir, port=server.port, env=server.env)
    server.process, server.log_path, server._log_file, server._terminated = (
        new.process, new.log_path, new._log_file, False
    )
    return old_log


class ServerPool:
    """Starts each server kind on first use and keeps it for the whole run."""

    def __init__(self, database_url: str, workdir: Path):
        self.database_url = database_url
        self.workdir = workdir
        self.servers: dict[str, LiveServer] = {}

    def get(self, kind: str) -> LiveServer:
        if kind not in self.servers:
            self.servers[kind] = start_server(kind, self.database_url, self.workdir)
        server = self.servers[kind]
        if not server.alive():
            pytest.fail(f"the {kind} server has died\n{server.log_tail()}", pytrace=False)
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():  # signal all first: they stop in parallel
            server.terminate()
        for server in self.servers.values():
            server.stop()


# ---- REST -------------------------------------------------------------------------


class Api:
    """The REST API of one live server, through requests."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def request(self, method: str, path: str, user: User | None = None, expect: int = 200, **kwargs) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if user is not None:
            headers.update(user.headers)
        response = self.http.request(method, self.base_url + path, headers=headers, timeout=10, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return None if response.status_code == 204 else response.json()

    def register(self, first_name: str, last_name: str) -> User:
        email = f"e2e-{uuid.uuid4().hex[:16]}@example.com"
        body = self.request(
            "POST", "/api/auth/register", expect=201,
            json={"email": email, "password": PASSWORD, "firstName": first_name, "lastName": last_name},
        )
        assert body["user"]["email"] == email and isinstance(body["user"]["id"], int), body
        return User(body["user"]["id"], email, first_name, last_name, body["accessToken"], body["refreshToken"])

    def create_task(self, owner: User, title: str = "E2E task") -> dict:
        task = self.request("POST", "/api/tasks", owner, expect=201, json={"title": title})
        assert isinstance(task["id"], int), task
        return task

    def add_member(self, owner: User, task_id: int, user: User, role: str = "commenter") -> dict:
        """By email: an id finds only someone who already shares a task with the owner."""
        return self.request(
            "POST", f"/api/tasks/{task_id}/members", owner, expect=201, json={"email": user.email, "role": role}
        )

    def messages(self, user: User, task_id: int) -> list[dict]:
        return self.request("GET", f"/api/tasks/{task_id}/messages", user)["items"]

    def close(self) -> None:
        """Close the kept-alive connections: gunicorn's graceful stop waits for them."""
        self.http.close()


def whole_history(api: Api, user: User, task_id: int, max_pages: int = 20) -> list[dict]:
    """The task's whole chat, oldest first, page after page (of 100; at most `max_pages`)."""
    items: list[dict] = []
    after = 0
    for _ in range(max_pages):
        page = api.request("GET", f"/api/tasks/{task_id}/messages", user, params={"after": after, "limit": 100})
        items += page["items"]
        if not page["hasMore"]:
            return items
        after = page["items"][-1]["id"]
    raise AssertionError(f"more than {max_pages} pages of history")


@dataclass
class Room:
    """A task with its owner and a commenter, made over REST."""

    task: dict
    owner: User
    member: User

    @property
    def task_id(self) -> int:
        return self.task["id"]


def make_room(api: Api, title: str = "E2E task") -> Room:
    tag = uuid.uuid4().hex[:6]
    owner = api.register("Alice", f"Owner{tag}")
    member = api.register("Bob", f"Member{tag}")
    task = api.create_task(owner, f"{title} {tag}")
    added = api.add_member(owner, task["id"], member, "commenter")
    assert added["role"] == "commenter", added
    return Room(task, owner, member)


# ---- waiting ----------------------------------------------------------------------
def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str | None = None) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds have passed. With `what`, not
    seeing it is an AssertionError ("<what>: not within <timeout>s"); without, the answer
    says whether it came to hold."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            if what is not None:
                raise AssertionError(f"{what}: not within {timeout}s")
            return False
        time.sleep(0.02)
    return True


# ---- tokens -----------------------------------------------------------------------
def forge_token(user_id: Any, *, secret: str = JWT_SECRET, token_type: str = "access",
                expires_in: timedelta = timedelta(minutes=15)) -> str:
    """A token shaped like Flask-JWT-Extended's, signed with `secret`."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id), "type": token_type, "fresh": False, "jti": uuid.uuid4().hex,
        "iat": now - timedelta(hours=2), "nbf": now - timedelta(hours=2), "exp": now + expires_in,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


# ---- Socket.IO clients ------------------------------------------------------------
class LiveSocket:
    """A python-socketio client over WebSocket only, recording every event it receives."""

    def __init__(self, url: str, namespace: str = "/tasks"):
        self.url = url
        self.namespace = namespace
        self.client = socketio.Client(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self._changed = threading.Condition()
        self.client.on("*", self._record, namespace=namespace)
        self.client.on("connect_error", self._record_connect_error, namespace=namespace)

    def _record(self, event: str, *args: Any) -> None:
        with self._changed:
            self.received.append((event, args[0] if len(args) == 1 else list(args)))
            self._changed.notify_all()

    def _record_connect_error(self, data: Any = None) -> None:
        with self._changed:
            self.connect_errors.append(data)
            self._changed.notify_all()

    def connect(self, token: str | None = None, *, auth: Any = "token", headers: dict | None = None,
                transports: tuple[str, ...] = ("websocket",)) -> LiveSocket:
        """Over WebSocket from the start, or as `transports` says (("polling", "websocket"):
        long-polling first, then the upgrade, as browsers' clients do by default)."""
        if auth == "token":
            auth = {"token": token} if token is not None else None
        self.client.connect(
            self.url, namespaces=[self.namespace], transports=list(transports), auth=auth,
            headers=headers or {}, wait_timeout=WAIT,
        )
        if transports == ("websocket",):
            assert self.client.transport() == "websocket"
        return self

    @property
    def connected(self) -> bool:
        return self.namespace in self.client.namespaces

    def call(self, event: str, data: Any = None) -> Any:
        return self.client.call(event, data, namespace=self.namespace, timeout=WAIT)

    def events(self, name: str) -> list[Any]:
        with self._changed:
            return [data for event, data in self.received if event == name]

    def wait_for(self, name: str, match: Callable[[Any], bool] = lambda _: True, timeout: float = WAIT) -> Any:
        """The first `name` event whose payload matches; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event, data in self.received:
                    if event == name and match(data):
                        return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching {name!r} within {timeout}s on {self.namespace}; received: {self.received}"
                    )
                self._changed.wait(remaining)

    def wait_connect_error(self, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.connect_errors:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no connect_error within {timeout}s")
                self._changed.wait(remaining)
            return self.connect_errors[0]

    def disconnect(self) -> None:
        self.client.disconnect()


class RawSocket:
    """Engine.IO and Socket.IO on `/tasks` spoken by hand over websocket-client, so that
    the test decides when (and whether) frames are read and pings answered; a small
    receive buffer, so that a client that stops reading is soon one the server cannot
    write to."""

    def __init__(self, url: str, token: str):
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)], timeout=WAIT,
        )
        assert self.ws.recv().startswith("0"), "Engine.IO open"
        self.ws.send("40/tasks," + json.dumps({"token": token}))
        assert self.next_packet().startswith("40/tasks,"), "Socket.IO connect"

    def next_packet(self, answer_pings: bool = True) -> str:
        while True:
            text = self.ws.recv()
            if text == "2" and answer_pings:  # Engine.IO ping
                self.ws.send("3")
                continue
            return text

    def call(self, ack_id: int, event: str, data: dict) -> dict:
        self.ws.send(f"42/tasks,{ack_id}" + json.dumps([event, data]))
        prefix = f"43/tasks,{ack_id}"
        while True:
            text = self.next_packet()
            if text.startswith(prefix):
                return json.loads(text[len(prefix):])[0]

    def events(self, name: str, until: int) -> list[dict]:
        """Read `name` events until one whose message id is `until`."""
        seen = []
        while True:
            text = self.next_packet()
            if not text.startswith("42/tasks,"):
                continue
            event, payload = json.loads(text[len("42/tasks,"):])
            if event == name:
                seen.append(payload)
                if payload["message"]["id"] == until:
                    return seen

    def close(self) -> None:
        self.ws.close(timeout=0.5)


# Client closes still under way; joined (bounded) before the servers stop.
_closing: list[threading.Thread] = []


def close_in_background(sockets: list[LiveSocket]) -> None:
    """Disconnect without waiting for the client to finish.

    The server hears the Engine.IO close packet first and is done with the
    socket at once; but against `flask run` websocket-client's close handshake
    then waits out its 3 s timeout, which would otherwise be paid by every test.
    """
    for sock in sockets:
        thread = threading.Thread(target=sock.disconnect, daemon=True, name=f"close {sock.namespace}")
        thread.start()
        _closing.append(thread)


def wait_closed(timeout: float = STOP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while _closing:
        _closing.pop().join(timeout=max(0.0, deadline - time.monotonic()))
