"""The one way events leave a unit of work (app/aftercommit.py): prepared inside
the transaction, delivered after it commits, in the order recorded; dropped when
it rolls back or its commit fails. Driven through the app's real session."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import aftercommit
from app.extensions import db
from app.models import User


@pytest.fixture
def heard():
    """A fresh event type with a subscriber that notes each step: what it saw while
    preparing (the row's id, whether a transaction was open), then its delivery."""
    notes: list[tuple] = []

    @dataclass(frozen=True)
    class Stored:
        user: User

    def subscriber(event: Stored) -> aftercommit.Action:
        notes.append(("prepared", event.user.id, db.session().in_transaction()))
        return lambda: notes.append(("delivered", event.user.email))

    aftercommit.subscribe(Stored, subscriber)
    return Stored, notes


def _user(email: str) -> User:
    return User(email=email, password_hash="x", first_name="A", last_name="B")


def test_events_are_delivered_after_the_commit_in_the_order_recorded(app, heard):
    Stored, notes = heard
    with app.app_context():
        for email in ("one@example.com", "two@example.com"):
            user = _user(email)
            db.session.add(user)
            aftercommit.record(Stored(user))
        assert notes == []
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).order_by(User.id)))
    assert notes == [
        ("prepared", ids[0], True), ("prepared", ids[1], True),  # inside the transaction, rows flushed
        ("delivered", "one@example.com"), ("delivered", "two@example.com"),
    ]


def test_a_rollback_drops_the_events_and_a_later_commit_does_not_deliver_them(app, heard):
    Stored, notes = heard
    with app.app_context():
        user = _user("gone@example.com")
        db.session.add(user)
        aftercommit.record(Stored(user))
        db.session.rollback()
        db.session.add(_user("kept@example.com"))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
    assert notes == []


def test_a_commit_that_fails_delivers_nothing(app, heard):
    Stored, notes = heard
    with app.app_context():
        db.session.add(_user("taken@example.com"))
        db.session.commit()
        twin = _user("taken@example.com")
        db.session.add(twin)
        aftercommit.record(Stored(twin))
        with pytest.raises(IntegrityError):
            db.session.commit()  # the flush before the commit hits the unique email
        db.session.rollback()
        db.session.commit()
    assert notes == []


def test_a_session_removed_without_commit_delivers_nothing(app, heard):
    Stored, notes = heard
    with app.app_context():
        user = _user("abandoned@example.com")
        db.session.add(user)
        aftercommit.record(Stored(user))
    with app.app_context():
        db.session.add(_user("next@example.com"))
        db.session.commit()
    assert notes == []


def test_one_failing_delivery_does_not_stop_the_others_nor_the_commit(app, caplog):
    @dataclass(frozen=True)
    class Said:
        text: str

    delivered: list[str] = []

    def subscriber(event: Said) -> aftercommit.Action:
        def deliver() -> None:
            if event.text == "boom":
                raise RuntimeError("the emit failed")
            delivered.append(event.text)
        return deliver

    aftercommit.subscribe(Said, subscriber)
    with app.app_context():
        db.session.add(_user("stays@example.com"))
        for text in ("before", "boom", "after"):
            aftercommit.record(Said(text))
        db.session.commit()
        assert db.session.scalar(select(User.email)) == "stays@example.com"
    assert delivered == ["before", "after"]
    assert "an event's delivery failed after its commit" in caplog.text


def test_committed_delivers_at_once_for_a_write_outside_the_session(app):
    @dataclass(frozen=True)
    class Autocommitted:
        n: int

    steps: list[str] = []
    aftercommit.subscribe(Autocommitted, lambda event: lambda: steps.append(f"delivered {event.n}"))
    with app.app_context():
        aftercommit.committed(Autocommitted(1), Autocommitted(2))
        assert steps == ["delivered 1", "delivered 2"]
