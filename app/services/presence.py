"""Who may be in a task's room, and who may say they are typing there."""
from __future__ import annotations

from collections.abc import Set

from ..auth import Actor
from ..errors import Forbidden
from ..models import TaskMember
from .access import require_member


def join_task(actor: Actor, task_id: int) -> TaskMember:
    """Any member may join the room, whatever their role."""
    return require_member(task_id, actor.id)


def require_joined(task_id: int, joined_tasks: Set[int]) -> None:
    """Typing is only heard from a socket in the task's room."""
    if task_id not in joined_tasks:
        raise Forbidden("Join the task before sending typing events")
