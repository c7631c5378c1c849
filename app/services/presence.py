"""Joining a task's room, with the catch-up; leaving; typing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from ..auth import Actor
from ..errors import NO_TASK_ACCESS, Forbidden
from ..hotdb import read_one
from ..models import TaskMember, permissions_of
from ..realtime import notify
from ..realtime.presence import SocketKey
from .access import require_member
from .history import CatchUp, catch_up
from .reads import unread_column

_THIS_MEMBER = (TaskMember.task_id == bindparam("task_id"), TaskMember.user_id == bindparam("user_id"))
_ROLE = select(TaskMember.role).where(*_THIS_MEMBER)
_ROLE_AND_UNREAD = select(TaskMember.role, unread_column()).where(*_THIS_MEMBER)


@dataclass
class Joined:
    role: str
    permissions: dict[str, bool]
    online: list[dict[str, Any]]
    unread_count: int
    catch_up: CatchUp


def join_task(actor: Actor, socket: SocketKey, task_id: int, last_message_id: int | None = None) -> Joined:
    """Any member may join, whatever their role. The socket enters the room
    before the catch-up is read, so a change committed meanwhile reaches it as
    an event, in the catch-up, or both; never neither. Clients merge by id and
    keep the higher `version`. Every socket joins after it connects, so the two
    reads run on a hot connection (app/hotdb.py) where there is one."""
    member = {"task_id": task_id, "user_id": actor.id}
    if read_one(_ROLE, member) is None:
        raise Forbidden(NO_TASK_ACCESS)
    notify.enter(socket, task_id, actor)
    # Checked again inside the room: a removal that committed between the first
    # check and the enter could not take this socket out.
    row = read_one(_ROLE_AND_UNREAD, member)
    if row is None:
        notify.leave(socket, task_id, actor)
        raise Forbidden(NO_TASK_ACCESS)
    role, unread = row
    return Joined(role, permissions_of(role), notify.online(task_id), unread, catch_up(task_id, last_message_id))


def leave_task(actor: Actor, socket: SocketKey, task_id: int) -> None:
    if task_id in notify.joined_tasks(socket):
        notify.leave(socket, task_id, actor)


def typing(actor: Actor, socket: SocketKey, task_id: int, started: bool) -> None:
    """Heard only from a member's socket that has joined the room. A socket in the
    room is a member's: a removal takes the removed user's sockets out of it in the
    same step that announces it, so the database is asked only when it is not."""
    if task_id not in notify.joined_tasks(socket):
        require_member(task_id, actor.id)
        raise Forbidden("Join the task before sending typing events")
    notify.typing(socket, task_id, actor, started)
