"""Read state: how far each member has read a task's chat."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, ScalarSelect, Select, SQLColumnExpression, func, or_, select, update

from .. import aftercommit
from ..actor import Actor
from ..extensions import db
from ..models import ChatMessage, TaskMember
from .access import require_member
from .chat import require_message_in_task
from .events import ReadUpdated


def unread_query(
    task_id: int | SQLColumnExpression[int], user_id: int | SQLColumnExpression[int],
    last_read_id: int | SQLColumnExpression[int],
) -> Select[int]:
    """Messages of others, not deleted, newer than what the member read.
    Arguments may be columns, so the same rule counts for a list of tasks."""
    return (
        select(func.count(ChatMessage.id))
        .where(
            ChatMessage.task_id == task_id, ChatMessage.id > last_read_id, ChatMessage.deleted_at.is_(None),
            or_(ChatMessage.user_id.is_(None), ChatMessage.user_id != user_id),
        )
    )


def unread_count(member: TaskMember) -> int:
    return db.session.execute(unread_query(member.task_id, member.user_id, member.last_read_id)).scalar_one()


def unread_column() -> ScalarSelect[int]:
    """The unread count of each TaskMember row of a query."""
    return unread_query(TaskMember.task_id, TaskMember.user_id, TaskMember.last_read_id).scalar_subquery()


@dataclass
class ReadState:
    task_id: int
    last_read_id: int
    unread_count: int


def mark_read(actor: Actor, task_id: int, message_id: int) -> ReadState:
    """Read up to a message of the task. The mark only moves forward, so devices
    that report out of order cannot move it back."""
    member = require_member(task_id, actor.id)
    require_message_in_task(task_id, message_id, "messageId", "messageId must be a message of this task")
    # One conditional UPDATE, so two devices racing cannot move it backwards.
    moved = cast("CursorResult[Any]", db.session.execute(  # an UPDATE's result, typed as the base Result
        update(TaskMember)
        .where(TaskMember.task_id == task_id, TaskMember.user_id == actor.id, TaskMember.last_read_id < message_id)
        .values(last_read_id=message_id)
    )).rowcount == 1
    db.session.refresh(member)
    state = ReadState(task_id=task_id, last_read_id=member.last_read_id, unread_count=unread_count(member))
    if moved:  # the user's other devices hear it; this one has its answer
        aftercommit.record(ReadUpdated(actor.id, task_id, state.last_read_id, state.unread_count))
    db.session.commit()
    return state
