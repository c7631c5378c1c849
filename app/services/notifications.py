"""Stored notifications: a mention (`mention`), being added to a task (`added_to_task`).
Unread ones are listed first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, case, func, select, update

from .. import aftercommit
from ..actor import Actor
from ..errors import ValidationError
from ..extensions import db
from ..models import ChatMessage, Notification, TaskMember, utcnow
from .events import NotificationCreated


def record_mentions(actor: Actor, message: ChatMessage) -> None:
    """One notification per mentioned member, in the sender's transaction; each user
    hears of theirs once it commits. Mentioning yourself notifies nobody."""
    for user_id in message.mentions:
        if user_id != actor.id:
            _store(Notification(user_id=user_id, type="mention", task_id=message.task_id, message_id=message.id,
                                from_user_id=actor.id))


def record_added(actor: Actor, member: TaskMember) -> None:
    """The added user's notification, in the adder's transaction: nobody is put in a
    task without hearing of it."""
    _store(Notification(user_id=member.user_id, type="added_to_task", task_id=member.task_id,
                        from_user_id=actor.id))


def _store(notification: Notification) -> None:
    db.session.add(notification)
    aftercommit.record(NotificationCreated(notification))


@dataclass
class NotificationPage:
    items: list[Notification]
    has_more: bool
    unread_count: int


def _visible(user_id: int) -> ColumnElement[bool]:
    """The user's notifications of tasks they are a member of now: one removed from a
    task no longer sees (nor counts, nor marks) what it told them; re-added, they do."""
    return (Notification.user_id == user_id) & Notification.task_id.in_(
        select(TaskMember.task_id).where(TaskMember.user_id == user_id)
    )


def unread_count(user_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(Notification)
        .where(_visible(user_id), Notification.read_at.is_(None))
    ).scalar_one()  # a count is one row


def list_notifications(actor: Actor, *, limit: int = 50) -> NotificationPage:
    rows = list(db.session.scalars(
        select(Notification).where(_visible(actor.id))
        .order_by(case((Notification.read_at.is_(None), 0), else_=1), Notification.id.desc())
        .limit(limit + 1)
    ))
    return NotificationPage(items=rows[:limit], has_more=len(rows) > limit, unread_count=unread_count(actor.id))


@dataclass
class ReadResult:
    updated: int
    unread_count: int


def mark_read(actor: Actor, ids: list[int] | None = None, *, everything: bool = False) -> ReadResult:
    """The given notifications of the actor (others' ids are ignored), or with `everything`
    all of them: said outright, since reading "no ids" as "all" would cost a client that
    meant "none" every unread mark."""
    if (ids is None) != everything:
        raise ValidationError(details={"_schema": ["Send either ids or all: true."]})
    query = update(Notification).where(_visible(actor.id), Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    # An UPDATE's result is a CursorResult, which has the rowcount (typed as the base Result).
    updated = cast("CursorResult[Any]", db.session.execute(query.values(read_at=utcnow()))).rowcount
    db.session.commit()
    return ReadResult(updated=updated, unread_count=unread_count(actor.id))
