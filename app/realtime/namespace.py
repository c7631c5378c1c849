"""The Socket.IO door: parse the payload, call the service, shape the ack.

Every handler takes its payload as `*args`, so a client that sends nothing, or
too much, gets a `validation_error` rather than a TypeError. Failures are
turned into the ack `{"ok": false, "error": {...}}` and the original's `error`
event by `handle_error`, registered for every namespace.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace

from ..auth import Actor, user_from_token
from ..errors import AppError, AuthError, InternalError
from ..schemas import SendMessageIn, TaskRef, load, message_out
from ..services import chat, presence
from . import notify

log = logging.getLogger(__name__)


def ok(data: Any = None) -> dict[str, Any]:
    return {"ok": True, "data": data}


def _token(auth: Any) -> Any:
    if isinstance(auth, dict) and auth.get("token"):
        return auth["token"]
    return request.headers.get("Authorization")


def _task_ref(args: tuple[Any, ...]) -> int:
    """`join_task` and `leave_task` take a bare task id, as the original did, or {taskId}."""
    data = args[0] if args else None
    if not isinstance(data, dict):
        data = {"taskId": data}
    return load(TaskRef, data)["task_id"]


def _payload(args: tuple[Any, ...]) -> Any:
    return args[0] if args else None


class TasksNamespace(Namespace):
    """The task chat's events. Mounted at `/tasks`, and at `/` for the original frontend."""

    def _actor(self) -> Actor:
        actor = notify.session_actor(request.sid, request.namespace)
        if actor is None:  # an event raced the connect handler; treat as unauthenticated
            raise AuthError()
        return actor

    def on_connect(self, auth: Any = None) -> None:
        try:
            user = user_from_token(_token(auth))
        except AuthError as err:
            raise ConnectionRefusedError(err.message, {"code": err.code}) from None
        notify.connected(request.sid, request.namespace, Actor.of(user))

    def on_disconnect(self, reason: Any = None) -> None:
        notify.disconnected(request.sid, request.namespace)

    def on_join_task(self, *args: Any) -> dict[str, Any]:
        actor = self._actor()
        task_id = _task_ref(args)
        member = presence.join_task(actor, task_id)
        notify.joined(request.sid, request.namespace, task_id, actor)
        return ok({"taskId": task_id, "role": member.role, "permissions": member.permissions})

    def on_leave_task(self, *args: Any) -> dict[str, Any]:
        actor = self._actor()
        task_id = _task_ref(args)
        if task_id in notify.joined_tasks(request.sid, request.namespace):
            notify.left(request.sid, request.namespace, task_id, actor)
        return ok({"taskId": task_id})

    def on_send_message(self, *args: Any) -> dict[str, Any]:
        actor = self._actor()
        data = load(SendMessageIn, _payload(args))
        message = chat.send_message(
            actor, data["task_id"], message=data["message"], attachments=data["attachments"],
            reply_to=data["reply_to"],
        )
        return ok(message_out.dump(message))

    def on_typing_start(self, *args: Any) -> dict[str, Any]:
        return self._typing(args, started=True)

    def on_typing_stop(self, *args: Any) -> dict[str, Any]:
        return self._typing(args, started=False)

    def _typing(self, args: tuple[Any, ...], started: bool) -> dict[str, Any]:
        actor = self._actor()
        task_id = load(TaskRef, _payload(args))["task_id"]
        presence.require_joined(task_id, notify.joined_tasks(request.sid, request.namespace))
        notify.typing(request.sid, task_id, actor, started)
        return ok({"taskId": task_id})


def handle_error(exc: Exception) -> dict[str, Any]:
    """Any failure of an event: the ack, and the `error` event the original frontend listens to."""
    event = (getattr(request, "event", None) or {}).get("message")
    if not isinstance(exc, AppError):
        log.error("socket event %s failed", event, exc_info=exc)
        exc = InternalError()
    if event == "connect":
        # A connect handler that fails refuses the connection; it never half-opens it.
        raise ConnectionRefusedError(exc.message, {"code": exc.code})
    error = exc.to_dict()
    notify.error_to(request.sid, request.namespace, error)
    return {"ok": False, "error": error}

