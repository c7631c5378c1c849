"""Who may do what in a task: one lookup, used by every service."""
from __future__ import annotations

from ..errors import NO_TASK_ACCESS, Forbidden
from ..extensions import db
from ..models import TaskMember


def membership(task_id: int, user_id: int) -> TaskMember | None:
    return db.session.get(TaskMember, (task_id, user_id))


def require_member(task_id: int, user_id: int) -> TaskMember:
    """The actor's membership of the task. A task that does not exist and one
    the actor is not a member of get the same answer, so membership does not leak."""
    member = membership(task_id, user_id)
    if member is None:
        raise Forbidden(NO_TASK_ACCESS)
    return member


def require_permission(task_id: int, user_id: int, permission: str, message: str) -> TaskMember:
    member = require_member(task_id, user_id)
    if not getattr(member, permission):
        raise Forbidden(message)
    return member
