"""Who may be in a task's room: joining, with the catch-up, and typing.

The room itself is the Socket.IO side's (app/realtime/joining.py): it asks
`may_join` before the socket enters the room and `joined` once it is in.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from ..actor import Actor
from ..errors import NO_TASK_ACCESS, Forbidden
from ..hotdb import read_one
from ..models import TaskMember
from .access import require_member
from .history import CatchUp, catch_up
from .reads import unread_column

_THIS_MEMBER = (TaskMember.task_id == bindparam("task_id"), TaskMember.user_id == bindparam("user_id"))
_ROLE = select(TaskMember.role).where(*_THIS_MEMBER)
_ROLE_AND_UNREAD = select(TaskMember.role, unread_column()).where(*_THIS_MEMBER)


@dataclass(frozen=True)
class Joined:
    role: str
    unread_count: int
    catch_up: CatchUp


def may_join(actor: Actor, task_id: int) -> None:
    """Any member may join, whatever their role. Every socket joins after it
    connects, so this read and the next run on a hot connection (app/hotdb.py)
    where there is one."""
    if read_one(_ROLE, {"task_id": task_id, "user_id": actor.id}) is None:
        raise Forbidden(NO_TASK_ACCESS)


def joined(actor: Actor, task_id: int, last_message_id: int | None = None) -> Joined:
    """Read once the socket is in the room, so a change committed meanwhile reaches
    it as an event, in the catch-up, or both; never neither (clients merge by id and
    keep the higher `version`). The membership is checked again: a removal that
    committed between `may_join` and the socket entering could not take it out."""
    row = read_one(_ROLE_AND_UNREAD, {"task_id": task_id, "user_id": actor.id})
    if row is None:
        raise Forbidden(NO_TASK_ACCESS)
    role, unread = row
    return Joined(role, unread, catch_up(task_id, last_message_id))


def may_type(actor: Actor, task_id: int, in_room: bool) -> None:
    """Typing is heard only from a member's socket that has joined the room. A
    socket in the room is a member's: a removal takes the removed user's sockets
    out of it in the same step that announces it, so the database is asked only
    when it is not."""
    if not in_room:
        require_member(task_id, actor.id)
        raise Forbidden("Join the task before sending typing events")
