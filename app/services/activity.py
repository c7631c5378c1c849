"""The activity log, written in the caller's transaction so it records only what was stored."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..actor import Actor
from ..extensions import db
from ..models import ActivityLog
from .access import require_member
from .paging import Page, fetch_page


def record(
    *,
    user_id: int | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    task_id: int | None,
    description: str,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
) -> ActivityLog:
    entry = ActivityLog(
        user_id=user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        task_id=task_id,
        old_values=old_values,
        new_values=new_values,
        description=description,
    )
    db.session.add(entry)
    return entry


# A sent message's entry keeps the start of its text: enough to tell which message it was.
LOGGED_TEXT_LENGTH = 100


def sent_values(message: str, attachments: int, reply_to: int | None) -> dict[str, Any]:
    """The `new_values` of a sent message's entry (both send paths write the same)."""
    return {"message": message[:LOGGED_TEXT_LENGTH], "attachments": attachments, "replyTo": reply_to}


def sent_description(task_id: int) -> str:
    return f"Chat message sent in task {task_id}"


def forget_message_text(message_id: int) -> None:
    """A deleted message's words leave the log too: the entries stay, without their values."""
    db.session.execute(
        update(ActivityLog)
        .where(ActivityLog.entity_type == "task_chat", ActivityLog.entity_id == message_id)
        .values(new_values=None, old_values=None)
    )


def task_activity(actor: Actor, task_id: int, *, before: int | None = None, limit: int = 50) -> Page:
    """A task's log, newest first, for its members."""
    require_member(task_id, actor.id)
    query = select(ActivityLog).where(ActivityLog.task_id == task_id).order_by(ActivityLog.id.desc())
    if before is not None:
        query = query.where(ActivityLog.id < before)
    return fetch_page(query, limit)
