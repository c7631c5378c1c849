"""The Socket.IO side: one namespace class, mounted where the clients look for it."""
from __future__ import annotations

from flask import Flask

from .. import patches
from ..extensions import socketio
from . import hardening, notify, throttle
from .namespace import TasksNamespace, handle_error
from .presence import Registry


def register_namespaces(app: Flask) -> None:
    namespaces = ["/tasks"] + (["/"] if app.config["SOCKETIO_ROOT_NAMESPACE"] else [])
    app.config["SOCKETIO_NAMESPACES"] = namespaces
    app.extensions["taskchat_presence"] = Registry()
    notify.subscribe()
    throttle.init_app(app)
    for name in namespaces:
        socketio.on_namespace(TasksNamespace(name))
    socketio.on_error_default(handle_error)
    # After the namespaces: the filter allows only their events.
    hardening.install(socketio.server)
    patches.write_frames_directly(socketio.server.eio)
    patches.index_rooms(socketio.server.manager)
