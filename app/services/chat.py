"""The task chat: send and read messages."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..auth import Actor
from ..errors import NO_SEND_PERMISSION, ValidationError
from ..extensions import db
from ..models import ChatMessage
from ..realtime import notify
from . import activity
from .access import require_member, require_permission
from .paging import Page, fetch_page


def send_message(
    actor: Actor, task_id: int, *, message: str, attachments: list[Any] | None = None, reply_to: int | None = None
) -> ChatMessage:
    """Store a message and its activity entry in one transaction, then tell the room."""
    require_permission(task_id, actor.id, "can_comment", NO_SEND_PERMISSION)
    if reply_to is not None:
        parent_task = db.session.scalar(select(ChatMessage.task_id).where(ChatMessage.id == reply_to))
        if parent_task != task_id:
            raise ValidationError(
                "replyTo must be a message of the same task", details={"replyTo": ["No such message in this task."]}
            )
    chat = ChatMessage(
        task_id=task_id, user_id=actor.id, message=message, attachments=list(attachments or []), reply_to=reply_to
    )
    db.session.add(chat)
    db.session.flush()
    activity.record(
        user_id=actor.id, action="created", entity_type="task_chat", entity_id=chat.id, task_id=task_id,
        new_values={"message": message[:100], "attachments": len(chat.attachments), "replyTo": reply_to},
        description=f"Chat message sent in task {task_id}",
    )
    db.session.commit()
    notify.message_created(chat)
    return chat


def history(actor: Actor, task_id: int, *, before: int | None = None, limit: int = 50) -> Page:
    """Newest first; `before` pages further back."""
    require_member(task_id, actor.id)
    query = select(ChatMessage).where(ChatMessage.task_id == task_id).order_by(ChatMessage.id.desc())
    if before is not None:
        query = query.where(ChatMessage.id < before)
    return fetch_page(query, limit)

