"""The one place that talks to the Socket.IO server: emits and room changes.

Services call these after their commit, so nothing is announced that was not
stored. Every task room exists once per mounted namespace (`/tasks`, and `/`
for the original frontend); each emit goes to all of them, so clients of both
namespaces share the room.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import current_app

from ..auth import Actor
from ..extensions import socketio
from ..models import ChatMessage, Task, TaskMember
from ..schemas import member_out, message_out, task_out


def task_room(task_id: int) -> str:
    return f"task_{task_id}"


def user_room(user_id: int) -> str:
    return f"user_{user_id}"


def _namespaces() -> list[str]:
    return current_app.config["SOCKETIO_NAMESPACES"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _emit(event: str, data: Any, room: str, skip_sid: str | None = None) -> None:
    for namespace in _namespaces():
        socketio.emit(event, data, to=room, namespace=namespace, skip_sid=skip_sid)


def _sids_of_user(user_id: int):
    """(namespace, sid) of every socket of this user, in this process."""
    manager = socketio.server.manager
    for namespace in _namespaces():
        for sid, _eio_sid in list(manager.get_participants(namespace, user_room(user_id))):
            yield namespace, sid


@dataclass
class SocketState:
    """What this process knows of one connected socket."""

    actor: Actor
    tasks: set[int] = field(default_factory=set)


# (namespace, sid) -> state. A socket lives in one process, so this stays local
# even when several processes share rooms through a message queue.
_sockets: dict[tuple[str, str], SocketState] = {}


def _tasks_of(sid: str, namespace: str) -> set[int]:
    state = _sockets.get((namespace, sid))
    return state.tasks if state else set()


# ---- a socket's own rooms ------------------------------------------------------
def connected(sid: str, namespace: str, actor: Actor) -> None:
    _sockets[(namespace, sid)] = SocketState(actor)
    socketio.server.enter_room(sid, user_room(actor.id), namespace=namespace)


def disconnected(sid: str, namespace: str) -> None:
    """The socket is gone: the rooms it was in hear that its user left."""
    state = _sockets.get((namespace, sid))
    if state is None:
        return
    for task_id in list(state.tasks):
        left(sid, namespace, task_id, state.actor)
    del _sockets[(namespace, sid)]


def session_actor(sid: str, namespace: str) -> Actor | None:
    state = _sockets.get((namespace, sid))
    return state.actor if state else None


def joined_tasks(sid: str, namespace: str) -> frozenset[int]:
    return frozenset(_tasks_of(sid, namespace))


def _presence(task_id: int, user_id: int, user_name: str) -> dict[str, Any]:
    """The payload of `user_joined` and `user_left`."""
    return {"taskId": task_id, "userId": user_id, "userName": user_name, "timestamp": _now()}


def joined(sid: str, namespace: str, task_id: int, actor: Actor) -> None:
    socketio.server.enter_room(sid, task_room(task_id), namespace=namespace)
    _tasks_of(sid, namespace).add(task_id)
    _emit("user_joined", _presence(task_id, actor.id, actor.name), task_room(task_id), skip_sid=sid)


def left(sid: str, namespace: str, task_id: int, actor: Actor) -> None:
    """The socket leaves the room (by asking, or by disconnecting); the others are told."""
    socketio.server.leave_room(sid, task_room(task_id), namespace=namespace)
    _tasks_of(sid, namespace).discard(task_id)
    _emit("user_left", _presence(task_id, actor.id, actor.name), task_room(task_id), skip_sid=sid)


def typing(sid: str, task_id: int, actor: Actor, started: bool) -> None:
    if started:
        _emit("user_typing", {"taskId": task_id, "userId": actor.id, "userName": actor.name},
              task_room(task_id), skip_sid=sid)
    else:
        _emit("user_stopped_typing", {"taskId": task_id, "userId": actor.id}, task_room(task_id), skip_sid=sid)


def error_to(sid: str, namespace: str, error: dict[str, Any]) -> None:
    """The original's `error` event, to the one socket whose event failed."""
    socketio.emit("error", error, to=sid, namespace=namespace)


# ---- after a commit -------------------------------------------------------------
def message_created(message: ChatMessage) -> None:
    _emit("new_message", {"message": message_out.dump(message), "taskId": message.task_id},
          task_room(message.task_id))


def task_updated(task: Task, changed: list[str], actor: Actor) -> None:
    payload = {"taskId": task.id, "task": task_out.dump(task), "changes": changed, "updatedBy": actor.id}
    _emit("task_updated", payload, task_room(task.id))


def task_deleted(task_id: int, title: str, actor: Actor) -> None:
    room = task_room(task_id)
    payload = {"type": "task_deleted", "taskId": task_id, "title": title, "by": actor.id, "timestamp": _now()}
    _emit("task_notification", payload, room)
    for namespace in _namespaces():
        for sid, _eio_sid in list(socketio.server.manager.get_participants(namespace, room)):
            _tasks_of(sid, namespace).discard(task_id)
        socketio.server.close_room(room, namespace=namespace)


def member_payload(member: TaskMember) -> dict[str, Any]:
    return member_out.dump(member)


def member_changed(task_id: int, action: str, member: TaskMember) -> None:
    payload = {"taskId": task_id, "action": action, "member": member_payload(member)}
    _emit("member_changed", payload, task_room(task_id))


def member_removed(task_id: int, removed: Actor, member: dict[str, Any]) -> None:
    """The removed user's sockets leave the room first, so they hear nothing more of it."""
    room = task_room(task_id)
    was_present = False
    for namespace, sid in _sids_of_user(removed.id):
        tasks = _tasks_of(sid, namespace)
        was_present = was_present or task_id in tasks
        tasks.discard(task_id)
        socketio.server.leave_room(sid, room, namespace=namespace)
    _emit("member_changed", {"taskId": task_id, "action": "removed", "member": member}, room)
    if was_present:
        _emit("user_left", _presence(task_id, removed.id, removed.name), room)
