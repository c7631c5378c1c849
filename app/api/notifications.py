"""The user's stored notifications (mentions)."""
from __future__ import annotations

from flask_smorest import Blueprint

from ..schemas.inputs import NotificationArgs, NotificationsReadIn
from ..schemas.outputs import NotificationPageOut, NotificationsReadOut
from ..services import notifications
from . import acting
from .openapi import token_required

blp = Blueprint("notifications", __name__, url_prefix="/api/notifications", description="Notifications")


@blp.get("")
@token_required()
@blp.arguments(NotificationArgs, location="query")
@blp.response(200, NotificationPageOut)
def list_notifications(args):
    """Unread first, then read; newest first within each."""
    return notifications.list_notifications(acting(), **args)


@blp.post("/read")
@token_required()
@blp.arguments(NotificationsReadIn)
@blp.response(200, NotificationsReadOut)
def mark_read(data):
    """`{"ids": [...]}`: those of the user's notifications; `{"all": true}`: every one."""
    return notifications.mark_read(acting(), data.get("ids"), everything=data.get("all_", False))
