"""Marshmallow schemas: the one definition of every payload.

Input schemas validate REST bodies (through flask-smorest, which also writes
the OpenAPI document from them) and socket payloads (through `load`) alike.
Output schemas shape models into the camelCase JSON both doors send.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import g
from marshmallow import EXCLUDE, Schema, fields, pre_dump, pre_load, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from .errors import ValidationError
from .models import MAX_DB_INT, ROLES, TASK_STATUSES

MAX_MESSAGE_LENGTH = 4000
MAX_ATTACHMENTS = 10
MAX_MENTIONS = 50
MAX_CLIENT_ID_LENGTH = 64
MAX_EMOJI_LENGTH = 32
MAX_TOKEN_LENGTH = 4096
MAX_NOTIFICATION_IDS = 500

# 1 to 2**31-1 in decimal, no leading zero: the URL converter's regex (app/api/__init__.py) and
# the document's string form of an id. [0-9], not \d: a JSON Schema reader may take \d for
# any Unicode digit (Python's re does), and Id takes ASCII digits only.
ID_DIGITS = (
    r"(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])"
)
# What str.strip() removes (str.isspace), spelled out for the document's patterns: JSON Schema's
# `\s` (ECMA-262) is another set (it lacks U+001C..U+001F and U+0085, and has U+FEFF).
_SPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class Id(fields.Field):
    """A positive integer id. Accepts JSON integers and strings of digits (the
    original frontend sends ids as it got them, sometimes as strings); refuses
    booleans, floats, and anything a database integer cannot hold."""

    default_error_messages = {"invalid": "Must be a positive integer id."}

    def __init__(self, *, minimum: int = 1, **kwargs: Any):
        assert minimum in (0, 1), "the documented string form knows only 0 and 1 as minimum"
        self.minimum = minimum
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """The document's word for it: either form, each with the same bounds."""
        digits = f"^0*{ID_DIGITS}$" if self.minimum else f"^0*{ID_DIGITS}?$"
        return {"anyOf": [
            {"type": "integer", "minimum": self.minimum, "maximum": MAX_DB_INT},
            {"type": "string", "pattern": digits, "minLength": 1, "maxLength": 19,
             "description": "the same id as a string of ASCII digits"},
        ]}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        # ASCII digits only, as sent: str.isdigit() is also true for "²" (which int()
        # refuses: a crash) and "١٢" (which int() reads as 12), and spaces are no id.
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            value = int(value)
        if not isinstance(value, int) or not self.minimum <= value <= MAX_DB_INT:
            raise self.make_error("invalid")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> int | None:
        return value


class BoundedList(fields.List):
    """A list whose length is checked before its items: 30 000 bad items would
    otherwise give 30 000 error messages, an answer of megabytes."""

    def __init__(self, inner: fields.Field, *, max_length: int, **kwargs: Any):
        self.max_length = max_length
        super().__init__(inner, validate=validate.Length(max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list) and len(value) > self.max_length:
            raise SchemaError(f"Longer than maximum length {self.max_length}.")
        return super()._deserialize(value, attr, data, **kwargs)


class Text(fields.String):
    """A string, trimmed, then checked for length."""

    def __init__(self, *, max_length: int, allow_blank: bool = False, **kwargs: Any):
        assert max_length >= 2
        self.max_length, self.allow_blank = max_length, allow_blank
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """The trimmed text's rules as one pattern: blanks around, then (unless blank text is
        allowed) 1 to max_length characters that start and end with a non-blank; no NUL.
        maxLength would be wrong: the blanks around do not count."""
        text = f"[^{_SPACE}\\u0000](?:[^\\u0000]{{0,{self.max_length - 2}}}[^{_SPACE}\\u0000])?"
        if self.allow_blank:
            text = f"(?:{text})?"
        blank = "may be blank" if self.allow_blank else "not blank"
        return {
            "pattern": f"^[{_SPACE}]*{text}[{_SPACE}]*$",
            "description": f"trimmed, then {blank} and at most {self.max_length} characters; no NUL character",
        }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _clean_text(super()._deserialize(value, attr, data, **kwargs), self.max_length, self.allow_blank)


def _clean_text(text: str, max_length: int, allow_blank: bool = False) -> str:
    text = text.strip()
    if not text and not allow_blank:
        raise SchemaError("Must not be blank.")
    if len(text) > max_length:
        raise SchemaError(f"Must be at most {max_length} characters.")
    _refuse_unstorable(text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(text: str) -> None:
    """A lone surrogate (JSON "\\ud800") is no character: it cannot be encoded as
    UTF-8, so neither database can store it and no hash can read it."""
    if _SURROGATE.search(text):
        raise SchemaError("Must not contain lone surrogates (invalid Unicode).")


def _refuse_unstorable(text: str) -> None:
    """PostgreSQL stores no NUL character in text or JSONB, and SQLite would: refused
    as bad input on both, rather than a database crash on one."""
    if "\x00" in text:
        raise SchemaError("Must not contain the NUL character.")
    _refuse_surrogates(text)


class Token(fields.String):
    """A short client-made string: a clientId or an emoji. Not trimmed, since
    it is compared as sent; control characters are refused."""

    def __init__(self, *, max_length: int, **kwargs: Any):
        self.max_length = max_length
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        """Not blank (one non-blank character at least), no control character."""
        control = r"\u0000-\u001f\u007f"
        return {
            "pattern": f"^[^{control}]*[^{_SPACE}{control}][^{control}]*$",
            "minLength": 1, "maxLength": self.max_length,
        }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _clean_token(super()._deserialize(value, attr, data, **kwargs), self.max_length)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _clean_token(text: str, max_length: int) -> str:
    if not text.strip():
        raise SchemaError("Must not be blank.")
    if len(text) > max_length:
        raise SchemaError(f"Must be at most {max_length} characters.")
    if _CONTROL.search(text):
        raise SchemaError("Must not contain control characters.")
    _refuse_surrogates(text)
    return text


class JsonBoolean(fields.Boolean):
    """true or false as JSON has them; marshmallow's Boolean also takes 1, "yes", "on"..."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC with a `Z`; SQLite hands back naive datetimes that are UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return utc_iso(value)


class InputSchema(Schema):
    """Base of every input: unknown keys are ignored, as the original ignored them."""

    # The message a socket client sees when this payload is refused.
    error_message = "Invalid request data"
    # Rules across fields, as the OpenAPI document states them (app/api/openapi.py adds them
    # to the schema's component); the schema's own validator enforces them.
    openapi_rules: dict[str, Any] = {}
    # What `load` tries first, if set: the schema's answer for the commonest payloads
    # at a fraction of marshmallow's cost, or None for marshmallow to decide (every
    # refusal, every less common form). `tests/test_schemas_quick.py` holds the two equal.
    quick: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None

    class Meta:
        unknown = EXCLUDE


_INSTANCES: dict[type[InputSchema], InputSchema] = {}


def _instance(schema: type[InputSchema]) -> InputSchema:
    """One instance per schema: making one copies and binds every field, which cost a
    socket event more than the validation itself. Loading keeps no state on it."""
    instance = _INSTANCES.get(schema)
    if instance is None:
        instance = _INSTANCES.setdefault(schema, schema())
    return instance


def load(schema: type[InputSchema], data: Any) -> dict[str, Any]:
    """Validate a socket payload (or any plain data) with the same schema REST uses."""
    if not isinstance(data, dict):
        raise ValidationError(schema.error_message, details={"_schema": ["Expected an object."]})
    if schema.quick is not None and (loaded := schema.quick(data)) is not None:
        return loaded
    try:
        return _instance(schema).load(data)
    except SchemaError as err:
        raise ValidationError(schema.error_message, details=err.messages) from None


# ---- auth -------------------------------------------------------------------
class Email(fields.Email):
    """An email address, surrounding spaces forgiven."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
            _refuse_unstorable(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Password(fields.String):
    """Any characters (it is only hashed, never stored), but real ones: a lone
    surrogate cannot be encoded for the hash."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        _refuse_surrogates(text)
        return text


class RegisterIn(InputSchema):
    email = Email(required=True, validate=validate.Length(max=254))
    password = Password(required=True, validate=validate.Length(min=10, max=256))
    first_name = Text(data_key="firstName", required=True, max_length=100)
    last_name = Text(data_key="lastName", required=True, max_length=100)


class LoginIn(InputSchema):
    email = Text(required=True, max_length=254)
    password = Password(required=True, validate=validate.Length(max=256))


# ---- tasks and members ------------------------------------------------------
class TaskCreateIn(InputSchema):
    title = Text(required=True, max_length=200)
    description = Text(max_length=10000, allow_blank=True, load_default="")
    status = fields.String(validate=validate.OneOf(TASK_STATUSES), load_default="todo")


def _at_least_one_of(*names: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [name]} for name in names]}


class TaskUpdateIn(InputSchema):
    """At least one field: a body that changes nothing is a mistake, not a no-op."""

    title = Text(max_length=200)
    description = Text(max_length=10000, allow_blank=True)
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))

    openapi_rules = _at_least_one_of("title", "description", "status")

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise SchemaError("Send at least one of title, description and status.", "_schema")


def refers_to(what: str) -> dict[str, Any]:
    """Field metadata for the document: a well-formed value must also name `what`, which only
    the database can tell; the server answers 422 validation_error (404 for a member's user)
    naming the field when it does not."""
    return {"x-refers-to": what}


class MemberAddIn(InputSchema):
    """Who to add, named by exactly one of `email` and `userId` (see services/directory.py)."""

    class Meta(InputSchema.Meta):
        description = (
            "Exactly one of email and userId, and the role. An unknown email, an unknown id and the id of "
            "someone who shares no task with you all get 404 not_found \"User not found\"."
        )
        exactly_one_of = ("email", "userId")  # enforced below

    email = Email(validate=validate.Length(max=254), metadata={
        "description": "the account's email, compared as login compares it (case and surrounding spaces aside); "
                       "exactly one of email and userId",
    })
    user_id = Id(data_key="userId", metadata={
        **refers_to("a user who shares a task with you"),
        "description": "the id of someone who already shares a task with you; exactly one of email and userId",
    })
    role = fields.String(required=True, validate=validate.OneOf(ROLES))

    openapi_rules = {"oneOf": [{"required": ["email"]}, {"required": ["userId"]}]}

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        keys = self.Meta.exactly_one_of
        attribute = {field.data_key or name: name for name, field in self.fields.items()}
        if sum(attribute[key] in data for key in keys) != 1:
            # Under both names: either one is the way to fix it.
            raise SchemaError(dict.fromkeys(keys, [f"Give exactly one of {' and '.join(keys)}."]))


class MemberUpdateIn(InputSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


# ---- chat -------------------------------------------------------------------
class RefreshTokenIn(InputSchema):
    error_message = "A new access token is required"
    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH))


class LogoutIn(InputSchema):
    error_message = "Invalid logout request"
    refresh_token = fields.String(
        data_key="refreshToken", validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH),
        metadata=refers_to("the refresh token of the same user"),
    )


class TaskRef(InputSchema):
    error_message = "Task ID is required"
    task_id = Id(data_key="taskId", required=True)


def _unique_ids(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


class MessageBodyIn(InputSchema):
    error_message = "Task ID and message are required"
    message = Text(required=True, max_length=MAX_MESSAGE_LENGTH)
    # Ids of files uploaded to the task by the sender (POST /api/tasks/<id>/attachments).
    # null reads as [] (see _null_lists), hence allow_none: the document says null is fine.
    attachments = BoundedList(
        Id(), max_length=MAX_ATTACHMENTS, allow_none=True, load_default=list,
        metadata=refers_to("files the sender uploaded to this task that no message has taken yet"),
    )
    reply_to = Id(data_key="replyTo", allow_none=True, load_default=None, metadata=refers_to("a message of this task"))
    client_id = Token(data_key="clientId", max_length=MAX_CLIENT_ID_LENGTH, allow_none=True, load_default=None)
    mentions = BoundedList(
        Id(), max_length=MAX_MENTIONS, allow_none=True, load_default=list, metadata=refers_to("members of this task"),
    )

    @pre_load
    def _null_lists(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The original treated a missing or null list as [].
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (k in ("attachments", "mentions") and v is None)}
        return data


def _none_or_empty_list(value: Any) -> bool:
    return value is None or (type(value) is list and not value)


class SendMessageIn(MessageBodyIn):
    """The socket's `send_message`: the REST body plus the task id."""

    task_id = Id(data_key="taskId", required=True)

    @staticmethod
    def quick(data: dict[str, Any]) -> dict[str, Any] | None:
        """A plain message (an integer task id, text, maybe a clientId; no reply,
        attachment or mention) as marshmallow would load it; else None."""
        task_id, message, client_id = data.get("taskId"), data.get("message"), data.get("clientId")
        if (type(task_id) is not int or not 1 <= task_id <= MAX_DB_INT or type(message) is not str
                or not (client_id is None or type(client_id) is str)
                or data.get("replyTo") is not None or not _none_or_empty_list(data.get("attachments"))
                or not _none_or_empty_list(data.get("mentions"))):
            return None
        try:
            message = _clean_text(message, MAX_MESSAGE_LENGTH)
            if client_id is not None:
                client_id = _clean_token(client_id, MAX_CLIENT_ID_LENGTH)
        except SchemaError:
            return None
        return {"message": message, "attachments": [], "reply_to": None, "client_id": client_id, "mentions": [],
                "task_id": task_id}


class JoinTaskIn(InputSchema):
    error_message = "Task ID is required"
    task_id = Id(data_key="taskId", required=True)
    # The newest message the client holds; 0 asks for everything from the start.
    last_message_id = Id(data_key="lastMessageId", minimum=0, allow_none=True, load_default=None)


class MessageRef(InputSchema):
    error_message = "Message ID is required"
    message_id = Id(data_key="messageId", required=True)


class EditBodyIn(InputSchema):
    error_message = "Message ID and message are required"
    message = Text(required=True, max_length=MAX_MESSAGE_LENGTH)


class EditMessageIn(EditBodyIn, MessageRef):
    pass


class ReactionBodyIn(InputSchema):
    error_message = "Message ID and emoji are required"
    emoji = Token(required=True, max_length=MAX_EMOJI_LENGTH)


class ReactionIn(ReactionBodyIn, MessageRef):
    pass


class MarkReadBodyIn(InputSchema):
    error_message = "Task ID and message ID are required"
    message_id = Id(data_key="messageId", required=True, metadata=refers_to("a message of this task"))


class MarkReadIn(MarkReadBodyIn):
    task_id = Id(data_key="taskId", required=True)


class PageArgs(InputSchema):
    before = Id(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class HistoryArgs(PageArgs):
    after = Id(minimum=0, load_default=None)
    around = Id(load_default=None)

    @validates_schema
    def _one_anchor(self, data: dict[str, Any], **kwargs: Any) -> None:
        if sum(data.get(k) is not None for k in ("before", "after", "around")) > 1:
            raise SchemaError("Use at most one of before, after and around.", "_schema")


class NotificationArgs(InputSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class NotificationsReadIn(InputSchema):
    """`{"ids": [...]}` marks those, `{"all": true}` every one; never both, never neither. An
    empty body used to mean "all", so a client that sent one by mistake lost every unread mark."""

    ids = BoundedList(Id(), max_length=MAX_NOTIFICATION_IDS)
    all_ = JsonBoolean(data_key="all", validate=validate.OneOf([True], error="Must be true; or send ids."))

    openapi_rules = {"oneOf": [{"required": ["ids"]}, {"required": ["all"]}]}

    @validates_schema
    def _ids_or_all(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("ids" in data) == ("all_" in data):
            raise SchemaError("Send either ids or all: true.", "_schema")


# ---- output -----------------------------------------------------------------
# Who sees an email: UserOut is the user's own account (register, login, /me), and
# MemberUserOut is a member of a task, shown only to the members of that task (its
# member list, the answers and `member_changed` events of its member routes; a
# `removed` event reaches members who shared the task with them until that moment).
# Every other user object (message authors, reply previews, notifications, presence)
# has names and ids only.
class UserOut(Schema):
    id = fields.Integer()
    email = fields.String()
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")
    created_at = UtcDateTime(data_key="createdAt")


class MemberUserOut(Schema):
    id = fields.Integer()
    email = fields.String()
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")


class AuthorOut(Schema):
    id = fields.Integer()
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")


class PermissionsOut(Schema):
    canRead = fields.Boolean()
    canComment = fields.Boolean()
    canEdit = fields.Boolean()
    canManageMembers = fields.Boolean()


class TaskOut(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    status = fields.String()
    created_by = fields.Integer(data_key="createdBy", allow_none=True)
    created_at = UtcDateTime(data_key="createdAt")
    updated_at = UtcDateTime(data_key="updatedAt")


class MyTaskOut(Schema):
    """A task as one member sees it: dumped from their membership row, so it
    carries their own role and permissions."""

    id = fields.Integer(attribute="task.id")
    title = fields.String(attribute="task.title")
    description = fields.String(attribute="task.description")
    status = fields.String(attribute="task.status")
    created_by = fields.Integer(attribute="task.created_by", data_key="createdBy", allow_none=True)
    created_at = UtcDateTime(attribute="task.created_at", data_key="createdAt")
    updated_at = UtcDateTime(attribute="task.updated_at", data_key="updatedAt")
    role = fields.String()
    permissions = fields.Nested(PermissionsOut)
    unread_count = fields.Integer(data_key="unreadCount")


class MemberOut(Schema):
    task_id = fields.Integer(data_key="taskId")
    user_id = fields.Integer(data_key="userId")
    role = fields.String()
    permissions = fields.Nested(PermissionsOut)
    created_at = UtcDateTime(data_key="createdAt")
    user = fields.Nested(MemberUserOut)


class AttachmentOut(Schema):
    id = fields.Integer()
    name = fields.String()
    size = fields.Integer()
    mime_type = fields.String(data_key="mimeType")
    url = fields.String()


class ReplyPreviewOut(Schema):
    """The parent of a reply, enough to draw the quote above it."""

    message_id = fields.Integer(attribute="id", data_key="messageId")
    user_id = fields.Integer(data_key="userId", allow_none=True)
    user_name = fields.Function(lambda m: m.user.display_name if m.user else None, data_key="userName")
    excerpt = fields.Function(lambda m: m.excerpt)
    deleted = fields.Boolean()


_VIEWER_OF_REQUEST = object()


class MessageOut(Schema):
    """A message, or the tombstone of a deleted one (`deleted: true`, `message: null`).

    `reactions[].me` is relative to a viewer: the requester by default (set by
    both doors in `g.viewer_id`). Room broadcasts use `viewer_id=None`, which
    leaves `me` out, since one payload goes to everybody."""

    id = fields.Integer()
    task_id = fields.Integer(data_key="taskId")
    user_id = fields.Integer(data_key="userId", allow_none=True)
    message = fields.Function(lambda m: None if m.deleted else m.message, allow_none=True)
    attachments = fields.List(fields.Raw())
    reply_to = fields.Integer(data_key="replyTo", allow_none=True)
    reply_preview = fields.Nested(ReplyPreviewOut, attribute="parent", data_key="replyPreview", allow_none=True)
    mentions = fields.List(fields.Integer())
    reactions = fields.Method("_reactions")
    client_id = fields.String(data_key="clientId", allow_none=True)
    previous_id = fields.Integer(data_key="previousId", allow_none=True)
    version = fields.Integer()
    created_at = UtcDateTime(data_key="createdAt")
    edited_at = UtcDateTime(data_key="editedAt", allow_none=True)
    deleted = fields.Boolean()
    deleted_at = UtcDateTime(data_key="deletedAt", allow_none=True)
    user = fields.Nested(AuthorOut, allow_none=True)

    def __init__(self, *args: Any, viewer_id: Any = _VIEWER_OF_REQUEST, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.viewer_id = viewer_id

    def _reactions(self, message: Any) -> list[dict[str, Any]]:
        viewer = g.get("viewer_id") if self.viewer_id is _VIEWER_OF_REQUEST else self.viewer_id
        return reaction_summary(message.reactions, viewer)


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


def utc_iso(value: datetime | None) -> str | None:
    """The wire form of a time: ISO 8601 in UTC, milliseconds, with a `Z`."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        # SQLite hands back naive datetimes that are UTC; PostgreSQL, its session's zone.
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" written as "Z"


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


class MessageVersionOut(Schema):
    message = fields.String()
    written_at = UtcDateTime(data_key="writtenAt")
    replaced_at = UtcDateTime(data_key="replacedAt", allow_none=True)


class MessageHistoryOut(Schema):
    message_id = fields.Integer(data_key="messageId")
    versions = fields.List(fields.Nested(MessageVersionOut), metadata={"description": "oldest first; the last is current"})


class MessagePageOut(Schema):
    items = fields.List(fields.Nested(MessageOut))
    has_more = fields.Boolean(data_key="hasMore")
    has_more_before = fields.Boolean(data_key="hasMoreBefore", allow_none=True)
    has_more_after = fields.Boolean(data_key="hasMoreAfter", allow_none=True)


class ReadStateOut(Schema):
    task_id = fields.Integer(data_key="taskId")
    last_read_id = fields.Integer(data_key="lastReadId")
    unread_count = fields.Integer(data_key="unreadCount")


class NotificationFromOut(Schema):
    user_id = fields.Integer(attribute="id", data_key="userId")
    user_name = fields.String(attribute="display_name", data_key="userName")


class NotificationOut(Schema):
    id = fields.Integer()
    type = fields.String()
    task_id = fields.Integer(data_key="taskId")
    message_id = fields.Integer(data_key="messageId", allow_none=True)
    from_ = fields.Nested(NotificationFromOut, attribute="from_user", data_key="from", allow_none=True)
    created_at = UtcDateTime(data_key="createdAt")
    read_at = UtcDateTime(data_key="readAt", allow_none=True)
    read = fields.Function(lambda n: n.read_at is not None)


class NotificationPageOut(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    has_more = fields.Boolean(data_key="hasMore")
    unread_count = fields.Integer(data_key="unreadCount")


class NotificationsReadOut(Schema):
    updated = fields.Integer()
    unread_count = fields.Integer(data_key="unreadCount")


class ActivityOut(Schema):
    id = fields.Integer()
    user_id = fields.Integer(data_key="userId", allow_none=True)
    action = fields.String()
    entity_type = fields.String(data_key="entityType")
    entity_id = fields.Integer(data_key="entityId", allow_none=True)
    task_id = fields.Integer(data_key="taskId", allow_none=True)
    old_values = fields.Raw(data_key="oldValues", allow_none=True)
    new_values = fields.Raw(data_key="newValues", allow_none=True)
    description = fields.String(allow_none=True)
    created_at = UtcDateTime(data_key="createdAt")


class AuthOut(Schema):
    user = fields.Nested(UserOut)
    access_token = fields.String(data_key="accessToken")
    refresh_token = fields.String(data_key="refreshToken")


class AccessTokenOut(Schema):
    access_token = fields.String(data_key="accessToken")


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """`{"items": [...], "hasMore": bool}`, the shape of every list."""
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "hasMore": fields.Boolean(attribute="has_more")},
        name=f"{item_schema.__name__.removesuffix('Out')}Page",
    )


class ErrorBody(Schema):
    code = fields.String(metadata={"description": "stable, machine-readable"})
    message = fields.String()
    details = fields.Raw(metadata={"description": "field errors, for validation_error"})
    retry_after = fields.Integer(
        data_key="retryAfter", metadata={"description": "rate_limited (429): whole seconds to wait, at least 1, "
                                         "as in the Retry-After header"},
    )
    retryable = fields.Boolean(
        metadata={"description": "unavailable (503): always true; nothing was stored, send the request again"},
    )


class ErrorOut(Schema):
    """The one error shape, REST and Socket.IO alike."""

    error = fields.Nested(ErrorBody)


class HealthOut(Schema):
    status = fields.String()
    database = fields.String()


notification_out = NotificationOut()
member_out = MemberOut()
task_out = TaskOut()
