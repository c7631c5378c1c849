"""Marshmallow schemas: the one definition of every payload.

Input schemas validate REST bodies (through flask-smorest, which also writes
the OpenAPI document from them) and socket payloads (through `load`) alike.
Output schemas shape models into the camelCase JSON both doors send.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load, validate
from marshmallow import ValidationError as SchemaError

from .errors import ValidationError
from .models import ROLES, TASK_STATUSES

MAX_DB_INT = 2**31 - 1
MAX_MESSAGE_LENGTH = 4000
MAX_ATTACHMENTS = 10


class Id(fields.Field):
    """A positive integer id. Accepts JSON integers and strings of digits (the
    original frontend sends ids as it got them, sometimes as strings); refuses
    booleans, floats, and anything a database integer cannot hold."""

    default_error_messages = {"invalid": "Must be a positive integer id."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
            value = int(value.strip())
        if not isinstance(value, int) or not 1 <= value <= MAX_DB_INT:
            raise self.make_error("invalid")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> int | None:
        return value


class Text(fields.String):
    """A string, trimmed, then checked for length."""

    def __init__(self, *, max_length: int, allow_blank: bool = False, **kwargs: Any):
        self.max_length, self.allow_blank = max_length, allow_blank
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text and not self.allow_blank:
            raise SchemaError("Must not be blank.")
        if len(text) > self.max_length:
            raise SchemaError(f"Must be at most {self.max_length} characters.")
        _refuse_nul(text)
        return text


def _refuse_nul(text: str) -> None:
    """PostgreSQL stores no NUL character in text or JSONB: bad input, not a database crash."""
    if "\x00" in text:
        raise SchemaError("Must not contain the NUL character.")


class Attachment(fields.Field):
    """One attachment as the original stored it: a string (a URL or a name), or a
    flat object of scalars such as {name, url, size}. Nesting is refused, so a
    payload cannot be made arbitrarily deep."""

    default_error_messages = {"invalid": "An attachment is a string or a flat object of strings and numbers."}
    _SCALARS = (str, int, float, bool, type(None))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if not isinstance(value, dict) or len(value) > 20:
            raise self.make_error("invalid")
        for key, item in value.items():
            if not isinstance(item, self._SCALARS) or len(key) > 100:
                raise self.make_error("invalid")
            self._text(key)
            if isinstance(item, str):
                self._text(item)
        return value

    @staticmethod
    def _text(text: str) -> str:
        if len(text) > 2000:
            raise SchemaError("Attachment text must be at most 2000 characters.")
        _refuse_nul(text)
        return text


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC with a `Z`; SQLite hands back naive datetimes that are UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InputSchema(Schema):
    """Base of every input: unknown keys are ignored, as the original ignored them."""

    # The message a socket client sees when this payload is refused.
    error_message = "Invalid request data"

    class Meta:
        unknown = EXCLUDE


def load(schema: type[InputSchema], data: Any) -> dict[str, Any]:
    """Validate a socket payload (or any plain data) with the same schema REST uses."""
    if not isinstance(data, dict):
        raise ValidationError(schema.error_message, details={"_schema": ["Expected an object."]})
    try:
        return schema().load(data)
    except SchemaError as err:
        raise ValidationError(schema.error_message, details=err.messages) from None


# ---- auth -------------------------------------------------------------------
class Email(fields.Email):
    """An email address, surrounding spaces forgiven."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs)


class RegisterIn(InputSchema):
    email = Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=10, max=256))
    first_name = Text(data_key="firstName", required=True, max_length=100)
    last_name = Text(data_key="lastName", required=True, max_length=100)


class LoginIn(InputSchema):
    email = Text(required=True, max_length=254)
    password = fields.String(required=True, validate=validate.Length(max=256))


# ---- tasks and members ------------------------------------------------------
class TaskCreateIn(InputSchema):
    title = Text(required=True, max_length=200)
    description = Text(max_length=10000, allow_blank=True, load_default="")
    status = fields.String(validate=validate.OneOf(TASK_STATUSES), load_default="todo")


class TaskUpdateIn(InputSchema):
    title = Text(max_length=200)
    description = Text(max_length=10000, allow_blank=True)
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))


class MemberAddIn(InputSchema):
    user_id = Id(data_key="userId", required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MemberUpdateIn(InputSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


# ---- chat -------------------------------------------------------------------
class TaskRef(InputSchema):
    error_message = "Task ID is required"
    task_id = Id(data_key="taskId", required=True)


class MessageBodyIn(InputSchema):
    error_message = "Task ID and message are required"
    message = Text(required=True, max_length=MAX_MESSAGE_LENGTH)
    attachments = fields.List(Attachment(), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS))
    reply_to = Id(data_key="replyTo", allow_none=True, load_default=None)

    @pre_load
    def _null_attachments(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The original treated a missing or null list as [].
        if isinstance(data, dict) and data.get("attachments") is None:
            data = {k: v for k, v in data.items() if k != "attachments"}
        return data


class SendMessageIn(MessageBodyIn):
    """The socket's `send_message`: the REST body plus the task id."""

    task_id = Id(data_key="taskId", required=True)


class PageArgs(InputSchema):
    before = Id(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


# ---- output -----------------------------------------------------------------
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


class MemberOut(Schema):
    task_id = fields.Integer(data_key="taskId")
    user_id = fields.Integer(data_key="userId")
    role = fields.String()
    permissions = fields.Nested(PermissionsOut)
    created_at = UtcDateTime(data_key="createdAt")
    user = fields.Nested(MemberUserOut)


class MessageOut(Schema):
    id = fields.Integer()
    task_id = fields.Integer(data_key="taskId")
    user_id = fields.Integer(data_key="userId", allow_none=True)
    message = fields.String()
    attachments = fields.List(fields.Raw())
    reply_to = fields.Integer(data_key="replyTo", allow_none=True)
    created_at = UtcDateTime(data_key="createdAt")
    user = fields.Nested(AuthorOut, allow_none=True)


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


class ErrorOut(Schema):
    """The one error shape, REST and Socket.IO alike."""

    error = fields.Nested(ErrorBody)


class HealthOut(Schema):
    status = fields.String()
    database = fields.String()


message_out = MessageOut()
member_out = MemberOut()
task_out = TaskOut()
