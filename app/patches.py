"""Every change this server makes to a library's own code, in one place.

Where a library gives no hook for what the server needs, a method or attribute of
the library's (often a private one) is replaced here, on one object where that is
enough, on the library's class where it is not. Each replacement says which
behaviour of the library it corrects, and the release it was written for: it
relies on how that release calls its own private parts, which no release promises
to keep. `WRITTEN_FOR` lists those releases (the pins of requirements.txt), and
`check_versions()`, called by `create_app` before anything else, refuses to start
the server when another release is installed: a replacement written for one
release may be silently skipped, or break, on the next. tests/test_patches.py has
a test per replacement that fails when the library no longer calls it the way it
is written for, and runs each through the library's public entry points.

What to do when a library is upgraded: read the replacements that name it against
the new release's code, run tests/test_patches.py, then change its version here.

This module sits at the bottom of the app's layering: it imports libraries and
app/config.py only. What a replacement needs from the layers above (the rules of
what a client may send, how a connection is looked at) comes in as an argument.
Libraries whose private modules a replacement uses are imported where they are
used, so that a release that moved them is refused by `check_versions()` with its
message, not by an ImportError.
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import time
import types
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

import engineio
import flask_smorest
import socketio
from flask import Request
from psycopg import waiting
from webargs.flaskparser import FlaskParser

from .config import ConfigError

log = logging.getLogger(__name__)

# The release of each library whose code is replaced below, as requirements.txt pins it.
WRITTEN_FOR: dict[str, str] = {
    "python-socketio": "5.18.1",  # the message filter; the index of each socket's rooms
    "python-engineio": "4.15.1",  # closing without waiting; bounded reads; frames written directly; pings
    "gevent-websocket": "0.10.1",  # bounded reads; frames written directly; the unmasking
    "simple-websocket": "1.1.0",  # bounded reads (`flask run`)
    "Flask-Limiter": "4.1.1",  # a storage believed dead, forgotten for each new app
    "flask-smorest": "0.47.0",  # the parser of every route's arguments
    "webargs": "8.7.1",  # a JSON body Python cannot read is a 400
    "SQLAlchemy": "2.1.9",  # the pre-ping that looks instead of asking
    "psycopg": "3.3.9",  # the wait for the server on a gevent watcher
    "gevent": "26.9.0",  # the watchers and timers of the replacements that run under gunicorn
}


class LibraryVersionError(ConfigError):
    """An installed library is not the release this server's replacements of its code were written for."""


@functools.cache
def installed_versions() -> dict[str, str | None]:
    """The installed release of each library of `WRITTEN_FOR` (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in WRITTEN_FOR:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def check_versions(installed: Mapping[str, str | None] | None = None) -> None:
    """Refuse to start (LibraryVersionError, one message naming each library) unless every
    library of `WRITTEN_FOR` is installed at the release written for. `installed` maps
    distribution names to versions; by default, what this process has installed."""
    installed = installed_versions() if installed is None else installed
    wrong = []
    for name, wanted in WRITTEN_FOR.items():
        have = installed.get(name)
        if have != wanted:
            wrong.append(f"{name} {have} is installed, written for {wanted}" if have
                         else f"{name} is not installed, written for {wanted}")
    if wrong:
        raise LibraryVersionError(
            "installed libraries are not the releases whose code app/patches.py replaces: "
            + "; ".join(wrong)
            + ". Install requirements.txt; or, to move to the installed release, check each replacement "
            "in app/patches.py that names the library against the release's code, run tests/test_patches.py, "
            "then update WRITTEN_FOR there and the pin in requirements.txt"
        )


# ---- python-socketio 5.18.1: the message filter --------------------------------------------------
class SocketIOSteps(NamedTuple):
    """python-socketio's own steps that a message filter hands what it lets through to."""

    deliver: Callable[[str, Any], None]  # (eio_sid, data): a message as python-socketio handles it
    run_event: Callable[[str, str, Any, str, int | None], None]  # (sid, eio_sid, data, namespace, ack id)
    send_packet: Callable[[str, Any], None]  # (eio_sid, packet)


def socketio_steps(server: socketio.Server) -> SocketIOSteps:
    """python-socketio 5.18.1's private steps (`Server` in socketio/server.py), bound to `server`:

    - `_handle_eio_message(eio_sid, data)`: what Engine.IO hands every message of a
      connection to; it decodes the packet and acts on it;
    - `_handle_event_internal(server, sid, eio_sid, data, namespace, id)`: runs an
      event's handler, then sends its ack. python-socketio's `_handle_event` calls it,
      in a thread of its own for every event; `run_event` calls it where it is called;
    - `_send_packet(eio_sid, pkt)`: encodes and writes one packet.

    Taken from the class, so that they are python-socketio's even after
    `filter_socketio_messages` replaced the instance's `_handle_eio_message`."""
    cls = type(server)
    return SocketIOSteps(
        deliver=types.MethodType(cls._handle_eio_message, server),
        run_event=functools.partial(cls._handle_event_internal, server, server),
        send_packet=types.MethodType(cls._send_packet, server),
    )


def filter_socketio_messages(server: socketio.Server, handler: Callable[[str, Any], None]) -> None:
    """Put `handler(eio_sid, data)` in the place of python-socketio's `_handle_eio_message`,
    for every message a client sends to `server`; `handler` hands what it lets through
    to `socketio_steps(server)`.

    Corrects: python-socketio acts on whatever a client sends (events of reserved names,
    binary attachments buffered, a thread per event; app/realtime/hardening.py says
    what and why). `_handle_eio_message` is the one place where a packet has been read
    and nothing done with it yet: one level down, in `_handle_event`, the binary
    attachments have already been buffered and a malformed packet has already raised;
    one level up, Engine.IO hands over raw strings and bytes. python-socketio gives no
    hook there. Written for
    python-socketio 5.18.1, whose `Server.__init__` registers the bound method with
    `eio.on("message", ...)`: replacing the attribute alone would not reach live
    traffic, and Flask-SocketIO's test client calls the attribute, so both are set."""
    server._handle_eio_message = handler
    server.eio.on("message", handler)


# ---- python-socketio 5.18.1: each socket's rooms, indexed ----------------------------------------
def index_rooms(manager: Any) -> dict[tuple[str, str], dict[Any, None]]:
    """Keep which rooms each socket is in beside python-socketio's own table, and answer
    from it; returns the index, (namespace, sid) -> rooms (insertion-ordered).

    Corrects: python-socketio's manager keeps `rooms[namespace][room] -> {sid: eio_sid}`
    only, so to find a socket's rooms it copies and scans every room of the namespace:
    `basic_disconnect` does that for each socket that goes, and `get_rooms` for each
    call. Here every socket has its own room, and its user another, so with 10,000
    sockets that is over 20,000 rooms per disconnect; when many clients went at once
    (a network blip, a load balancer restart, a benchmark ending) the worker spent
    whole seconds per thousand disconnects in that scan and answered nothing else,
    so pings went unanswered and more clients dropped.

    The index is updated in `basic_enter_room` and `basic_leave_room` (every change of
    membership goes through those two, remote ones of a message queue manager
    included), and answers `basic_disconnect` and `get_rooms`: the cost of a socket's
    rooms, not of all rooms. Written for python-socketio 5.18.1
    (`socketio/base_manager.py`); the rest of `basic_disconnect` (callbacks, pending
    connects and disconnects) is repeated as it is there. Set on `manager` only."""
    rooms_of: dict[tuple[str, str], dict[Any, None]] = {}
    enter_room, leave_room = manager.basic_enter_room, manager.basic_leave_room

    def basic_enter_room(sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        enter_room(sid, namespace, room, eio_sid=eio_sid)
        rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(sid: str, namespace: str, room: Any) -> None:
        leave_room(sid, namespace, room)
        rooms = rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del rooms_of[(namespace, sid)]

    def basic_disconnect(sid: str, namespace: str, **kwargs: Any) -> None:
        if namespace not in manager.rooms:
            return
        for room in list(rooms_of.get((namespace, sid), ())):
            manager.basic_leave_room(sid, namespace, room)
        manager.callbacks.pop(sid, None)
        for pending in (manager.pending_connect, manager.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(sid: str, namespace: str) -> list[Any]:
        return [room for room in rooms_of.get((namespace, sid), ()) if room is not None]

    manager.basic_enter_room = basic_enter_room
    manager.basic_leave_room = basic_leave_room
    manager.basic_disconnect = basic_disconnect
    manager.get_rooms = get_rooms
    return rooms_of


# ---- python-engineio 4.15.1: a refused request closes its session without waiting ----------------
def close_sessions_without_waiting(eio: engineio.Server) -> None:
    """`eio.disconnect(sid)` closes the session and answers at once.

    Corrects: python-engineio 4.15.1 calls `self.disconnect(sid)` itself when it refuses
    a request of a session (a long-polling POST over `max_http_buffer_size`, or with
    an unknown Engine.IO packet), and `disconnect` closes the socket with `wait=True`:
    it waits for the session's queue to be written out, which only a GET of that
    session does. The refused POST kept its thread, and a worker connection slot,
    forever. Set on this server only; a GET still waiting on the session takes the
    CLOSE packet as before. Shutting everything down (`disconnect()` without a sid)
    is left as it is."""
    original = eio.disconnect

    def disconnect(sid: str | None = None) -> None:
        if sid is None:
            original()
            return
        socket = eio.sockets.get(sid)
        if socket is not None:
            socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets.pop(sid, None)

    eio.disconnect = disconnect


# ---- python-engineio 4.15.1 with gevent-websocket 0.10.1 or simple-websocket 1.1.0: bounded reads -
def bound_websocket_messages(eio: engineio.Server) -> None:
    """Refuse a WebSocket message over `max_http_buffer_size` bytes while it is read.

    Corrects: python-engineio 4.15.1 checks the size of a message only once the
    WebSocket library has read all of it, and neither library it uses here is told a
    limit: gevent-websocket 0.10.1 (gunicorn) reads a frame of whatever length its
    header announces, and joins continuation frames without end; simple-websocket
    1.1.0 (`flask run`) takes a `max_message_size` that Engine.IO does not pass. A
    200 MB frame grew the gunicorn worker by 380 MB before it was refused.

    The driver's WebSocket class (Engine.IO's private `_async["websocket"]`) is swapped,
    on this server only, for one that passes the limit (simple-websocket, through
    Engine.IO's `SimpleWebSocketWSGI`, which hands its keyword arguments to
    `simple_websocket.Server`) or counts the bytes of each message as gevent-websocket
    reads them with `raw_read`, refusing the read that would pass the limit: the
    frame ends as if the client had gone, and Engine.IO closes the connection as it
    does for any packet over the limit."""
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

    limit = eio.max_http_buffer_size
    base = eio._async.get("websocket") if eio._async else None
    if base is None:
        return
    if issubclass(base, SimpleWebSocketWSGI):

        class Bounded(base):  # type: ignore[valid-type,misc]
            def __init__(self, handler: Any, server: Any, **kwargs: Any):
                super().__init__(handler, server, **kwargs)
                self.server_args["max_message_size"] = limit

    elif hasattr(base, "wait") and base.__module__ == "engineio.async_drivers.gevent":

        class Bounded(base):  # type: ignore[valid-type,misc,no-redef]
            _read = 0  # bytes of the message being read

            def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
                ws = environ.get("wsgi.websocket")
                if ws is not None:
                    read_payload = ws.raw_read  # what gevent-websocket reads frame payloads with

                    def bounded(size: int) -> bytes:
                        self._read += size
                        if self._read > limit:
                            raise OSError("message too large")  # read_frame takes it for a lost connection
                        payload: bytes = read_payload(size)
                        return payload

                    ws.raw_read = bounded
                return super().__call__(environ, start_response)

            def wait(self) -> Any:
                self._read = 0
                return super().wait()

    else:  # another driver: left as it is
        return
    eio._async = {**eio._async, "websocket": Bounded}


# ---- python-engineio 4.15.1 with gevent-websocket 0.10.1 and gevent 26.9.0: frames written directly -
#
# Under gevent-websocket, Engine.IO gives each WebSocket a writer greenlet and a queue:
# `Socket.send` puts the packet in the queue and the writer, woken by the hub, takes
# it out and writes the frame. For a broadcast to a room of ten, that is ten queue
# puts, ten greenlet switches and ten timed queue waits set up again, on top of the
# ten frame writes that are the real work; measured under load, that hand-over cost
# as much per recipient as the write itself.
#
# `write_frames_directly` has a packet written at once, by the greenlet that sends it,
# when the socket is a WebSocket whose queue is empty and which nobody is writing to.
# The write never waits: it is one non-blocking `send` on the operating system's
# socket. Whatever the kernel does not take (a client that stopped reading has a full
# buffer) goes to the queue as the frame's unsent bytes, so the writer greenlet
# finishes that frame before any later packet, and a slow client never holds up the
# greenlet of someone else's event. Every other case (long-polling, an upgrade in
# progress, packets already queued, a write in progress, a closed WebSocket, an error)
# takes Engine.IO's queue. Order is kept: a packet is written directly only when no
# packet sent before it is still unwritten.
#
# Only the gevent-websocket driver (gunicorn) is changed; `flask run` and the test
# client keep Engine.IO's own path. The `wsgi.websocket` object is gevent-websocket's
# (0.10.1), whose `raw_write` is the socket's `sendall` and whose handler's socket is a
# gevent socket over a non-blocking OS socket (`_sock`); both are checked for each
# connection. The same install makes gevent-websocket's reading of a client's frame
# cheaper (`_unmask_in_one_step`; the UTF-8 check of a text frame is done in C by
# `wsaccel` (requirements.txt), which gevent-websocket uses when installed), and
# waits for each socket's next ping on a timer instead of a sleeping greenlet
# (`_ping_by_timer`). With frames written directly, a WebSocket's queue is rarely
# used, so its writer greenlet is started only when something is queued
# (`WriterOnDemand`): most connections then keep one greenlet (the one reading)
# instead of three.


class Unsent:
    """The rest of a frame the kernel did not take: the writer greenlet writes it
    before anything queued after it. Engine.IO's writer calls `encode()` on what it
    takes from the queue and hands the result to the WebSocket's `send`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def encode(self) -> Unsent:
        return self


def frame(message: str | bytes, websocket: Any) -> bytes:
    """One final, unmasked frame of `message`, as gevent-websocket 0.10.1's `send_frame`
    builds it (`websocket` is its module, imported only where gevent runs)."""
    if isinstance(message, str):
        payload, opcode = message.encode("utf-8"), websocket.WebSocket.OPCODE_TEXT
    else:
        payload, opcode = bytes(message), websocket.WebSocket.OPCODE_BINARY
    return bytes(websocket.Header.encode_header(True, opcode, b"", len(payload), 0)) + payload


def write_frames_directly(eio: engineio.Server) -> None:
    """Swap the gevent-websocket driver's WebSocket class (Engine.IO's private
    `_async["websocket"]`), on this server only, for one that writes directly when it
    can, and have Engine.IO's writer greenlet started only when something is queued
    (see the comment above). Written for python-engineio 4.15.1 (`Socket.send`,
    `Socket.poll`, `Socket.queue` and the writer that `Socket._websocket_handler`
    starts with `start_background_task`) and gevent-websocket 0.10.1. Any other driver
    is left as it is."""
    base = eio._async.get("websocket") if eio._async else None
    if base is None or not _is_gevent_websocket_driver(base):
        return
    from geventwebsocket import websocket  # here: importing it imports gevent

    _unmask_in_one_step(websocket.Header)
    _ping_by_timer(engineio.socket.Socket)

    class DirectWrite(base):  # type: ignore[valid-type,misc]
        writing = False  # a frame is being written by whoever holds this flag

        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            gws = environ.get("wsgi.websocket")
            raw = getattr(getattr(getattr(gws, "handler", None), "socket", None), "_sock", None)
            eio_socket = getattr(self.app, "__self__", None)  # the handler is a bound method of it
            if raw is None or not isinstance(eio_socket, engineio.socket.Socket):
                return super().__call__(environ, start_response)
            # An upgrade from long-polling keeps Engine.IO's writer: its last GET may be
            # waiting on the queue, which must stay the same.
            writer = None if eio_socket.connected else WriterOnDemand(eio_socket, self)
            token = _writer_on_demand.set(writer)
            eio_socket.send = _direct_send(eio_socket, self, gws, raw, websocket)
            eio_socket.poll = _poll_without_deadline(eio_socket)  # used by Engine.IO's writer only
            try:
                return super().__call__(environ, start_response)
            finally:
                _writer_on_demand.reset(token)
                del eio_socket.send, eio_socket.poll  # Engine.IO's own again (and no reference cycle left)
                if writer is not None and not writer.adopted:
                    log.warning("Engine.IO's WebSocket writer was not replaced (python-engineio changed?): "
                                "each connection keeps a writer greenlet")

        def send(self, message: Any) -> Any:
            self.writing = True
            try:
                if isinstance(message, Unsent):
                    return self._sock.raw_write(message.data)
                return super().send(message)
            finally:
                self.writing = False

    eio._async = {**eio._async, "websocket": DirectWrite}
    start_task = eio.start_background_task

    def start_background_task(target: Any, *args: Any, **kwargs: Any) -> Any:
        writer = _writer_on_demand.get()
        if writer is not None and getattr(target, "__qualname__", "") == ENGINEIO_WRITER:
            _writer_on_demand.set(None)
            return writer.adopt()
        return start_task(target, *args, **kwargs)

    eio.start_background_task = start_background_task


# The writer greenlet that Engine.IO's WebSocket handler starts (python-engineio 4.15.1).
ENGINEIO_WRITER = "Socket._websocket_handler.<locals>.writer"
_writer_on_demand: ContextVar[WriterOnDemand | None] = ContextVar("taskchat_writer_on_demand", default=None)


class WriterOnDemand:
    """Instead of Engine.IO's writer greenlet, which waits on the socket's queue for the
    connection's whole life: a greenlet started when something is queued, that writes
    what is queued and ends. With frames written directly, the queue is used only for
    what the kernel did not take, a socket in the middle of a write, and the close; so
    most connections have no writer greenlet at all, and a waiting greenlet holds
    about 5 KiB (its saved stack and frames).

    It takes the place of Engine.IO's writer when `_websocket_handler` starts it (for a
    new WebSocket connection; an upgrade from long-polling keeps Engine.IO's), and
    replaces the socket's queue with one that starts it. What it does with each packet
    is what Engine.IO 4.15.1's writer does: `ws.send(pkt.encode())`; at None, or when a
    send fails, `ws.close()`, and nothing more is written."""

    def __init__(self, eio_socket: Any, ws: Any):
        self.ws = ws
        self.adopted = False
        self.closed = False
        self.task: Any = None
        old = eio_socket.queue
        self.queue = eio_socket.queue = _starting_queue_class()(self)
        while not old.empty():  # the OPEN packet, queued before the WebSocket was accepted
            self.queue.put_nowait(old.get_nowait())
            old.task_done()

    def adopt(self) -> WriterOnDemand:
        self.adopted = True
        self.wake()
        return self

    def wake(self) -> None:
        if self.adopted and self.task is None and not self.queue.empty():
            from gevent import spawn

            self.task = spawn(self._drain)

    def join(self, timeout: float | None = None) -> None:
        """What Engine.IO's handler waits for after queueing its last None."""
        self.wake()
        if self.task is not None:
            self.task.join(timeout)

    def _drain(self) -> None:
        queue = self.queue
        try:
            while not queue.empty():
                pkt = queue.get_nowait()
                try:
                    if self.closed:
                        continue
                    if pkt is None:
                        self.closed = True
                        self.ws.close()
                        continue
                    try:
                        self.ws.send(pkt.encode())
                    except Exception:  # noqa: BLE001 (as Engine.IO's writer: the connection is gone)
                        self.closed = True
                        self.ws.close()
                finally:
                    queue.task_done()
        finally:
            self.task = None


@functools.cache
def _starting_queue_class() -> type:
    """gevent's queue, whose `put` wakes the socket's writer (built on first use: gevent
    is imported only where it runs)."""
    from gevent.queue import Queue

    class StartingQueue(Queue[Any]):
        def __init__(self, writer: WriterOnDemand):
            super().__init__()
            self.writer = writer

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item, block, timeout)
            self.writer.wake()

    return StartingQueue


def _unmask_in_one_step(header_class: Any) -> None:
    """Corrects: every frame a client sends is masked (RFC 6455 5.3), and gevent-websocket
    0.10.1 unmasks it with a Python loop over its bytes (`Header.mask_payload`, which
    `WebSocket.read_frame` calls as `unmask_payload`): about 9 µs for a chat message,
    every time one arrives. The same XOR done on two big integers takes under 1 µs.
    The frame codec is gevent-websocket's for the whole process, so this is set on its
    class: the same bytes come out."""
    if getattr(header_class.mask_payload, "taskchat", False):
        return

    def mask_payload(self: Any, payload: bytes) -> bytes:
        size = len(payload)
        mask = (bytes(self.mask) * ((size >> 2) + 1))[:size]
        return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(size, "little")

    mask_payload.taskchat = True  # type: ignore[attr-defined]
    header_class.mask_payload = header_class.unmask_payload = mask_payload


def _ping_by_timer(socket_class: Any) -> None:
    """Corrects: python-engineio 4.15.1 (`Socket.schedule_ping`) waits for each socket's
    next ping in a greenlet of its own that sleeps `ping_interval` (25 s) and then
    sends it (`Socket._send_ping`): one sleeping greenlet per connection, all the
    time, and one holds about 5 KiB (its saved stack and frames). A libev timer holds
    about 0.3 KiB; when it fires, a greenlet sends the ping as Engine.IO's did, and
    is gone a moment later. Set on the class: under gunicorn the process serves this
    server only."""
    if getattr(socket_class.schedule_ping, "taskchat", False):
        return
    from gevent import get_hub, spawn

    def send_ping(sock: Any) -> None:
        if not sock.closing and not sock.closed:
            sock.last_ping = time.time()
            sock.send(engineio.packet.Packet(engineio.packet.PING))

    def due(sock: Any, timer: Any) -> None:
        timer.close()
        spawn(send_ping, sock)  # not in the hub itself: sending may close the socket

    def schedule_ping(self: Any) -> None:
        if self.last_ping:  # only once the previous ping's wait is over, as Engine.IO's
            self.last_ping = None
            timer = get_hub().loop.timer(self.server.ping_interval)
            timer.start(due, self, timer)

    schedule_ping.taskchat = True  # type: ignore[attr-defined]
    socket_class.schedule_ping = schedule_ping


def _direct_send(eio_socket: Any, ws: Any, gws: Any, raw: Any, websocket: Any) -> Any:
    """The socket's `send` while its WebSocket is open: Engine.IO 4.15.1's `Socket.send`
    (the ping check, then the queue) when the frame cannot be written at once."""
    queue = eio_socket.queue
    queue_send = type(eio_socket).send

    def send(pkt: Any) -> None:
        if (not eio_socket.upgraded or eio_socket.upgrading or eio_socket.closed or ws.writing
                or gws.closed or queue.qsize()):
            queue_send(eio_socket, pkt)
            return
        if not eio_socket.check_ping_timeout():
            return
        data = frame(pkt.encode(), websocket)
        try:
            written = raw.send(data)
        except BlockingIOError:
            written = 0
        except OSError:
            # The connection is going: the writer meets the same error, and closes.
            queue.put(pkt)
            return
        if written < len(data):
            queue.put(Unsent(data[written:]))

    return send


def _poll_without_deadline(eio_socket: Any) -> Any:
    """The wait for packets of Engine.IO's WebSocket writer (kept for an upgrade from
    long-polling; see `WriterOnDemand`), without Engine.IO's deadline.

    Engine.IO's `poll` gives up after `ping_interval + ping_timeout` seconds with
    nothing queued, and its WebSocket writer then closes the connection: a
    deadline that only holds because the pings every `ping_interval` go through
    the queue. Written directly, they no longer do, so the writer waits until it
    has something to write or the socket is closed (`close` and the end of the
    reading loop both queue None). A client that stops answering pings is still
    closed by Engine.IO's ping check. Otherwise python-engineio 4.15.1's
    `Socket.poll`, unchanged."""
    queue = eio_socket.queue
    queue_empty = eio_socket.server.get_queue_empty_exception()

    def poll() -> list[Any]:
        packets = [queue.get()]
        queue.task_done()
        if packets == [None]:
            return []
        while True:
            try:
                pkt = queue.get(block=False)
            except queue_empty:
                break
            queue.task_done()
            if pkt is None:
                queue.put(None)
                break
            packets.append(pkt)
        return packets

    return poll


def _is_gevent_websocket_driver(base: type) -> bool:
    if not hasattr(base, "wait"):
        return False
    module = getattr(base, "__module__", "")
    if module == "engineio.async_drivers.gevent":
        return True
    # Already wrapped on this server (`bound_websocket_messages`): look at what it wraps.
    return any(getattr(klass, "__module__", "") == "engineio.async_drivers.gevent" for klass in base.__mro__[1:]) \
        and not any(klass.__name__ == "SimpleWebSocketWSGI" for klass in base.__mro__)


# ---- Flask-Limiter 4.1.1: a storage believed dead, forgotten for each new app --------------------
def forget_dead_limiter_storage(limiter: Any) -> None:
    """Call before `limiter.init_app(app)`.

    Corrects: Flask-Limiter 4.1.1 remembers, in the private `Limiter._storage_dead`, that
    its storage (Redis) failed, and then counts in memory (with
    `in_memory_fallback_enabled`) until a periodic check finds the storage back.
    `init_app` does not reset it; one Limiter serves each app made in this process
    (tests make one per test), which would keep believing the previous app's Redis
    was down, and count in memory for good."""
    limiter._storage_dead = False


# ---- webargs 8.7.1 under flask-smorest 0.47.0: a JSON body Python cannot read is a 400 -----------
class JsonBodyParser(FlaskParser):
    """webargs' parser, with every JSON body Python cannot read answered 400 bad_request.

    Corrects: besides JSONDecodeError, `json.loads` raises RecursionError for deep
    nesting and a bare ValueError for an integer of more than 4300 digits; webargs
    8.7.1's `load_json` catches only JSONDecodeError and UnicodeDecodeError around its
    private `_raw_load_json`, and let both through as a 500. They go to its private
    `_handle_invalid_json_error`, as a JSONDecodeError does."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:
            # webargs annotates the two errors it passes; the handler answers 400 for any.
            self._handle_invalid_json_error(exc, req)  # type: ignore[arg-type]


def install_json_body_parser() -> None:
    """Parse every route's arguments with `JsonBodyParser` (above).

    flask-smorest 0.47.0 reads its parser from the class attribute
    `Blueprint.ARGUMENTS_PARSER` when a route is decorated with `@blp.arguments`, so
    this is set on its class, before any route module is imported."""
    flask_smorest.Blueprint.ARGUMENTS_PARSER = JsonBodyParser()


# ---- SQLAlchemy 2.1.9: the pre-ping that looks instead of asking --------------------------------
def ping_by_looking(engine: Any, closed: Callable[[Any], bool]) -> None:
    """Check a pooled connection at checkout with `closed(dbapi_connection)` instead of a
    round trip to the server.

    Corrects: with `pool_pre_ping`, SQLAlchemy 2.1.9 sends `SELECT 1` at every checkout
    (the dialect's `do_ping`, which the pool calls through `_do_ping_w_event`), and
    invalidates the pool when it fails. Under gevent that round trip cost about a
    fifth of the worker's CPU per chat message. This engine's dialect instance gets
    `closed` instead: a connection it calls closed is invalidated as a failed ping
    would be."""

    def do_ping(dbapi_connection: Any) -> bool:
        return not closed(dbapi_connection)

    engine.dialect.do_ping = do_ping


# ---- psycopg 3.3.9 under gevent 26.9.0: the wait for the server on a gevent watcher -------------
class _Expired(Exception):
    pass


def wait_gevent(
    gen: Any, fileno: int,
    interval: float | None = 0.0,  # noqa: ARG001 (psycopg's signature: see the docstring)
    timeout: float | None = None,
) -> Any:
    """`psycopg.waiting.wait`, on a gevent I/O watcher.

    `interval` (psycopg's periodic wake-up, for Ctrl-C in a blocking program) is not
    needed here: a greenlet waits without holding anything up. On readiness the
    generator is told that everything it waited for is ready: psycopg's generators
    then flush or read without blocking, and try again if there was nothing."""
    from gevent import get_hub
    from gevent.socket import wait as wait_on_watcher

    hub = get_hub()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        state = next(gen)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                # psycopg's own, as its wait functions raise it
                from psycopg.errors import _WaitTimeout

                raise _WaitTimeout("wait timeout expired")
            watcher = hub.loop.io(fileno, int(state))  # libev's READ=1, WRITE=2: psycopg's Wait.R, Wait.W
            try:
                wait_on_watcher(watcher, remaining, _Expired)
            except _Expired:
                gen.send(waiting.READY_NONE)
                continue
            finally:
                watcher.close()
            state = gen.send(waiting.Ready(int(state)))
    except StopIteration as stop:
        return stop.value


def wait_for_psycopg_on_gevent() -> None:
    """Use `wait_gevent` for every psycopg connection of this process (gunicorn only).

    Corrects: psycopg runs every query as a generator that says what it waits for (the
    socket readable, writable, or either) and a wait function that waits for it.
    Under gevent's monkey-patching psycopg 3.3.9 picks `wait_poll`, built on
    `select.poll`, which gevent emulates: each wait builds a poll object, a watcher
    per descriptor, a result object and a timer. Measured under S1 that emulation cost
    about twice the CPU of the query itself. `wait_gevent` waits on one libev I/O
    watcher, with a timer only when the caller set a deadline (`notifies(timeout=...)`).
    Written for psycopg 3.3.9 (`psycopg.waiting.wait(gen, fileno, interval, timeout)`,
    looked up by `Connection.wait` at each call) and gevent 26.9.0.

    Called before `create_app`, so it checks the versions itself first."""
    check_versions()
    waiting.wait = wait_gevent
