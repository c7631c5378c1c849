"""Frames written by the greenlet that sends them, when nothing is waiting before them.

Under gevent-websocket, Engine.IO gives each WebSocket a writer greenlet and a queue:
`Socket.send` puts the packet in the queue and the writer, woken by the hub, takes
it out and writes the frame. For a broadcast to a room of ten, that is ten queue
puts, ten greenlet switches and ten timed queue waits set up again, on top of the
ten frame writes that are the real work; measured under load, that hand-over cost
as much per recipient as the write itself.

Here a packet is written at once, by the greenlet that sends it, when the socket is
a WebSocket whose queue is empty and which nobody is writing to. The write never
waits: it is one non-blocking `send` on the operating system's socket. Whatever the
kernel does not take (a client that stopped reading has a full buffer) goes to the
queue as the frame's unsent bytes, so the writer greenlet finishes that frame before
any later packet, and a slow client never holds up the greenlet of someone else's
event. Every other case (long-polling, an upgrade in progress, packets already
queued, a write in progress, a closed WebSocket, an error) takes Engine.IO's queue,
as before. Order is kept: a packet is written directly only when no packet sent
before it is still unwritten.

Only the gevent-websocket driver (gunicorn) is changed; `flask run` and the test
client keep Engine.IO's own path. The `wsgi.websocket` object is gevent-websocket's
(0.10.1), whose `raw_write` is the socket's `sendall` and whose handler's socket is a
gevent socket over a non-blocking OS socket (`_sock`); both are checked at install.
The same install makes gevent-websocket's reading of a client's frame cheaper (the
unmasking in one step, `_unmask_in_one_step`, and the UTF-8 check of a text frame
in C, by `wsaccel` (requirements.txt), which gevent-websocket uses when installed),
and waits for each socket's next ping on a timer instead of a sleeping greenlet
(`_ping_by_timer`). With frames written directly, a WebSocket's queue is rarely used,
so its writer greenlet is started only when something is queued (`WriterOnDemand`):
most connections then keep one greenlet (the one reading) instead of three.
"""
from __future__ import annotations

import functools
import logging
import time
from contextvars import ContextVar
from typing import Any

import engineio

log = logging.getLogger(__name__)

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
    """One final, unmasked frame of `message`, as gevent-websocket's `send_frame` builds it
    (`websocket` is its module, imported only where gevent runs)."""
    if isinstance(message, str):
        payload, opcode = message.encode("utf-8"), websocket.WebSocket.OPCODE_TEXT
    else:
        payload, opcode = bytes(message), websocket.WebSocket.OPCODE_BINARY
    return bytes(websocket.Header.encode_header(True, opcode, b"", len(payload), 0)) + payload


def install(eio: engineio.Server) -> None:
    """Swap the gevent-websocket driver's WebSocket class, on this server only, for
    one that writes directly when it can (see the module's docstring)."""
    base = eio._async.get("websocket") if eio._async else None
    if base is None or not _is_gevent_websocket_driver(base):
        return
    from geventwebsocket import websocket  # here: importing it imports gevent

    _unmask_in_one_step(websocket.Header)
    _ping_by_timer(engineio.socket.Socket)

    class DirectWrite(base):  # type: ignore[valid-type,misc]
        writing = False  # a frame is being written by whoever holds this flag

        def __call__(self, environ: dict, start_response: Any) -> Any:
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
        if writer is not None and getattr(target, "__qualname__", "") == _ENGINEIO_WRITER:
            _writer_on_demand.set(None)
            return writer.adopt()
        return start_task(target, *args, **kwargs)

    eio.start_background_task = start_background_task


# The writer greenlet that Engine.IO's WebSocket handler starts (python-engineio 4.15).
_ENGINEIO_WRITER = "Socket._websocket_handler.<locals>.writer"
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
    is what Engine.IO's writer does: `ws.send(pkt.encode())`; at None, or when a send
    fails, `ws.close()`, and nothing more is written."""

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
                    except Exception:  # as Engine.IO's writer: the connection is gone
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

    class StartingQueue(Queue):  # type: ignore[misc,valid-type]
        def __init__(self, writer: WriterOnDemand):
            super().__init__()
            self.writer = writer

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item, block, timeout)
            self.writer.wake()

    return StartingQueue


def _unmask_in_one_step(header_class: Any) -> None:
    """Every frame a client sends is masked (RFC 6455 5.3), and gevent-websocket 0.10.1
    unmasks it with a Python loop over its bytes (`Header.mask_payload`): about 9 µs for
    a chat message, every time one arrives. The same XOR done on two big integers
    takes under 1 µs. The frame codec is gevent-websocket's for the whole process, so
    this is set on its class: the same bytes come out."""
    if getattr(header_class.mask_payload, "taskchat", False):
        return

    def mask_payload(self: Any, payload: bytes) -> bytes:
        size = len(payload)
        mask = (bytes(self.mask) * ((size >> 2) + 1))[:size]
        return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(size, "little")

    mask_payload.taskchat = True  # type: ignore[attr-defined]
    header_class.mask_payload = header_class.unmask_payload = mask_payload


def _ping_by_timer(socket_class: Any) -> None:
    """Engine.IO (python-engineio 4.15, `Socket.schedule_ping`) waits for each socket's
    next ping in a greenlet of its own that sleeps `ping_interval` (25 s) and then
    sends it: one sleeping greenlet per connection, all the time, and one holds about
    5 KiB (its saved stack and frames). A libev timer holds about 0.3 KiB; when it
    fires, a greenlet sends the ping as Engine.IO's did, and is gone a moment later.
    Set on the class: under gunicorn the process serves this server only."""
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
    closed by Engine.IO's ping check, as before. Otherwise Engine.IO's `poll`
    (python-engineio 4.15), unchanged."""
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
    # Already wrapped on this server (hardening's bounded reads): look at what it wraps.
    return any(getattr(klass, "__module__", "") == "engineio.async_drivers.gevent" for klass in base.__mro__[1:]) \
        and not any(klass.__name__ == "SimpleWebSocketWSGI" for klass in base.__mro__)
