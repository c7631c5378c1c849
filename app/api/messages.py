"""The task chat over REST, and the task's activity log."""
from __future__ import annotations

from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint

from ..schemas import ActivityOut, MessageBodyIn, MessageOut, PageArgs, page_of
from ..services import activity, chat
from . import acting

blp = Blueprint("messages", __name__, url_prefix="/api/tasks/<id:task_id>", description="Task chat and activity")


@blp.get("/messages")
@jwt_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(MessageOut))
def list_messages(args, task_id):
    """Newest first; pass the last id you have as `before` for the next page."""
    return chat.history(acting(), task_id, **args)


@blp.post("/messages")
@jwt_required()
@blp.arguments(MessageBodyIn)
@blp.response(201, MessageOut)
def send_message(data, task_id):
    """The same service as the socket's `send_message`: the room gets `new_message`."""
    return chat.send_message(acting(), task_id, **data)


@blp.get("/activity")
@jwt_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ActivityOut))
def list_activity(args, task_id):
    return activity.task_activity(acting(), task_id, **args)
