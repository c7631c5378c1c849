"""REST blueprints (flask-smorest): thin routes that parse, call a service, shape the answer."""
from __future__ import annotations

from flask import Flask
from flask_jwt_extended import current_user

from ..auth import Actor
from ..extensions import api


def acting() -> Actor:
    """The user behind the request's access token (after `jwt_required`)."""
    return Actor.of(current_user)


def register_api(app: Flask) -> None:
    from . import auth, health, members, messages, tasks

    for module in (auth, tasks, members, messages):
        api.register_blueprint(module.blp)
    app.register_blueprint(health.bp)
