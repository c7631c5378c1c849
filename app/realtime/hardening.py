"""What a client sends, dropped or cut short before it costs anything.

python-socketio and python-engineio act on whatever a client sends. Left alone:

- an EVENT named "connect" ran `on_connect` again (Flask-SocketIO routes every
  event to `on_<name>`) and re-registered the socket: with someone else's token
  the socket became that user, its rate-limit refusals and rooms were forgotten.
  One named "disconnect" ran `on_disconnect` while the socket stayed connected
  and in its rooms; the registry forgot it, so later removals from a task,
  logouts and expiries (which all look sockets up there) no longer reached it,
  and it no longer counted against MAX_SOCKETS_PER_USER;
- an event no handler knows started a handler thread and had its ack answered
  with an empty list; an event name that is not a string, a payload that is not
  a list, JSON that does not decode (deep nesting is a RecursionError) or an
  unknown packet type raised, and logged a traceback;
- a BINARY_EVENT or BINARY_ACK packet, and every binary frame after it, was kept
  in memory until as many attachments came as the packet announced;
- every event started its own thread (greenlet) at once, without bound, ahead
  of everybody else's events; and the events of one connection ran side by side,
  so ten messages emitted back to back were stored and broadcast in a scrambled
  order, and a `leave_task` emitted right after its `join_task` could run first
  and leave the socket in the room (see `_Events` and MAX_EVENTS_IN_FLIGHT);
- a long-polling POST that Engine.IO refuses (over `max_http_buffer_size`, or an
  unknown Engine.IO packet) kept its thread, and a worker connection slot,
  forever (see `patches.close_sessions_without_waiting`);
- a WebSocket message was read whole, however big, before its size was checked
  (see `patches.bound_websocket_messages`).

So `install` drops every binary packet and frame, every EVENT whose name is not
one of the namespace's own handlers, and every packet that does not decode; a
dropped packet gets no ack and leaves the socket connected. No event of this
server takes binary data. The events it lets through run one at a time per
connection, in the order they arrived; one over the in-flight cap is answered
`rate_limited` at once instead. Nothing here logs a session id: for long-polling the
Engine.IO sid is the session's only credential.
"""
from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import socketio
from socketio import packet

from .. import cooperative, patches
from ..errors import RateLimited

log = logging.getLogger(__name__)

# Socket.IO's reserved names: what the server and client say about the
# connection itself, never an event a client may emit.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener",
                             "removeListener"})
# Events of one connection dispatched and not yet done (waiting their turn or
# running). A client waits for its acks: one with this many unanswered is
# flooding. Without a bound, a burst of thousands would be read, decoded and
# queued while the rate limit refuses them only one by one as each gets its turn;
# and Engine.IO reads a connection's frames in one loop that does not yield while
# more are buffered. So an event over the cap is not run: it is answered at once,
# from the reading loop, with the ack `rate_limited` (so that a client that fired
# a burst without waiting knows which to send again); as many again over the cap,
# and the connection is closed, which also ends the reading of its backlog.
MAX_EVENTS_IN_FLIGHT = 32
# Whole seconds, as every `retryAfter`: the cap frees up as the answers come back.
IN_FLIGHT_RETRY_AFTER = 1
_CLOSED_REMEMBERED = 1024
_BINARY = (str(packet.BINARY_EVENT), str(packet.BINARY_ACK))
_PASSED = (packet.CONNECT, packet.DISCONNECT, packet.ACK)  # a client's CONNECT_ERROR or unknown type is dropped


class _Events:
    """Per Engine.IO connection: how many of its events are dispatched and not yet
    done, how many it sent on top of that since it last had none in flight, and
    the queue of those still waiting their turn.

    A connection's events run one at a time, in the order they were read, by at
    most one worker: the first event queued while none runs starts it, and it ends
    when the queue is empty. python-socketio instead starts a thread (greenlet) per
    event; those of one connection then race each other, and a client sees its
    messages stored out of the order it sent them, or its `leave_task` overtaken by
    the `join_task` sent just before. A client that emits without waiting for each
    ack relies on that order (as Socket.IO clients generally may). Different
    connections still run side by side, each in its own worker.
    """

    def __init__(self) -> None:
        self._lock = cooperative.lock()
        self._count: dict[str, int] = {}
        self._over: dict[str, int] = {}
        self._queues: dict[str, deque[Callable[[], None]]] = {}  # present while its worker runs
        self._closed: OrderedDict[str, None] = OrderedDict()  # the last connections closed for flooding

    def close(self, eio_sid: str) -> None:
        with self._lock:
            self._closed[eio_sid] = None
            while len(self._closed) > _CLOSED_REMEMBERED:
                self._closed.popitem(last=False)

    def closed(self, eio_sid: str) -> bool:
        return eio_sid in self._closed

    def take(self, eio_sid: str) -> bool:
        with self._lock:
            count = self._count.get(eio_sid, 0)
            if count >= MAX_EVENTS_IN_FLIGHT:
                self._over[eio_sid] = self._over.get(eio_sid, 0) + 1
                return False
            self._count[eio_sid] = count + 1
            return True

    def over(self, eio_sid: str) -> int:
        with self._lock:
            return self._over.get(eio_sid, 0)

    def release(self, eio_sid: str, done: int = 1) -> None:
        with self._lock:
            count = self._count.get(eio_sid, 0) - done
            if count > 0:
                self._count[eio_sid] = count
            else:
                self._count.pop(eio_sid, None)
                self._over.pop(eio_sid, None)  # it waited for its answers: a clean slate

    def enqueue(self, eio_sid: str, job: Callable[[], None]) -> bool:
        """Queue `job` behind the connection's others; True when no worker runs for
        it yet, and the caller must start one."""
        with self._lock:
            queue = self._queues.get(eio_sid)
            if queue is not None:
                queue.append(job)
                return False
            self._queues[eio_sid] = deque([job])
            return True

    def next(self, eio_sid: str) -> Callable[[], None] | None:
        """The worker's next job, or None: the queue is empty and forgotten, in the
        same step, so that the next event starts a new worker."""
        with self._lock:
            queue = self._queues[eio_sid]
            if queue:
                return queue.popleft()
            del self._queues[eio_sid]
            return None

    def abandon(self, eio_sid: str) -> None:
        """No worker could be started: forget the queue, and its jobs in flight."""
        with self._lock:
            dropped = len(self._queues.pop(eio_sid, ()))
        self.release(eio_sid, dropped)


def client_events(server: socketio.Server) -> dict[str, frozenset[str]]:
    """Per namespace, the events a client may send: the `on_<event>` methods of
    its namespace handler (and any handler registered with `@socketio.on`)."""
    allowed: dict[str, set[str]] = {}
    for namespace, handler in server.namespace_handlers.items():
        names = {name[3:] for name in dir(handler) if name.startswith("on_") and callable(getattr(handler, name))}
        allowed.setdefault(namespace, set()).update(names)
    for namespace, handlers in server.handlers.items():
        allowed.setdefault(namespace, set()).update(name for name in handlers if isinstance(name, str))
    return {namespace: frozenset(names - RESERVED_EVENTS) for namespace, names in allowed.items()}


def install(server: socketio.Server) -> None:
    """Put the filter in front of `server`'s handling of every message a client sends
    (`patches.filter_socketio_messages`: python-socketio gives no hook there).

    An EVENT let through does not go on to python-socketio's own event handling,
    which would start a thread for it at once; it is queued on its connection
    (`_Events`), whose worker hands it in turn to python-socketio's step that runs
    the handler and then sends its ack (`run_event`).

    Call it after every namespace is registered: the allowed events are read once.
    """
    allowed = client_events(server)
    deliver, run_event, send_packet = patches.socketio_steps(server)
    events = _Events()

    def refuse(eio_sid: str, namespace: str, ack_id: int | None) -> None:
        """Over the cap: answer now, from the reading loop, and run nothing. The error is
        the one every other `rate_limited` ack carries (no `error` event besides:
        that would double what a flooding client makes the server write)."""
        if ack_id is not None:
            error = RateLimited(IN_FLIGHT_RETRY_AFTER, "Too many events in flight on this connection; "
                                                       "wait for their answers").to_dict()
            send_packet(eio_sid, server.packet_class(packet.ACK, namespace=namespace, id=ack_id,
                                                     data=[{"ok": False, "error": error}]))
        if events.over(eio_sid) > MAX_EVENTS_IN_FLIGHT:
            log.warning("connection closed: %d events sent on top of %d unanswered",
                        events.over(eio_sid), MAX_EVENTS_IN_FLIGHT)
            events.close(eio_sid)
            server.eio.disconnect(eio_sid)

    def work(eio_sid: str) -> None:
        """The connection's worker: its queued events, one after another."""
        while (job := events.next(eio_sid)) is not None:
            try:
                job()
            except Exception:  # the handler's own errors are acks already; this is a bug, not the client's
                log.exception("a socket event failed")
            finally:
                events.release(eio_sid)

    def dispatch(eio_sid: str, pkt: packet.Packet) -> None:
        namespace = pkt.namespace or "/"
        sid = server.manager.sid_from_eio_sid(eio_sid, namespace)
        if not server.manager.is_connected(sid, namespace):
            return  # python-socketio would drop it too (without our count)
        if not events.take(eio_sid):
            refuse(eio_sid, namespace, pkt.id)
            return
        if not server.async_handlers:
            # Flask-SocketIO's test client turns async handlers off: it reads each
            # event's ack as soon as its emit returns, so the event runs right here.
            try:
                run_event(sid, eio_sid, pkt.data, namespace, pkt.id)
            finally:
                events.release(eio_sid)
            return

        def job() -> None:
            # A socket gone while its event waited (a disconnect, a close for flooding,
            # an expired token) would only be refused as unknown: python-socketio drops
            # events of a socket that is not connected, and so does this.
            if server.manager.is_connected(sid, namespace):
                run_event(sid, eio_sid, pkt.data, namespace, pkt.id)

        if events.enqueue(eio_sid, job):
            try:
                server.start_background_task(work, eio_sid)
            except BaseException:
                events.abandon(eio_sid)
                raise

    def handle_eio_message(eio_sid: str, data: Any) -> None:
        if events.closed(eio_sid):
            # Closed for flooding, and Engine.IO's reading loop is still going through
            # the frames that were on their way: let the writer run, which ends the loop.
            server.sleep(0)
            return
        if not isinstance(data, str) or data[:1] in _BINARY:
            return  # a binary packet, or a binary frame (the attachment of one); none is accepted
        try:
            pkt = server.packet_class(encoded_packet=data)
        except (ValueError, TypeError, RecursionError):
            # Not JSON, too deeply nested, an id or a number too long, no packet type.
            log.debug("dropped a packet that does not decode")
            return
        if pkt.packet_type in _PASSED:
            deliver(eio_sid, data)  # as python-socketio does them
        elif pkt.packet_type == packet.EVENT:
            event = pkt.data[0] if isinstance(pkt.data, list) and pkt.data else None
            if isinstance(event, str) and event in allowed.get(pkt.namespace or "/", ()):
                dispatch(eio_sid, pkt)
            else:
                log.debug("dropped an event the server does not take")
        else:
            log.debug("dropped a packet of type %r", pkt.packet_type)

    patches.filter_socketio_messages(server, handle_eio_message)
    patches.close_sessions_without_waiting(server.eio)
    patches.bound_websocket_messages(server.eio)
