"""Events of a unit of work, delivered once it has committed, dropped if it rolls back.

A service records what happened (`record(event)`, an object of one of the types in
`app/services/events.py`) on the session that stores it. Subscribers (the Socket.IO
side, `app/realtime/`) are called in two steps, both by SQLAlchemy's session events:

- `prepare`, just before the commit, inside the transaction: a subscriber reads what
  its announcement needs (a message's author, the parent a reply quotes) while the
  rows are still there and locked, and returns what to do once they are stored;
- that action runs after the commit succeeded, in the order the events were recorded.

A rollback, or a session that ends without committing, drops both. So nothing is
announced that was not stored, and no service calls a subscriber itself.

A write that commits without the ORM session (the plain-text send on a hot
connection, in autocommit) calls `committed(event)` once its statement returned:
the same two steps, at once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from .extensions import db

log = logging.getLogger(__name__)

Action = Callable[[], None]
Subscriber = Callable[[Any], Action | None]

_subscribers: dict[type, list[Subscriber]] = {}
_RECORDED = "taskchat_events_recorded"
_PREPARED = "taskchat_events_prepared"


def subscribe(event_type: type, subscriber: Subscriber) -> None:
    """Call `subscriber(event)` before each commit that recorded an event of this type;
    the action it returns (if any) runs after the commit. Subscribing twice is once."""
    subscribers = _subscribers.setdefault(event_type, [])
    if subscriber not in subscribers:
        subscribers.append(subscriber)


def record(event: object) -> None:
    """Deliver `event` after the current transaction of the session commits."""
    db.session.info.setdefault(_RECORDED, []).append(event)


def committed(*events: object) -> None:
    """Deliver events of a write that has already committed outside the session."""
    _run(_prepare(list(events)))


def _prepare(events: list[object]) -> list[Action]:
    actions = []
    for event in events:
        for subscriber in _subscribers.get(type(event), ()):
            action = subscriber(event)
            if action is not None:
                actions.append(action)
    return actions


def _run(actions: list[Action]) -> None:
    # What was stored stays stored: one announcement failing must not take the
    # others, nor the caller's answer, with it.
    for action in actions:
        try:
            action()
        except Exception:
            log.exception("an event's delivery failed after its commit")


def _before_commit(session: Session) -> None:
    events = session.info.pop(_RECORDED, None)
    if events:
        session.flush()  # ids and defaults of the rows the events name
        session.info.setdefault(_PREPARED, []).extend(_prepare(events))


def _after_commit(session: Session) -> None:
    actions = session.info.pop(_PREPARED, None)
    if actions:
        _run(actions)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """A rolled back (or abandoned) transaction takes its events with it."""
    if transaction.parent is None:
        session.info.pop(_RECORDED, None)
        session.info.pop(_PREPARED, None)


# Flask-SQLAlchemy's scoped session: listening on it listens on every session it makes.
sa_event.listen(db.session, "before_commit", _before_commit)
sa_event.listen(db.session, "after_commit", _after_commit)
sa_event.listen(db.session, "after_transaction_end", _after_transaction_end)
