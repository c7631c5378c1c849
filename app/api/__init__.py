"""REST blueprints (flask-smorest): thin routes that parse, call a service, shape the answer."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask
from flask_jwt_extended import current_user
from werkzeug.routing import IntegerConverter, PathConverter

from .. import patches
from ..actor import Actor
from ..extensions import api
from ..schemas.fields import ID_DIGITS, MAX_DB_INT
from ..schemas.outputs import seen_by
from ..services import accounts

# flask-smorest binds a route's parser when the route is decorated, so its parser is
# replaced here, before any route module is imported (they all import this package first).
patches.install_json_body_parser()


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 to 2**31-1, bounded by the regex itself.

    werkzeug checks `int(min=, max=)` only after it has matched the method, so an
    out-of-range id answered PATCH/DELETE with 405 instead of 404; a URL this regex
    refuses matches no rule at all, whatever the method."""

    regex = ID_DIGITS

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's name)
        super().__init__(map, min=1, max=MAX_DB_INT)


class RestOfPathConverter(PathConverter):
    """`<rest:name>`: everything after the rule's last slash, slashes included, as
    decoded. The server decodes the path before routing, so `%2F` arrives as `/`,
    and werkzeug's `path` refuses a value that starts with `/` (it redirects to
    the URL with the slashes merged): an emoji like "/" or "/x" could be added
    as a reaction but never named in a URL. Any character, newline included:
    what the value may hold is for the route's validation to say (a 422), not a 404."""

    regex = r"[\s\S]+"
    # Said outright: werkzeug infers it from a "/" in the regex, and this one has none.
    part_isolating = False


def acting() -> Actor:
    """The user behind the request's access token (after `token_required`)."""
    return accounts.actor_of(current_user)


def seen_by_requester(view: Callable) -> Callable:
    """For a route whose answer holds messages, placed right below `token_required`:
    the answer is dumped (by `blp.response`, within) as the requester sees it, their
    own reactions marked `me`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with seen_by(current_user.id):
            return view(*args, **kwargs)

    return wrapper


def register_api(app: Flask) -> None:
    from . import attachments, auth, health, members, messages, notifications, tasks

    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["rest"] = RestOfPathConverter
    for module in (auth, tasks, members, messages, attachments, notifications, health):
        api.register_blueprint(module.blp)
