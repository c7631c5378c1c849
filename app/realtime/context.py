"""Which socket event is being handled, without Flask's request context.

Flask-SocketIO runs every event inside a full Flask request context built from the
connection's handshake environ: a Werkzeug request, URL matching and a session,
for each message a client sends. Nothing here needs it (connect reads the
Authorization header from the environ), so `TasksNamespace` runs every event,
connect and disconnect included, in an app context, and says which socket and
event through this context variable; `socket()` and `event_name()` read it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

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
    return None if current is None else (current.namespace, current.sid)


def event_name() -> str | None:
    current = _current.get()
    return None if current is None else current.name
