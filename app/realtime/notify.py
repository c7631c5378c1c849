"""The one place that talks to the Socket.IO server: emits and room changes.

The services' events reach it after their commit (`subscribe`, app/aftercommit.py),
so nothing is announced that was not stored. Every task room exists once per mounted
namespace (`/tasks`, and `/` for the web frontend); each emit goes to all
of them, so clients of both namespaces share the room. Who is where is kept in
`presence.Registry`, one per app.
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from .. import aftercommit
from ..actor import Actor
from ..extensions import socketio
from ..schemas.outputs import member_out, message_wire, notification_out, task_out
from ..services import events
from . import context
from .presence import Registry, SocketKey

log = logging.getLogger(__name__)


def task_room(task_id: int) -> str:
    return f"task_{task_id}"


def user_room(user_id: int) -> str:
    return f"user_{user_id}"


def registry() -> Registry:
    return current_app.extensions["taskchat_presence"]


def _namespaces() -> list[str]:
    return current_app.config["SOCKETIO_NAMESPACES"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _emit(event: str, data: Any, room: str, skip_sid: str | None = None) -> None:
    for namespace in _namespaces():
        socketio.emit(event, data, to=room, namespace=namespace, skip_sid=skip_sid)


def _origin_sid() -> str | None:
    """The socket whose event caused this, if any: it is told by its ack instead."""
    key = context.socket()
    return key[1] if key is not None else None


# ---- a socket's own rooms ------------------------------------------------------
def connected(key: SocketKey, actor: Actor, jti: str = "", expires_at: float = float("inf")) -> bool:
    """Register the socket and its token; False when the user has too many open."""
    if not registry().add_socket(key, actor, jti, expires_at, current_app.config["MAX_SOCKETS_PER_USER"]):
        return False
    socketio.server.enter_room(key[1], user_room(actor.id), namespace=key[0])
    return True


def auth_ended(key: SocketKey, code: str) -> None:
    """The socket's token expired or was revoked: say so, then hang up. The
    disconnect handler leaves its rooms as for any other disconnect."""
    socketio.emit("auth_expired", {"code": code}, to=key[1], namespace=key[0])
    socketio.server.disconnect(key[1], namespace=key[0])


def hang_up(key: SocketKey) -> None:
    socketio.server.disconnect(key[1], namespace=key[0])


def tokens_revoked(jtis: list[str]) -> None:
    """After a logout (here, or in another process as the database tells us): this
    process's sockets that use those tokens end now, and any event that still
    comes with one of them is refused."""
    revoked = set(jtis)
    registry().tokens_revoked(jtis, time.monotonic())
    for key, jti, _expires in registry().sessions():
        if jti in revoked:
            auth_ended(key, "token_revoked")


def disconnected(key: SocketKey) -> None:
    """The socket is gone: it leaves its rooms as if it had asked."""
    state = registry().socket(key)
    if state is None:
        return
    for task_id in list(state.tasks):
        leave(key, task_id, state.actor)
    registry().remove_socket(key)


def joined_tasks(key: SocketKey) -> frozenset[int]:
    state = registry().socket(key)
    return frozenset(state.tasks) if state else frozenset()


def online(task_id: int) -> list[dict[str, Any]]:
    return registry().online(task_id)


def _presence(task_id: int, user_id: int, user_name: str) -> dict[str, Any]:
    """The payload of `user_joined` and `user_left`."""
    return {"taskId": task_id, "userId": user_id, "userName": user_name, "timestamp": _now()}


def enter(key: SocketKey, task_id: int, actor: Actor) -> None:
    """Into the room first; `user_joined` only when this is the user's first socket there.
    A socket that went while its join waited (for the database, under load) has left
    the registry: it enters nothing, or it would stay "online" for good."""
    if registry().socket(key) is None:
        return
    socketio.server.enter_room(key[1], task_room(task_id), namespace=key[0])
    if registry().enter(key, task_id):
        _emit("user_joined", _presence(task_id, actor.id, actor.name), task_room(task_id), skip_sid=key[1])


def leave(key: SocketKey, task_id: int, actor: Actor) -> None:
    """Out of the room (asked, disconnected, or refused on join); `user_left` when
    it was the user's last socket there."""
    socketio.server.leave_room(key[1], task_room(task_id), namespace=key[0])
    if registry().leave(key, task_id):
        typing_ended(task_id, actor)
        _emit("user_left", _presence(task_id, actor.id, actor.name), task_room(task_id), skip_sid=key[1])


# ---- typing ---------------------------------------------------------------------
def typing(key: SocketKey, task_id: int, actor: Actor, started: bool) -> None:
    config = current_app.config
    if not started:
        typing_ended(task_id, actor, skip_sid=key[1])
    elif registry().typing_started(task_id, actor, time.monotonic(), config["TYPING_THROTTLE_SECONDS"]):
        _emit("user_typing", {"taskId": task_id, "userId": actor.id, "userName": actor.name},
              task_room(task_id), skip_sid=key[1])
        _start_typing_sweeper()


def typing_ended(task_id: int, actor: Actor, skip_sid: str | None = None) -> None:
    """Said by the client, or concluded by the server (sent, left, silent too long).
    The typer's socket whose event ended it (a `send_message`) does not hear its own
    stop, as it hears neither its `user_typing` nor its `typing_stop`."""
    if registry().typing_stopped(task_id, actor.id):
        _emit("user_stopped_typing", {"taskId": task_id, "userId": actor.id}, task_room(task_id),
              skip_sid=skip_sid or _origin_sid())


def _start_typing_sweeper() -> None:
    if registry().start_sweeping():
        socketio.start_background_task(_sweep_typing, current_app._get_current_object())  # type: ignore[attr-defined]  # a LocalProxy, typed as Flask


def _sweep_typing(app) -> None:
    """Ends the typing of users who went quiet; runs only while someone types."""
    timeout = app.config["TYPING_TIMEOUT_SECONDS"]
    with app.app_context():
        presence = registry()
    try:
        while True:
            socketio.sleep(min(1.0, timeout / 4))
            with app.app_context():
                for task_id, user_id in presence.typing_expired(time.monotonic(), timeout):
                    _emit("user_stopped_typing", {"taskId": task_id, "userId": user_id}, task_room(task_id))
            if presence.stop_sweeping_if_idle():
                return
    except Exception:
        # The next typing_start starts a new sweeper.
        log.exception("typing sweeper failed")
        presence.abandon_sweeping()


def error_to(key: SocketKey, error: dict[str, Any]) -> None:
    """The `error` event the web frontend listens to, to the one socket whose event failed."""
    socketio.emit("error", error, to=key[1], namespace=key[0])


# ---- after a commit ----------------------------------------------------------
# Subscribers of the services' events (app/aftercommit.py): each reads what its
# payload needs inside the transaction, and returns the emits to make once it has
# committed.
def subscribe() -> None:
    for event_type, subscriber in (
        (events.MessageCreated, _message_created), (events.MessageUpdated, _message_updated),
        (events.MessageDeleted, _message_deleted), (events.ReactionUpdated, _reaction_updated),
        (events.ReadUpdated, _read_updated), (events.NotificationCreated, _notification_created),
        (events.TaskUpdated, _task_updated), (events.TaskDeleted, _task_deleted),
        (events.MemberChanged, _member_changed), (events.MemberRemoved, _member_removed),
        (events.TokensRevoked, _tokens_revoked),
    ):
        aftercommit.subscribe(event_type, subscriber)


def _to_room(name: str, payload: dict[str, Any], room: str, skip_sid: str | None = None) -> aftercommit.Action:
    return lambda: _emit(name, payload, room, skip_sid)


def _message_created(event: events.MessageCreated) -> aftercommit.Action:
    """The author has stopped typing too: the room hears it after the message."""
    message, author = event.message, event.author
    new_message = _to_room("new_message", {"message": message_wire(message), "taskId": message.task_id},
                           task_room(message.task_id))

    def announce() -> None:
        new_message()
        typing_ended(message.task_id, author)

    return announce


def _message_updated(event: events.MessageUpdated) -> aftercommit.Action:
    message = event.message
    return _to_room("message_updated", {"taskId": message.task_id, "message": message_wire(message)},
                    task_room(message.task_id))


def _message_deleted(event: events.MessageDeleted) -> aftercommit.Action:
    """With the whole tombstone (`message`), as history shows it: a client keeps it
    like any other copy, and reaches exactly the server's state (deletedAt, no
    mentions, reactions or attachments) whatever it held before, or missed."""
    message = event.message
    payload = {"taskId": message.task_id, "messageId": message.id, "version": message.version,
               "deletedBy": message.deleted_by, "message": message_wire(message)}
    return _to_room("message_deleted", payload, task_room(message.task_id))


def _reaction_updated(event: events.ReactionUpdated) -> aftercommit.Action:
    """With the whole message as well: `reactions` alone, applied to a copy that
    missed an earlier change (an edit while the client was away, heard before its
    catch-up arrives), would give that stale copy the new version."""
    message = event.message
    wire = message_wire(message)
    payload = {
        "taskId": message.task_id, "messageId": message.id, "emoji": event.emoji, "action": event.action,
        "userId": event.actor.id, "userName": event.actor.name, "version": message.version,
        "reactions": wire["reactions"], "message": wire,
    }
    return _to_room("reaction_updated", payload, task_room(message.task_id))


def _read_updated(event: events.ReadUpdated) -> aftercommit.Action:
    """To the user's other sockets; the one that marked has its ack."""
    payload = {"taskId": event.task_id, "lastReadId": event.last_read_id, "unreadCount": event.unread_count}
    return _to_room("read_updated", payload, user_room(event.user_id), skip_sid=_origin_sid())


def _notification_created(event: events.NotificationCreated) -> aftercommit.Action:
    """Every device of the user hears it, whether or not it has joined the task."""
    payload = notification_out.dump(event.notification)
    payload["notificationId"] = payload["id"]
    payload["timestamp"] = payload["createdAt"]
    return _to_room("task_notification", payload, user_room(event.notification.user_id))


def _task_updated(event: events.TaskUpdated) -> aftercommit.Action:
    task = event.task
    payload = {"taskId": task.id, "task": task_out.dump(task), "changes": event.changed, "updatedBy": event.actor.id}
    return _to_room("task_updated", payload, task_room(task.id))


def _task_deleted(event: events.TaskDeleted) -> aftercommit.Action:
    """The room hears it, then closes: nobody stays in a task that is gone."""
    task_id, room = event.task_id, task_room(event.task_id)
    payload = {"type": "task_deleted", "taskId": task_id, "title": event.title, "by": event.actor.id,
               "timestamp": _now()}

    def close() -> None:
        _emit("task_notification", payload, room)
        registry().drop_task(task_id)
        for namespace in _namespaces():
            socketio.server.close_room(room, namespace=namespace)

    return close


def _member_changed(event: events.MemberChanged) -> aftercommit.Action:
    member = event.member
    payload = {"taskId": member.task_id, "action": event.action, "member": member_out.dump(member)}
    return _to_room("member_changed", payload, task_room(member.task_id))


def _member_removed(event: events.MemberRemoved) -> aftercommit.Action:
    """The removed user's sockets leave the room first, so they hear nothing more of
    it, and are told with `removed_from_task`; the room hears who left."""
    task_id, removed = event.member.task_id, event.removed
    member = member_out.dump(event.member)
    return lambda: _take_out(task_id, removed, member)


def _take_out(task_id: int, removed: Actor, member: dict[str, Any]) -> None:
    room = task_room(task_id)
    was_present = False
    for key in registry().sockets_of(removed.id):
        socketio.server.leave_room(key[1], room, namespace=key[0])
        was_present = registry().leave(key, task_id) or was_present
    _emit("removed_from_task", {"taskId": task_id}, user_room(removed.id))
    if registry().typing_stopped(task_id, removed.id):
        _emit("user_stopped_typing", {"taskId": task_id, "userId": removed.id}, room)
    _emit("member_changed", {"taskId": task_id, "action": "removed", "member": member}, room)
    if was_present:
        _emit("user_left", _presence(task_id, removed.id, removed.name), room)


def _tokens_revoked(event: events.TokensRevoked) -> aftercommit.Action:
    """A logout ends this process's sockets that use its tokens before it answers."""
    return lambda: tokens_revoked(event.jtis)
