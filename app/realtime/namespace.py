"""The Socket.IO door: parse the payload, call the service, shape the ack.

Every handler takes its payload as `*args`, so a client that sends nothing, or
too much, gets a `validation_error` rather than a TypeError. Failures are
turned into the ack `{"ok": false, "error": {...}}` and the `error` event
event by `handle_error`, registered for every namespace.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask_socketio import ConnectionRefusedError, Namespace  # noqa: A004 (Flask-SocketIO's name)

from ..actor import Actor
from ..errors import AuthError, RateLimited, TooManyConnections, Unavailable, as_app_error
from ..schemas.inputs import (
    EditMessageIn, JoinTaskIn, MarkReadIn, MessageRef, ReactionIn, RefreshTokenIn, SendMessageIn, TaskRef, load,
)
from ..schemas.outputs import message_wire, permissions_of
from ..services import chat, reactions, reads
from ..services.tokens import session_from_token
from . import context, joining, notify, sessions, throttle
from .presence import SocketKey

log = logging.getLogger(__name__)


def ok(data: Any = None) -> dict[str, Any]:
    return {"ok": True, "data": data}


def _token(auth: Any, environ: dict[str, Any]) -> Any:
    if isinstance(auth, dict) and auth.get("token"):
        return auth["token"]
    return environ.get("HTTP_AUTHORIZATION")


def _task_payload(args: tuple[Any, ...]) -> dict[str, Any]:
    """`join_task` and `leave_task` take a bare task id, as the web frontend sends it, or an object."""
    data = args[0] if args else None
    return data if isinstance(data, dict) else {"taskId": data}


def _payload(args: tuple[Any, ...]) -> Any:
    return args[0] if args else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _socket() -> SocketKey:
    key = context.socket()
    assert key is not None, "only called while a socket event is handled"
    return key


class TasksNamespace(Namespace):
    """The task chat's events. Mounted at `/tasks`, and at `/` for the web frontend."""

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Every event runs in an app context only (see context.py), not in the Flask
        request context of the handshake that Flask-SocketIO would build: what that
        costs is not worth paying per chat message, nor per connect. Connect reads the
        handshake's Authorization header from the environ itself."""
        handler = getattr(self, f"on_{event}", None)
        if handler is None:
            return None
        sid, *payload = args
        environ = self.socketio.server.get_environ(sid, namespace=self.namespace)
        if not environ:
            return None  # a socket this server no longer knows, as Flask-SocketIO ignores it
        # The socket is named here, not read from any request: a disconnect can run inside
        # another socket's event (Engine.IO closes a socket whose ping went unanswered when
        # a broadcast reaches it), and must act on the socket that goes.
        with environ["flask.app"].app_context(), context.handling(self.namespace, sid, event):
            try:
                return handler(*payload)
            except ConnectionRefusedError:
                raise  # python-socketio refuses the connection with it
            except Exception as exc:  # noqa: BLE001 (any failure is the event's error answer)
                return handle_error(exc)

    def _actor(self, kind: str) -> Actor:
        """Every event starts here: the socket's token must still be good, and the
        user within the rate limit of this kind of event."""
        actor = sessions.check(_socket())
        throttle.check(actor, kind)
        return actor

    def on_connect(self, environ: dict[str, Any], auth: Any = None) -> None:
        """python-socketio passes the handshake's WSGI environ, then the client's auth."""
        if auth is not None and not isinstance(auth, dict):
            raise ConnectionRefusedError("Authentication error: auth must be an object", {"code": "auth_required"})
        try:
            session = session_from_token(_token(auth, environ))
        except AuthError as err:
            raise ConnectionRefusedError(err.message, {"code": err.code}) from None
        if not sessions.opened(_socket(), session):
            refused = TooManyConnections()
            raise ConnectionRefusedError(refused.message, {"code": refused.code})

    def on_refresh_token(self, *args: Any) -> dict[str, Any]:
        """Renew in place: a new access token of the same user, before the old one
        expires; the socket keeps its rooms."""
        actor = self._actor("other")
        token = load(RefreshTokenIn, _payload(args))["token"]
        session = sessions.renew(_socket(), actor, token)
        return ok({"expiresAt": _iso(session.expires_at)})

    def on_disconnect(self, reason: Any = None) -> None:  # noqa: ARG002 (python-socketio passes the reason)
        notify.disconnected(_socket())

    def on_join_task(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("joins")
        data = load(JoinTaskIn, _task_payload(args))
        joined, online = joining.join(actor, _socket(), data["task_id"], data["last_message_id"])
        caught = joined.catch_up
        return ok({
            "taskId": data["task_id"], "role": joined.role, "permissions": permissions_of(joined.role),
            "online": online, "unreadCount": joined.unread_count,
            "missed": [message_wire(m, actor.id) for m in caught.missed], "hasMore": caught.has_more,
            "updated": [message_wire(m, actor.id) for m in caught.updated], "updatedHasMore": caught.updated_has_more,
        })

    def on_leave_task(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("joins")
        task_id = load(TaskRef, _task_payload(args))["task_id"]
        joining.leave(actor, _socket(), task_id)
        return ok({"taskId": task_id})

    def on_send_message(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("messages")
        data = load(SendMessageIn, _payload(args))
        task_id = data.pop("task_id")
        sent = chat.send_message(actor, task_id, **data)
        return ok(dict(message_wire(sent.message, actor.id), duplicate=sent.duplicate))

    def on_edit_message(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("messages")
        data = load(EditMessageIn, _payload(args))
        return ok(message_wire(chat.edit_message(actor, data["message_id"], data["message"]), actor.id))

    def on_delete_message(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("messages")
        data = load(MessageRef, _payload(args))
        return ok(message_wire(chat.delete_message(actor, data["message_id"]), actor.id))

    def on_add_reaction(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("messages")
        data = load(ReactionIn, _payload(args))
        return ok(message_wire(reactions.add_reaction(actor, data["message_id"], data["emoji"]), actor.id))

    def on_remove_reaction(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("messages")
        data = load(ReactionIn, _payload(args))
        return ok(message_wire(reactions.remove_reaction(actor, data["message_id"], data["emoji"]), actor.id))

    def on_mark_read(self, *args: Any) -> dict[str, Any]:
        actor = self._actor("other")
        data = load(MarkReadIn, _payload(args))
        state = reads.mark_read(actor, data["task_id"], data["message_id"])
        return ok({"taskId": state.task_id, "lastReadId": state.last_read_id, "unreadCount": state.unread_count})

    def on_typing_start(self, *args: Any) -> dict[str, Any]:
        return self._typing(args, started=True)

    def on_typing_stop(self, *args: Any) -> dict[str, Any]:
        return self._typing(args, started=False)

    def _typing(self, args: tuple[Any, ...], started: bool) -> dict[str, Any]:
        actor = self._actor("typing")
        task_id = load(TaskRef, _payload(args))["task_id"]
        joining.typing(actor, _socket(), task_id, started)
        return ok({"taskId": task_id})


def handle_error(exc: Exception) -> dict[str, Any]:
    """Any failure of an event: the ack, and the `error` event the web frontend listens to."""
    event = context.event_name()
    err = as_app_error(exc)
    if isinstance(err, Unavailable):
        log.warning("socket event %s: database unavailable (%s)", event, type(exc).__name__)
    elif err is not exc:
        log.error("socket event %s failed", event, exc_info=exc)
    exc = err
    if event == "connect":
        # A connect handler that fails refuses the connection; it never half-opens it.
        raise ConnectionRefusedError(exc.message, {"code": exc.code})
    error = exc.to_dict()
    notify.error_to(_socket(), error)
    if isinstance(exc, RateLimited):
        throttle.refused(_socket())
    return {"ok": False, "error": error}
