"""REST blueprints (flask-smorest): thin routes that parse, call a service, shape the answer."""
from __future__ import annotations

from flask import Flask, g
from flask_jwt_extended import current_user
from werkzeug.routing import IntegerConverter, PathConverter

from .. import patches
from ..auth import Actor
from ..extensions import api
from ..schemas import ID_DIGITS, MAX_DB_INT

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
    """The user behind the request's access token (after `token_required`). They
    are also the viewer whose `reactions[].me` the answer shows."""
    g.viewer_id = current_user.id
    return Actor.of(current_user)


def register_api(app: Flask) -> None:
    from . import attachments, auth, health, members, messages, notifications, tasks

    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["rest"] = RestOfPathConverter
    for module in (auth, tasks, members, messages, attachments, notifications, health):
        api.register_blueprint(module.blp)
