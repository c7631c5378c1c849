"""REST blueprints (flask-smorest): thin routes that parse, call a service, shape the answer."""
from __future__ import annotations

from flask import Flask, g
from flask_jwt_extended import current_user
from werkzeug.routing import IntegerConverter

from ..auth import Actor
from ..extensions import api
from ..schemas import MAX_DB_INT


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 to 2**31-1, bounded by the regex itself.

    werkzeug checks `int(min=, max=)` only after it has matched the method, so an
    out-of-range id answered PATCH/DELETE with 405 instead of 404; a URL this regex
    refuses matches no rule at all, whatever the method."""

    regex = (
        r"(?:[1-9]\d{0,8}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}"
        r"|21474[0-7]\d{4}|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d|214748364[0-7])"
    )

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's name)
        super().__init__(map, min=1, max=MAX_DB_INT)


def acting() -> Actor:
    """The user behind the request's access token (after `jwt_required`). They
    are also the viewer whose `reactions[].me` the answer shows."""
    g.viewer_id = current_user.id
    return Actor.of(current_user)


def register_api(app: Flask) -> None:
    from . import attachments, auth, health, members, messages, notifications, tasks

    app.url_map.converters["id"] = IdConverter
    for module in (auth, tasks, members, messages, attachments, notifications, health):
        api.register_blueprint(module.blp)
