"""A socket joining and leaving a task's room, and typing in it.

Joining reads the membership twice (app/services/presence.py): before the socket
enters the room, and once it is in, with the catch-up. A removal that commits in
between takes out the sockets that are in the room, so the second read is what
keeps a socket that entered just after it from staying.
"""
from __future__ import annotations

from typing import Any

from ..actor import Actor
from ..errors import Forbidden
from ..services import presence
from . import notify
from .presence import SocketKey


def join(actor: Actor, socket: SocketKey, task_id: int,
         last_message_id: int | None) -> tuple[presence.Joined, list[dict[str, Any]]]:
    """The member's state in the task, and who is online there."""
    presence.may_join(actor, task_id)
    notify.enter(socket, task_id, actor)
    try:
        joined = presence.joined(actor, task_id, last_message_id)
    except Forbidden:
        notify.leave(socket, task_id, actor)
        raise
    return joined, notify.online(task_id)


def leave(actor: Actor, socket: SocketKey, task_id: int) -> None:
    if task_id in notify.joined_tasks(socket):
        notify.leave(socket, task_id, actor)


def typing(actor: Actor, socket: SocketKey, task_id: int, started: bool) -> None:
    presence.may_type(actor, task_id, in_room=task_id in notify.joined_tasks(socket))
    notify.typing(socket, task_id, actor, started)
