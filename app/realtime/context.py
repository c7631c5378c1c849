"""Which socket event is being handled, without Flask's request context.

Flask-SocketIO runs every event inside a full Flask request context built from the
connection's handshake environ: a Werkzeug request, URL matching and a session,
for each message a client sends. Only the connect handler reads anything from it
(the Authorization header). So `TasksNamespace` runs the other events in an app
context, and says which socket and event through this context variable; `socket()`
and `event_name()` read it, or Flask-SocketIO's request during connect and
disconnect.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import has_request_context, request

from .presence import SocketKey


@dataclass(frozen=True)
class SocketEvent:
    namespace: str
    sid: str
    name: str


_current: ContextVar[SocketEvent | None] = ContextVar("taskchat_socket_event", default=None)


@contextmanager
def handling(namespace: str, sid: str, name: str) -> Iterator[None]:
    token = _current.set(SocketEvent(namespace, sid, name))
    try:
        yield
    finally:
        _current.reset(token)


def socket() -> SocketKey | None:
    """The socket whose event is being handled, if any."""
    current = _current.get()
    if current is not None:
        return (current.namespace, current.sid)
    if has_request_context() and getattr(request, "sid", None) is not None:
        return (request.namespace, request.sid)
    return None


def event_name() -> str | None:
    current = _current.get()
    if current is not None:
        return current.name
    if has_request_context():
        return (getattr(request, "event", None) or {}).get("message")
    return None
