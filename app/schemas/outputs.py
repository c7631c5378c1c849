"""The output schemas: models shaped into the camelCase JSON both doors send.

`message_wire` and `reaction_summary` write the message format as plain functions,
for the socket events that carry messages (and the room broadcasts of
app/realtime/notify.py), at a fraction of marshmallow's cost.

Whose reactions a message marks `me` is the caller's to say: an argument of
`message_wire`, and `seen_by(...)` around a dump of `MessageOut`.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_dump, pre_dump
from marshmallow.experimental.context import Context

from ..models import COMMENTING_ROLES, EDITING_ROLES, MANAGING_ROLES
from ..services.attachments import url_of
from .base import CamelSchema
from .fields import UtcDateTime, utc_iso


# Who sees an email: UserOut is the user's own account (register, login, /me), and
# MemberUserOut is a member of a task, shown only to the members of that task (its
# member list, the answers and `member_changed` events of its member routes; a
# `removed` event reaches members who shared the task with them until that moment).
# Every other user object (message authors, reply previews, notifications, presence)
# has names and ids only.
class UserOut(CamelSchema):
    id = fields.Integer()
    email = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    created_at = UtcDateTime()


class MemberUserOut(CamelSchema):
    id = fields.Integer()
    email = fields.String()
    first_name = fields.String()
    last_name = fields.String()


class AuthorOut(CamelSchema):
    id = fields.Integer()
    first_name = fields.String()
    last_name = fields.String()


def permissions_of(role: str) -> dict[str, bool]:
    """What a member's role lets them do, as flags (the join ack, `PermissionsOut`)."""
    return {
        "canRead": True,
        "canComment": role in COMMENTING_ROLES,
        "canEdit": role in EDITING_ROLES,
        "canManageMembers": role in MANAGING_ROLES,
    }


class PermissionsOut(CamelSchema):
    canRead = fields.Boolean()
    canComment = fields.Boolean()
    canEdit = fields.Boolean()
    canManageMembers = fields.Boolean()


class RolePermissions(fields.Nested):
    """`PermissionsOut` of the object's `role`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(PermissionsOut, **kwargs)

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> dict[str, bool]:  # noqa: ARG002 (marshmallow's signature)
        return permissions_of(obj.role)


class TaskOut(CamelSchema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    status = fields.String()
    created_by = fields.Integer(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class MyTaskOut(CamelSchema):
    """A task as one member sees it (`tasks.MyTask`): their own role, permissions
    and unread count."""

    id = fields.Integer(attribute="task.id")
    title = fields.String(attribute="task.title")
    description = fields.String(attribute="task.description")
    status = fields.String(attribute="task.status")
    created_by = fields.Integer(attribute="task.created_by", allow_none=True)
    created_at = UtcDateTime(attribute="task.created_at")
    updated_at = UtcDateTime(attribute="task.updated_at")
    role = fields.String()
    permissions = RolePermissions()
    unread_count = fields.Integer()

    @post_dump
    def _uncounted(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("unreadCount", 0) is None:  # not counted (a create, an update)
            del data["unreadCount"]
        return data


class MemberOut(CamelSchema):
    task_id = fields.Integer()
    user_id = fields.Integer()
    role = fields.String()
    permissions = RolePermissions()
    created_at = UtcDateTime()
    user = fields.Nested(MemberUserOut)


class AttachmentOut(CamelSchema):
    id = fields.Integer()
    name = fields.String()
    size = fields.Integer()
    mime_type = fields.String()
    url = fields.String()

    @pre_dump
    def _with_url(self, attachment: Any, **_kwargs: Any) -> dict[str, Any]:
        return {"id": attachment.id, "name": attachment.name, "size": attachment.size,
                "mime_type": attachment.mime_type, "url": url_of(attachment)}


class ReplyPreviewOut(CamelSchema):
    """The parent of a reply, enough to draw the quote above it."""

    message_id = fields.Integer(attribute="id")
    user_id = fields.Integer(allow_none=True)
    user_name = fields.Function(lambda m: m.user.display_name if m.user else None)
    excerpt = fields.Function(lambda m: m.excerpt)
    deleted = fields.Boolean()


def seen_by(viewer_id: int | None) -> Context:
    """The context to dump messages in (`with seen_by(actor.id): ...`): the viewer whose
    `reactions[].me` every `MessageOut` dumped within shows. None leaves `me` out, as
    room broadcasts do, since one payload goes to everybody. It is marshmallow's own
    dump context, a context variable: it reaches the messages nested in a page too."""
    return Context({"viewer_id": viewer_id})


def _viewer() -> int | None:
    context = Context.get(None)
    if not isinstance(context, dict) or "viewer_id" not in context:
        raise RuntimeError("MessageOut dumped outside seen_by(): whose reactions are `me`?")
    return context["viewer_id"]


class MessageOut(CamelSchema):
    """A message, or the tombstone of a deleted one (`deleted: true`, `message: null`).

    `reactions[].me` is relative to a viewer, whom the caller names by dumping
    within `seen_by` (REST routes: `seen_by_requester` of app/api); a dump that
    names no viewer fails rather than leave `me` out unasked."""

    id = fields.Integer()
    task_id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    message = fields.Function(lambda m: None if m.deleted else m.message, allow_none=True)
    attachments = fields.List(fields.Raw())
    reply_to = fields.Integer(allow_none=True)
    reply_preview = fields.Nested(ReplyPreviewOut, attribute="parent", allow_none=True)
    mentions = fields.List(fields.Integer())
    reactions = fields.Method("_reactions")
    client_id = fields.String(allow_none=True)
    previous_id = fields.Integer(allow_none=True)
    version = fields.Integer()
    created_at = UtcDateTime()
    edited_at = UtcDateTime(allow_none=True)
    deleted = fields.Boolean()
    deleted_at = UtcDateTime(allow_none=True)
    user = fields.Nested(AuthorOut, allow_none=True)

    def _reactions(self, message: Any) -> list[dict[str, Any]]:
        return reaction_summary(message.reactions, _viewer())


def reaction_summary(reactions: list[Any], viewer_id: int | None = None) -> list[dict[str, Any]]:
    """[{emoji, count, userIds, me?}] in the order each emoji was first used."""
    grouped: dict[str, list[int]] = {}
    for reaction in reactions:
        grouped.setdefault(reaction.emoji, []).append(reaction.user_id)
    summary = []
    for emoji, user_ids in grouped.items():
        entry: dict[str, Any] = {"emoji": emoji, "count": len(user_ids), "userIds": user_ids}
        if viewer_id is not None:
            entry["me"] = viewer_id in user_ids
        summary.append(entry)
    return summary


def message_wire(message: Any, viewer_id: int | None = None) -> dict[str, Any]:
    """`MessageOut` as a plain function, for the socket events that carry a message
    (every `new_message` and its ack): the same keys and values, in the same order,
    at a fraction of marshmallow's cost. `tests/test_message_wire.py` holds the two
    equal. Reads only attributes, so a row just stored without the ORM will do."""
    deleted = message.deleted
    parent = message.parent
    user = message.user
    return {
        "id": message.id,
        "taskId": message.task_id,
        "userId": message.user_id,
        "message": None if deleted else message.message,
        "attachments": list(message.attachments),
        "replyTo": message.reply_to,
        "replyPreview": None if parent is None else {
            "messageId": parent.id,
            "userId": parent.user_id,
            "userName": parent.user.display_name if parent.user else None,
            "excerpt": parent.excerpt,
            "deleted": parent.deleted,
        },
        "mentions": list(message.mentions),
        "reactions": reaction_summary(message.reactions, viewer_id),
        "clientId": message.client_id,
        "previousId": message.previous_id,
        "version": message.version,
        "createdAt": utc_iso(message.created_at),
        "editedAt": utc_iso(message.edited_at),
        "deleted": deleted,
        "deletedAt": utc_iso(message.deleted_at),
        "user": None if user is None else {"id": user.id, "firstName": user.first_name, "lastName": user.last_name},
    }


class SentMessageOut(MessageOut):
    """The answer to a send (`chat.Sent`): its message, and whether it was a retry."""

    duplicate = fields.Boolean(metadata={"description": "true when a retry found the message stored first"})

    @pre_dump
    def _message_of(self, sent: Any, **_kwargs: Any) -> Any:
        return _SentMessage(sent.message, sent.duplicate)


class _SentMessage:
    """A message's attributes, and `duplicate`."""

    def __init__(self, message: Any, duplicate: bool) -> None:
        self._message = message
        self.duplicate = duplicate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)


class MessageVersionOut(CamelSchema):
    message = fields.String()
    written_at = UtcDateTime()
    replaced_at = UtcDateTime(allow_none=True)


class MessageHistoryOut(CamelSchema):
    message_id = fields.Integer()
    versions = fields.List(fields.Nested(MessageVersionOut),
                           metadata={"description": "oldest first; the last is current"})


class MessagePageOut(CamelSchema):
    items = fields.List(fields.Nested(MessageOut))
    has_more = fields.Boolean()
    has_more_before = fields.Boolean(allow_none=True)
    has_more_after = fields.Boolean(allow_none=True)


class ReadStateOut(CamelSchema):
    task_id = fields.Integer()
    last_read_id = fields.Integer()
    unread_count = fields.Integer()


class NotificationFromOut(CamelSchema):
    user_id = fields.Integer(attribute="id")
    user_name = fields.String(attribute="display_name")


class NotificationOut(CamelSchema):
    id = fields.Integer()
    type = fields.String()
    task_id = fields.Integer()
    message_id = fields.Integer(allow_none=True)
    from_ = fields.Nested(NotificationFromOut, attribute="from_user", allow_none=True)
    created_at = UtcDateTime()
    read_at = UtcDateTime(allow_none=True)
    read = fields.Function(lambda n: n.read_at is not None)


class NotificationPageOut(CamelSchema):
    items = fields.List(fields.Nested(NotificationOut))
    has_more = fields.Boolean()
    unread_count = fields.Integer()


class NotificationsReadOut(CamelSchema):
    updated = fields.Integer()
    unread_count = fields.Integer()


class ActivityOut(CamelSchema):
    id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    action = fields.String()
    entity_type = fields.String()
    entity_id = fields.Integer(allow_none=True)
    task_id = fields.Integer(allow_none=True)
    old_values = fields.Raw(allow_none=True)
    new_values = fields.Raw(allow_none=True)
    description = fields.String(allow_none=True)
    created_at = UtcDateTime()


class AuthOut(CamelSchema):
    user = fields.Nested(UserOut)
    access_token = fields.String()
    refresh_token = fields.String()


class AccessTokenOut(CamelSchema):
    access_token = fields.String()


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """`{"items": [...], "hasMore": bool}`, the shape of every list."""
    return CamelSchema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "has_more": fields.Boolean()},
        name=f"{item_schema.__name__.removesuffix('Out')}Page",
    )


class ErrorBody(CamelSchema):
    code = fields.String(metadata={"description": "stable, machine-readable"})
    message = fields.String()
    details = fields.Raw(metadata={"description": "field errors, for validation_error"})
    retry_after = fields.Integer(
        metadata={"description": "rate_limited (429): whole seconds to wait, at least 1, "
                                         "as in the Retry-After header"},
    )
    retryable = fields.Boolean(
        metadata={"description": "unavailable (503): always true; nothing was stored, send the request again"},
    )


class ErrorOut(CamelSchema):
    """The one error shape, REST and Socket.IO alike."""

    error = fields.Nested(ErrorBody)


class HealthOut(CamelSchema):
    status = fields.String()
    database = fields.String()


notification_out = NotificationOut()
member_out = MemberOut()
task_out = TaskOut()
