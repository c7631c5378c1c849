"""The input schemas: every REST body and query, every socket payload.

REST validates through flask-smorest (which also writes the OpenAPI document from
these schemas), the socket events through `load`; both get the same answers.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, fields, pre_load, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from ..errors import ValidationError
from ..models import ROLES, TASK_STATUSES
from .base import CamelSchema
from .fields import MAX_DB_INT, BoundedList, Email, Id, JsonBoolean, Password, Text, Token, clean_text, clean_token

MAX_MESSAGE_LENGTH = 4000
MAX_ATTACHMENTS = 10
MAX_MENTIONS = 50
MAX_CLIENT_ID_LENGTH = 64
MAX_EMOJI_LENGTH = 32
MAX_TOKEN_LENGTH = 4096
MAX_NOTIFICATION_IDS = 500


class InputSchema(CamelSchema):
    """Base of every input: unknown keys are ignored (clients send extra keys the frontend keeps)."""

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
class RegisterIn(InputSchema):
    email = Email(required=True, validate=validate.Length(max=254))
    password = Password(required=True, validate=validate.Length(min=10, max=256))
    first_name = Text(required=True, max_length=100)
    last_name = Text(required=True, max_length=100)


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
    user_id = Id(metadata={
        **refers_to("a user who shares a task with you"),
        "description": "the id of someone who already shares a task with you; exactly one of email and userId",
    })
    role = fields.String(required=True, validate=validate.OneOf(ROLES))

    openapi_rules = {"oneOf": [{"required": ["email"]}, {"required": ["userId"]}]}

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        keys = self.Meta.exactly_one_of
        attribute = {field.data_key: name for name, field in self.fields.items()}
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
        validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH),
        metadata=refers_to("the refresh token of the same user"),
    )


class TaskRef(InputSchema):
    error_message = "Task ID is required"
    task_id = Id(required=True)


class MessageBodyIn(InputSchema):
    error_message = "Task ID and message are required"
    message = Text(required=True, max_length=MAX_MESSAGE_LENGTH)
    # Ids of files uploaded to the task by the sender (POST /api/tasks/<id>/attachments).
    # null reads as [] (see _null_lists), hence allow_none: the document says null is fine.
    attachments = BoundedList(
        Id(), max_length=MAX_ATTACHMENTS, allow_none=True, load_default=list,
        metadata=refers_to("files the sender uploaded to this task that no message has taken yet"),
    )
    reply_to = Id(allow_none=True, load_default=None, metadata=refers_to("a message of this task"))
    client_id = Token(max_length=MAX_CLIENT_ID_LENGTH, allow_none=True, load_default=None)
    mentions = BoundedList(
        Id(), max_length=MAX_MENTIONS, allow_none=True, load_default=list, metadata=refers_to("members of this task"),
    )

    @pre_load
    def _null_lists(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # A missing or null list is []: the web frontend sends either for none.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (k in ("attachments", "mentions") and v is None)}
        return data


def _none_or_empty_list(value: Any) -> bool:
    return value is None or (type(value) is list and not value)


class SendMessageIn(MessageBodyIn):
    """The socket's `send_message`: the REST body plus the task id."""

    task_id = Id(required=True)

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
            message = clean_text(message, MAX_MESSAGE_LENGTH)
            if client_id is not None:
                client_id = clean_token(client_id, MAX_CLIENT_ID_LENGTH)
        except SchemaError:
            return None
        return {"message": message, "attachments": [], "reply_to": None, "client_id": client_id, "mentions": [],
                "task_id": task_id}


class JoinTaskIn(InputSchema):
    error_message = "Task ID is required"
    task_id = Id(required=True)
    # The newest message the client holds; 0 asks for everything from the start.
    last_message_id = Id(minimum=0, allow_none=True, load_default=None)


class MessageRef(InputSchema):
    error_message = "Message ID is required"
    message_id = Id(required=True)


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
    message_id = Id(required=True, metadata=refers_to("a message of this task"))


class MarkReadIn(MarkReadBodyIn):
    task_id = Id(required=True)


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
    empty body is not "all": a client that sent one by mistake would lose every unread mark."""

    ids = BoundedList(Id(), max_length=MAX_NOTIFICATION_IDS)
    all_ = JsonBoolean(validate=validate.OneOf([True], error="Must be true; or send ids."))

    openapi_rules = {"oneOf": [{"required": ["ids"]}, {"required": ["all"]}]}

    @validates_schema
    def _ids_or_all(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("ids" in data) == ("all_" in data):
            raise SchemaError("Send either ids or all: true.", "_schema")
