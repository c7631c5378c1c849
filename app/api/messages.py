"""The task chat over REST, and the task's activity log. Same services, same
broadcasts as the socket events."""
from __future__ import annotations

from flask_smorest import Blueprint

from ..schemas.inputs import EditBodyIn, HistoryArgs, MarkReadBodyIn, MessageBodyIn, PageArgs, ReactionBodyIn, load
from ..schemas.outputs import (
    ActivityOut, MessageHistoryOut, MessageOut, MessagePageOut, ReadStateOut, SentMessageOut, page_of,
)
from ..services import activity, chat, history, reactions, reads
from . import acting, seen_by_requester
from .openapi import token_required

blp = Blueprint("messages", __name__, url_prefix="/api/tasks/<id:task_id>", description="Task chat and activity")


@blp.get("/messages")
@token_required()
@seen_by_requester
@blp.arguments(HistoryArgs, location="query")
@blp.response(200, MessagePageOut)
def list_messages(args, task_id):
    """At most one of `before`, `after` and `around` (422 otherwise). No cursor or `before`:
    newest first. `after`: oldest first. `around`: a message and its neighbours, oldest
    first. Deleted messages are tombstones."""
    return history.history(acting(), task_id, **args)


@blp.post("/messages")
@token_required()
@seen_by_requester
@blp.arguments(MessageBodyIn)
@blp.response(201, SentMessageOut)
@blp.alt_response(200, schema=SentMessageOut, description="A retry: the message stored first, `duplicate: true`")
def send_message(data, task_id):
    """The room gets `new_message`. With a `clientId` seen before: 200 and the first message."""
    sent = chat.send_message(acting(), task_id, **data)
    return (sent, 200) if sent.duplicate else sent


@blp.patch("/messages/<id:message_id>")
@token_required()
@seen_by_requester
@blp.arguments(EditBodyIn)
@blp.response(200, MessageOut)
def edit_message(data, task_id, message_id):
    """The author only; the room gets `message_updated`."""
    return chat.edit_message(acting(), message_id, data["message"], task_id=task_id)


@blp.delete("/messages/<id:message_id>")
@token_required()
@seen_by_requester
@blp.response(200, MessageOut)
def delete_message(task_id, message_id):
    """The author or a task owner; answers the tombstone. The room gets `message_deleted`."""
    return chat.delete_message(acting(), message_id, task_id=task_id)


@blp.get("/messages/<id:message_id>/history")
@token_required()
@blp.response(200, MessageHistoryOut)
def message_versions(task_id, message_id):
    """Every version of the message, oldest first; the last is the current text."""
    return history.versions(acting(), message_id, task_id=task_id)


# The path's emoji, documented with the rules of the body's. Any emoji that can be added
# can be named here: percent-encoded as one path segment (encodeURIComponent), or with its
# `/` as they are. (An emoji "." or ".." cannot be carried by a URL at all, clients drop
# such segments: it is refused when added.)
_EMOJI_IN_PATH = {
    "in": "path", "name": "emoji", "required": True,
    "description": "The reaction's emoji, percent-encoded (encodeURIComponent); a `/` may also be sent as is.",
    # The field is a Token (app/schemas/fields.py), which has `openapi`; the schema types it as any Field.
    "schema": {"type": "string", **ReactionBodyIn().fields["emoji"].openapi()},  # type: ignore[attr-defined]
}


@blp.post("/messages/<id:message_id>/reactions")
@token_required()
@seen_by_requester
@blp.arguments(ReactionBodyIn)
@blp.response(200, MessageOut)
def add_reaction(data, task_id, message_id):
    return reactions.add_reaction(acting(), message_id, data["emoji"], task_id=task_id)


@blp.delete("/messages/<id:message_id>/reactions/<rest:emoji>", parameters=[_EMOJI_IN_PATH])
@token_required()
@seen_by_requester
@blp.response(200, MessageOut)
def remove_reaction(task_id, message_id, emoji):
    """The emoji in the path, held to the same rules as in a body."""
    emoji = load(ReactionBodyIn, {"emoji": emoji})["emoji"]
    return reactions.remove_reaction(acting(), message_id, emoji, task_id=task_id)


@blp.post("/read")
@token_required()
@blp.arguments(MarkReadBodyIn)
@blp.response(200, ReadStateOut)
def mark_read(data, task_id):
    """Read up to `messageId`; the user's sockets get `read_updated`."""
    return reads.mark_read(acting(), task_id, data["message_id"])


@blp.get("/activity")
@token_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ActivityOut))
def list_activity(args, task_id):
    return activity.task_activity(acting(), task_id, **args)
