"""Joining a task's room, with the catch-up; leaving; typing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..auth import Actor
from ..errors import NO_TASK_ACCESS, Forbidden
from ..extensions import db
from ..models import TaskMember
from ..realtime import notify
from ..realtime.presence import SocketKey
from .access import require_member
from .history import CatchUp, catch_up
from .reads import unread_count


@dataclass
class Joined:
    member: TaskMember
    online: list[dict[str, Any]]
    unread_count: int
    catch_up: CatchUp


def join_task(actor: Actor, socket: SocketKey, task_id: int, last_message_id: int | None = None) -> Joined:
    """Any member may join, whatever their role. The socket enters the room
    before the catch-up is read, so a change committed meanwhile reaches it as
    an event, in the catch-up, or both; never neither. Clients merge by id and
    keep the higher `version`."""
    require_member(task_id, actor.id)
    notify.enter(socket, task_id, actor)
    # Checked again inside the room: a removal that committed between the first
    # check and the enter could not take this socket out.
    member = db.session.get(TaskMember, (task_id, actor.id), populate_existing=True)
    if member is None:
        notify.leave(socket, task_id, actor)
        raise Forbidden(NO_TASK_ACCESS)
    return Joined(member, notify.online(task_id), unread_count(member), catch_up(task_id, last_message_id))


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
