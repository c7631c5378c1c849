"""The replacements of library code in app/patches.py, each against the release it was written for.

For each replacement: the library code it relies on is still there, in the shape it
was written against (signatures; a fingerprint of the library code it repeats),
and the library's public entry point still reaches it: each is driven through the
library's own front door (a long-polling session, a WebSocket on a real socket, a
request, a pool checkout) and seen to run. A test here failing after an upgrade
says which replacement to read again against the new release.

And the version check: the table of releases is requirements.txt's pins; the
installed libraries pass; any other release refuses to start, in one message.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import inspect
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import engineio
import flask_smorest
import gevent
import pytest
import socketio
from flask import Flask
from marshmallow import Schema, fields
from psycopg import waiting
from sqlalchemy import create_engine, event
from werkzeug.serving import make_server
from werkzeug.test import Client

from app import create_app, patches
from app.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
WAIT = 5.0  # seconds: the bound on every wait for the server


def params(func: Callable) -> list[str]:
    return list(inspect.signature(func).parameters)


# ---- the version check ------------------------------------------------------------------------
def test_the_releases_written_for_are_the_pins_of_requirements_txt():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert {name: pins.get(name.lower()) for name in patches.WRITTEN_FOR} == patches.WRITTEN_FOR


def test_the_installed_libraries_are_the_releases_written_for():
    assert patches.installed_versions() == patches.WRITTEN_FOR
    patches.check_versions()


def test_the_releases_written_for_pass():
    patches.check_versions(installed=dict(patches.WRITTEN_FOR))


def test_another_release_is_refused_in_one_message_naming_each_library():
    installed = {**patches.WRITTEN_FOR, "python-socketio": "5.19.0", "gevent": None}
    with pytest.raises(patches.LibraryVersionError) as refused:
        patches.check_versions(installed=installed)
    message = str(refused.value)
    assert isinstance(refused.value, ConfigError)  # surfaced at start as every refused setting is
    assert "python-socketio 5.19.0 is installed, written for 5.18.1" in message
    assert "gevent is not installed, written for 26.9.0" in message
    assert "Flask-Limiter" not in message and "psycopg" not in message  # only the libraries that differ
    assert "requirements.txt" in message and "tests/test_patches.py" in message and "WRITTEN_FOR" in message
    assert "\n" not in message


def test_create_app_refuses_another_release(monkeypatch):
    monkeypatch.setattr(patches, "installed_versions", lambda: {**patches.WRITTEN_FOR, "Flask-Limiter": "4.2.0"})
    with pytest.raises(patches.LibraryVersionError, match="Flask-Limiter 4.2.0 is installed, written for 4.1.1"):
        create_app(env={"APP_ENV": "testing", "DATABASE_URL": "sqlite://"})


def test_the_server_refuses_to_start_on_another_release_with_one_line(tmp_path):
    """A release of python-engineio found first on the path (only its metadata: the
    version check reads no code) and `wsgi.py`, which `flask run` and gunicorn load,
    exits with one line."""
    dist = tmp_path / "python_engineio-4.16.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: python-engineio\nVersion: 4.16.0\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "APP_ENV": "development",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}
    done = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [(
        "taskchat: refusing to start: installed libraries are not the releases whose code app/patches.py "
        "replaces: python-engineio 4.16.0 is installed, written for 4.15.1. Install requirements.txt; or, to "
        "move to the installed release, check each replacement in app/patches.py that names the library "
        "against the release's code, run tests/test_patches.py, then update WRITTEN_FOR there and the pin "
        "in requirements.txt"
    )]


# ---- the library code the replacements repeat ---------------------------------------------------
def _fingerprint(func: Callable) -> str:
    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]


def _repeated() -> dict[str, tuple[Callable, str]]:
    from engineio.socket import Socket
    from socketio.base_manager import BaseManager
    from webargs.core import Parser

    return {
        # patches.index_rooms repeats the rest of it (callbacks, pending connects and disconnects).
        "BaseManager.basic_disconnect": (BaseManager.basic_disconnect, "2933b50bc4b2ea7b"),
        # patches._poll_without_deadline is it, without the deadline.
        "Socket.poll": (Socket.poll, "d7d705066fd3b948"),
        # patches._direct_send checks the ping as it does, and queues when it does not write.
        "Socket.send": (Socket.send, "f8b2738ee5d48ab2"),
        # patches._ping_by_timer sends the ping as it does.
        "Socket._send_ping": (Socket._send_ping, "21861287bd38dedc"),
        # patches.WriterOnDemand does what its writer does, and recognises the writer by its name.
        "Socket._websocket_handler": (Socket._websocket_handler, "58afe122719282de"),
        # patches.JsonBodyParser sends to _handle_invalid_json_error what load_json does not catch.
        "Parser.load_json": (Parser.load_json, "eae691cabd489a5b"),
    }


@pytest.mark.parametrize("name", list(_repeated()))
def test_the_library_code_a_replacement_repeats_is_the_code_written_for(name):
    func, written_for = _repeated()[name]
    assert _fingerprint(func) == written_for, (
        f"{name} is not the code app/patches.py was written for: read the replacement that names it "
        "against it, then update its fingerprint here")


# ---- python-socketio: the message filter ---------------------------------------------------------
class Polling:
    """A Socket.IO client over Engine.IO long-polling, through the server's WSGI app."""

    def __init__(self, wsgi_app: Any, path: str = "/socket.io/"):
        self.http, self.path = Client(wsgi_app), path
        opened = self.http.get(path, query_string={"EIO": "4", "transport": "polling"})
        assert opened.status_code == 200, opened.data
        self.sid = json.loads(opened.get_data(as_text=True)[1:])["sid"]

    def post(self, *packets: str) -> Any:
        return self.http.post(self.path, query_string={"EIO": "4", "transport": "polling", "sid": self.sid},
                              data="\x1e".join(packets))

    def get(self) -> list[str]:
        got = self.http.get(self.path, query_string={"EIO": "4", "transport": "polling", "sid": self.sid})
        assert got.status_code == 200, got.data
        return got.get_data(as_text=True).split("\x1e")

    def connect(self) -> str:
        """Socket.IO's CONNECT to "/": the socket's sid."""
        assert self.post("40").status_code == 200
        (answer,) = self.get()
        assert answer.startswith("40{"), answer
        return json.loads(answer[2:])["sid"]


def sio_server(**options: Any) -> socketio.Server:
    return socketio.Server(async_mode="threading", ping_interval=5, ping_timeout=5, **options)


def test_socketio_steps_are_the_private_methods_written_for():
    assert params(socketio.Server._handle_eio_message) == ["self", "eio_sid", "data"]
    assert params(socketio.Server._handle_event_internal) == ["self", "server", "sid", "eio_sid", "data",
                                                              "namespace", "id"]
    assert params(socketio.Server._send_packet) == ["self", "eio_sid", "pkt"]


def test_engineio_hands_every_message_to_the_filter_and_the_steps_answer():
    server = sio_server()
    ran: list[tuple[str, Any]] = []

    @server.on("hello")
    def hello(sid, name):
        ran.append(("hello", name))
        return f"hi {name}"

    deliver, run_event, send_packet = patches.socketio_steps(server)
    seen: list[tuple[str, str]] = []

    def handler(eio_sid: str, data: Any) -> None:
        seen.append((eio_sid, data))
        pkt = server.packet_class(encoded_packet=data)
        if pkt.packet_type == socketio.packet.EVENT:
            sid = server.manager.sid_from_eio_sid(eio_sid, "/")
            run_event(sid, eio_sid, pkt.data, "/", pkt.id)
        else:
            deliver(eio_sid, data)

    patches.filter_socketio_messages(server, handler)
    client = Polling(socketio.WSGIApp(server))
    client.connect()
    assert client.post('421["hello","ann"]').status_code == 200
    assert client.get() == ['431["hi ann"]']  # the handler ran, and its ack was sent

    assert seen == [(client.sid, "0"), (client.sid, '21["hello","ann"]')]
    assert ran == [("hello", "ann")]
    send_packet(client.sid, server.packet_class(socketio.packet.EVENT, data=["note", 1]))
    assert client.get() == ['42["note",1]']


def test_the_flask_socketio_test_client_reaches_the_filter_too():
    from flask_socketio import SocketIO

    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading")
    seen: list[Any] = []
    deliver = patches.socketio_steps(sio.server).deliver

    def handler(eio_sid: str, data: Any) -> None:
        seen.append(data)
        deliver(eio_sid, data)

    patches.filter_socketio_messages(sio.server, handler)
    client = sio.test_client(app)
    client.emit("anything", 1)
    client.disconnect()
    assert seen[0].startswith("0") and '2["anything",1]' in seen


# ---- python-socketio: each socket's rooms, indexed -----------------------------------------------
def test_the_manager_methods_the_index_replaces_are_the_ones_written_for():
    from socketio.base_manager import BaseManager

    assert params(BaseManager.basic_enter_room) == ["self", "sid", "namespace", "room", "eio_sid"]
    assert params(BaseManager.basic_leave_room) == ["self", "sid", "namespace", "room"]
    assert params(BaseManager.basic_disconnect) == ["self", "sid", "namespace", "kwargs"]
    assert params(BaseManager.get_rooms) == ["self", "sid", "namespace"]


def test_joins_leaves_and_disconnects_go_through_the_index():
    server = sio_server()
    index = patches.index_rooms(server.manager)
    calls: Counter[str] = Counter()
    for name in ("basic_enter_room", "basic_leave_room", "basic_disconnect", "get_rooms"):
        replacement = vars(server.manager)[name]  # set on this manager by index_rooms

        def counted(*args: Any, _name: str = name, _replacement: Callable = replacement, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _replacement(*args, **kwargs)

        setattr(server.manager, name, counted)
    stayer, leaver = Polling(socketio.WSGIApp(server)), Polling(socketio.WSGIApp(server))
    stayer_sid, leaver_sid = stayer.connect(), leaver.connect()

    def held(sid: str) -> list[str]:  # what python-socketio's own table holds, by a full scan
        return sorted(str(name) for name, room in server.manager.rooms["/"].items() if name is not None and sid in room)

    for sid in (stayer_sid, leaver_sid):
        server.enter_room(sid, "shared")
        server.enter_room(sid, f"own-{sid}")
    server.enter_room(leaver_sid, "gone")
    server.leave_room(leaver_sid, "gone")
    server.close_room(f"own-{stayer_sid}")
    assert sorted(index[("/", stayer_sid)], key=str) == sorted([None, stayer_sid, "shared"], key=str)
    for sid in (stayer_sid, leaver_sid):
        assert sorted(map(str, server.rooms(sid))) == held(sid)

    server.emit("ask", to=leaver_sid, callback=lambda *args: None)  # an ack callback waiting
    assert leaver_sid in server.manager.callbacks
    server.disconnect(leaver_sid)

    assert ("/", leaver_sid) not in index and held(leaver_sid) == [] and server.rooms(leaver_sid) == []
    assert leaver_sid not in server.manager.rooms["/"][None]
    assert leaver_sid not in server.manager.callbacks
    assert leaver_sid not in server.manager.pending_disconnect.get("/", [])
    assert sorted(map(str, server.rooms(stayer_sid))) == held(stayer_sid) == sorted([stayer_sid, "shared"])
    # python-socketio's public calls reached each replacement (its own would scan every room).
    assert calls["basic_disconnect"] == 1 and calls["basic_enter_room"] >= 9 and calls["basic_leave_room"] >= 5
    assert calls["get_rooms"] >= 4


# ---- python-engineio: a refused request closes its session without waiting ----------------------
def test_a_refused_post_is_answered_at_once_and_its_session_closed():
    assert params(engineio.Server.disconnect) == ["self", "sid"]
    eio = engineio.Server(async_mode="threading", max_http_buffer_size=100, ping_interval=5, ping_timeout=5)
    patches.close_sessions_without_waiting(eio)
    client = Polling(engineio.WSGIApp(eio), path="/engine.io/")
    answers: list[int] = []
    post = threading.Thread(target=lambda: answers.append(client.post("4" + "x" * 200).status_code), daemon=True)
    post.start()
    post.join(WAIT)
    assert answers == [400], "Engine.IO's own disconnect waits for a GET that never comes"
    assert client.sid not in eio.sockets


# ---- a raw WebSocket client, for the drivers' replacements ---------------------------------------
class RawWebSocket:
    """A WebSocket client over a connected socket (the standard library's, or gevent's),
    speaking Engine.IO 4 at `path`, that can send a frame's header without its payload."""

    def __init__(self, sock: Any, path: str = "/engine.io/?EIO=4&transport=websocket"):
        self.sock, self.buffer = sock, b""
        sock.settimeout(WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buffer += chunk

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def receive(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload)."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(length)

    def text(self) -> str:
        opcode, payload = self.receive()
        assert opcode == 1, (opcode, payload)
        return payload.decode()

    def send(self, text: str, announced: int | None = None) -> None:
        """A masked text frame; `announced` is the length its header says (the payload's by default)."""
        payload = text.encode()
        length = len(payload) if announced is None else announced
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def closed_by_server(self, within: float = 2.0) -> bool:
        """Whether the server ends the connection (a close frame, or the end of the stream)
        within `within` seconds."""
        deadline = time.monotonic() + within
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                opcode, _payload = self.receive()
                if opcode == 8:
                    return True
        except EOFError:
            return True
        except TimeoutError:
            pass
        return False


def test_simple_websocket_reads_are_bounded():
    """`flask run`: simple-websocket through Engine.IO's SimpleWebSocketWSGI, told the limit."""
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
    from simple_websocket import Server

    assert params(SimpleWebSocketWSGI.__init__) == ["self", "handler", "server", "kwargs"]
    assert "max_message_size" in params(Server.__init__)
    eio = engineio.Server(async_mode="threading", max_http_buffer_size=1000, ping_interval=60, ping_timeout=60)
    patches.bound_websocket_messages(eio)
    http = make_server("127.0.0.1", 0, engineio.WSGIApp(eio), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", http.server_port)) as sock:
            ws = RawWebSocket(sock)
            assert ws.text().startswith("0{")
            # A frame that says a megabyte is coming, and the first two kilobytes of it: refused
            # as it is read (Engine.IO alone would wait for the rest, then refuse it).
            ws.send("4" + "x" * 2000, announced=1_000_000)
            assert ws.closed_by_server()
    finally:
        http.shutdown()


# ---- gevent-websocket, in gevent's own server (as the gunicorn worker runs them) -----------------
@contextlib.contextmanager
def gevent_websocket_server(eio: engineio.Server) -> Iterator[Callable[[], RawWebSocket]]:
    """`eio` served by gevent's WSGI server with gevent-websocket's handler, in this
    process (not monkey-patched: everything here waits on gevent's own sockets); yields
    a function that opens a WebSocket to it."""
    from gevent import socket as gsocket
    from gevent.pywsgi import WSGIServer
    from geventwebsocket.handler import WebSocketHandler

    server = WSGIServer(("127.0.0.1", 0), engineio.WSGIApp(eio), handler_class=WebSocketHandler, log=None,
                        error_log=None)
    server.start()
    opened: list[Any] = []

    def connect() -> RawWebSocket:
        sock = gsocket.create_connection(("127.0.0.1", server.server_port))
        opened.append(sock)
        return RawWebSocket(sock)

    try:
        yield connect
    finally:
        for sock in opened:
            sock.close()
        server.stop(timeout=1)


@pytest.fixture
def restored_classes(monkeypatch):
    """What `write_frames_directly` sets on library classes for the whole process (as the
    gunicorn worker wants), put back after the test."""
    from engineio.socket import Socket
    from geventwebsocket.websocket import Header

    monkeypatch.setattr(Socket, "schedule_ping", Socket.schedule_ping)
    monkeypatch.setattr(Header, "mask_payload", Header.mask_payload)
    monkeypatch.setattr(Header, "unmask_payload", Header.unmask_payload)


def gevent_eio(**options: Any) -> engineio.Server:
    return engineio.Server(async_mode="gevent", **{"ping_interval": 60, "ping_timeout": 60, **options})


def test_gevent_websocket_reads_are_bounded():
    """gunicorn: each payload read of gevent-websocket (`raw_read`) counted against the limit."""
    from geventwebsocket.websocket import WebSocket

    assert "raw_read" in WebSocket.__slots__
    eio = gevent_eio(max_http_buffer_size=1000)
    patches.bound_websocket_messages(eio)
    with gevent_websocket_server(eio) as connect:
        ws = connect()
        assert ws.text().startswith("0{")
        ws.send("", announced=1_000_000)  # only the header: the read it asks for is refused
        assert ws.closed_by_server()


def test_frames_are_written_by_the_sender_and_engineio_s_writer_is_replaced(restored_classes, caplog):
    eio = gevent_eio()
    received: list[str] = []
    eio.on("message", lambda sid, data: received.append(data))
    patches.bound_websocket_messages(eio)  # in the order the app installs them
    patches.write_frames_directly(eio)
    with gevent_websocket_server(eio) as connect:
        ws = connect()
        assert ws.text().startswith("0{")  # the OPEN packet, queued before the WebSocket: by the writer
        (sid,) = eio.sockets
        sock = eio.sockets[sid]
        assert "send" in vars(sock) and "poll" in vars(sock)  # this connection's own, while it is open
        writer = sock.queue.writer  # Engine.IO's writer, started by `_websocket_handler`, was replaced
        assert writer.adopted and writer.task is None

        eio.send(sid, "hello")
        assert sock.queue.qsize() == 0 and writer.task is None  # written already, by this greenlet
        assert ws.text() == "4hello"
        ws.send("4ping")
        while not received:
            gevent.sleep(0.01)
        assert received == ["ping"]
        eio.disconnect(sid)
        assert ws.closed_by_server()
    gevent.sleep(0.1)
    assert "was not replaced" not in caplog.text


def test_pings_are_sent_by_a_timer(restored_classes, monkeypatch):
    from engineio.socket import Socket

    assert params(Socket.schedule_ping) == ["self"]

    def sleeping_ping(self: Any) -> None:
        raise AssertionError("Engine.IO's own sleeping greenlet sent a ping")

    monkeypatch.setattr(Socket, "_send_ping", sleeping_ping)
    eio = gevent_eio(ping_interval=0.2)
    patches.write_frames_directly(eio)
    with gevent_websocket_server(eio) as connect:
        ws = connect()
        assert ws.text().startswith("0{")
        started = time.monotonic()
        assert ws.text() == "2"  # the first ping, scheduled at connect
        ws.send("3")  # the pong schedules the next
        assert ws.text() == "2"
        assert time.monotonic() - started >= 0.3


def test_a_client_s_frames_are_unmasked_by_the_one_step_unmasking(restored_classes, monkeypatch):
    from geventwebsocket.websocket import Header, WebSocket

    assert params(Header.unmask_payload) == ["self", "payload"]
    assert "header.unmask_payload(payload)" in inspect.getsource(WebSocket.read_frame)
    eio = gevent_eio()
    received: list[str] = []
    eio.on("message", lambda sid, data: received.append(data))
    patches.write_frames_directly(eio)
    ours = Header.unmask_payload
    assert getattr(ours, "taskchat", False)
    calls: list[int] = []

    def counted(self: Any, payload: bytes) -> bytes:
        calls.append(len(payload))
        return ours(self, payload)

    monkeypatch.setattr(Header, "unmask_payload", counted)
    with gevent_websocket_server(eio) as connect:
        ws = connect()
        assert ws.text().startswith("0{")
        ws.send("4héllo")
        while not received:
            gevent.sleep(0.01)
    assert received == ["héllo"] and calls == [len("4héllo".encode())]


# ---- Flask-Limiter: a storage believed dead, forgotten for each new app -------------------------
def test_a_limiter_s_dead_storage_is_forgotten_for_the_next_app():
    from flask_limiter import Limiter

    limiter = Limiter(key_func=lambda: "someone", in_memory_fallback_enabled=True, headers_enabled=False)
    assert vars(limiter)["_storage_dead"] is False

    def limited_app(storage: str) -> Flask:
        app = Flask(__name__)
        app.config["RATELIMIT_STORAGE_URI"] = storage

        @app.get("/")
        @limiter.limit("100/minute")
        def index() -> str:
            return "ok"

        patches.forget_dead_limiter_storage(limiter)
        limiter.init_app(app)
        return app

    gone = limited_app("redis://127.0.0.1:1/0")  # nothing listens there
    assert gone.test_client().get("/").status_code == 200
    assert limiter._storage_dead is True  # the library remembers it here, and counts in memory
    assert limiter.limiter is not None and limiter.limiter.storage is not limiter.storage

    fresh = limited_app("memory://")
    assert fresh.test_client().get("/").status_code == 200
    assert limiter._storage_dead is False and limiter.limiter.storage is limiter.storage


# ---- webargs under flask-smorest: a JSON body Python cannot read is a 400 ------------------------
def test_every_route_parses_with_the_parser_that_answers_unreadable_json_400():
    from webargs.core import Parser
    from webargs.flaskparser import FlaskParser

    assert params(FlaskParser._raw_load_json) == ["self", "req"]
    assert params(Parser._handle_invalid_json_error) == ["self", "error", "req", "args", "kwargs"]
    patches.install_json_body_parser()
    assert isinstance(flask_smorest.Blueprint.ARGUMENTS_PARSER, patches.JsonBodyParser)

    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.2")
    api = flask_smorest.Api(app)
    blp = flask_smorest.Blueprint("probe", __name__)

    class Body(Schema):
        value = fields.Raw()

    @blp.post("/probe")
    @blp.arguments(Body)
    def probe(body: dict) -> dict:
        return {"ok": True}

    api.register_blueprint(blp)
    client = app.test_client()
    assert client.post("/probe", json={"value": 1}).status_code == 200
    for body in ("[" * 100_000 + "]" * 100_000, '{"value": ' + "9" * 5000 + "}", "{not json"):
        answer = client.post("/probe", data=body, content_type="application/json")
        assert answer.status_code == 400, (body[:20], answer.status_code)


# ---- SQLAlchemy: the pre-ping that looks instead of asking ---------------------------------------
def test_a_pooled_connection_is_checked_by_looking(tmp_path):
    from sqlalchemy.engine.default import DefaultDialect

    assert params(DefaultDialect.do_ping) == ["self", "dbapi_connection"]
    engine = create_engine(f"sqlite:///{tmp_path / 'ping.db'}", pool_pre_ping=True)
    looked: list[Any] = []
    verdicts = iter([False, True])  # healthy, then closed by the server

    def closed(dbapi_connection: Any) -> bool:
        looked.append(dbapi_connection)
        return next(verdicts)

    connected: list[Any] = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: connected.append(dbapi_connection))
    patches.ping_by_looking(engine, closed)
    for _ in range(3):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    # The first checkout is a new connection (never pinged); the second looks and keeps it;
    # the third looks, finds it closed, and the pool connects anew.
    assert looked == [connected[0], connected[0]]
    assert len(connected) == 2
    engine.dispose()


# ---- psycopg under gevent: the wait for the server on a gevent watcher ---------------------------
def test_psycopg_waits_through_the_function_replaced():
    import psycopg

    assert params(waiting.wait) == ["gen", "fileno", "interval", "timeout"]
    assert "waiting.wait(" in inspect.getsource(psycopg.Connection.wait)  # looked up at each call
    assert {"READY_NONE", "Ready", "Wait"} <= set(vars(waiting))


def test_wait_gevent_speaks_psycopg_s_generator_protocol():
    from psycopg.errors import _WaitTimeout

    reader, writer = socket.socketpair()
    try:
        def reading() -> Any:
            ready = yield waiting.Wait.R
            assert ready & waiting.Ready.R
            return reader.recv(10)

        gevent.spawn_later(0.05, writer.send, b"row")
        assert patches.wait_gevent(reading(), reader.fileno(), timeout=WAIT) == b"row"

        def never_answered() -> Any:
            while True:
                ready = yield waiting.Wait.R
                assert ready == waiting.READY_NONE

        with pytest.raises(_WaitTimeout):
            patches.wait_gevent(never_answered(), reader.fileno(), timeout=0.1)
    finally:
        reader.close()
        writer.close()


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgresql"),
                    reason="needs PostgreSQL (DATABASE_URL)")
def test_a_psycopg_query_waits_in_wait_gevent(monkeypatch):
    import psycopg
    from sqlalchemy.engine import make_url

    calls: list[int] = []
    wait_gevent = patches.wait_gevent

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return wait_gevent(*args, **kwargs)

    monkeypatch.setattr(patches, "wait_gevent", counted)
    monkeypatch.setattr(waiting, "wait", waiting.wait)  # put back after the test
    patches.wait_for_psycopg_on_gevent()
    assert waiting.wait is counted
    url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert calls
