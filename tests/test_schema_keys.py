"""Every schema's keys on the wire, in order: what the camelCase derivation of
`app/schemas/base.py` must give (or a field's own `data_key`). A field renamed in
Python must not rename a key that clients send or read."""
from __future__ import annotations

import pytest
from marshmallow import Schema

from app.schemas import inputs, outputs
from app.schemas.base import camel

MESSAGE_KEYS = (
    "id taskId userId message attachments replyTo replyPreview mentions reactions clientId previousId version "
    "createdAt editedAt deleted deletedAt user"
)
INPUT_KEYS = {
    "RegisterIn": "email password firstName lastName",
    "LoginIn": "email password",
    "TaskCreateIn": "title description status",
    "TaskUpdateIn": "title description status",
    "MemberAddIn": "email userId role",
    "MemberUpdateIn": "role",
    "RefreshTokenIn": "token",
    "LogoutIn": "refreshToken",
    "TaskRef": "taskId",
    "MessageBodyIn": "message attachments replyTo clientId mentions",
    "SendMessageIn": "message attachments replyTo clientId mentions taskId",
    "JoinTaskIn": "taskId lastMessageId",
    "MessageRef": "messageId",
    "EditBodyIn": "message",
    "EditMessageIn": "messageId message",
    "ReactionBodyIn": "emoji",
    "ReactionIn": "messageId emoji",
    "MarkReadBodyIn": "messageId",
    "MarkReadIn": "messageId taskId",
    "PageArgs": "before limit",
    "HistoryArgs": "before limit after around",
    "NotificationArgs": "limit",
    "NotificationsReadIn": "ids all",
}
OUTPUT_KEYS = {
    "UserOut": "id email firstName lastName createdAt",
    "MemberUserOut": "id email firstName lastName",
    "AuthorOut": "id firstName lastName",
    "PermissionsOut": "canRead canComment canEdit canManageMembers",
    "TaskOut": "id title description status createdBy createdAt updatedAt",
    "MyTaskOut": "id title description status createdBy createdAt updatedAt role permissions unreadCount",
    "MemberOut": "taskId userId role permissions createdAt user",
    "AttachmentOut": "id name size mimeType url",
    "ReplyPreviewOut": "messageId userId userName excerpt deleted",
    "MessageOut": MESSAGE_KEYS,
    "SentMessageOut": MESSAGE_KEYS + " duplicate",
    "MessageVersionOut": "message writtenAt replacedAt",
    "MessageHistoryOut": "messageId versions",
    "MessagePageOut": "items hasMore hasMoreBefore hasMoreAfter",
    "ReadStateOut": "taskId lastReadId unreadCount",
    "NotificationFromOut": "userId userName",
    "NotificationOut": "id type taskId messageId from createdAt readAt read",
    "NotificationPageOut": "items hasMore unreadCount",
    "NotificationsReadOut": "updated unreadCount",
    "ActivityOut": "id userId action entityType entityId taskId oldValues newValues description createdAt",
    "AuthOut": "user accessToken refreshToken",
    "AccessTokenOut": "accessToken",
    "ErrorBody": "code message details retryAfter retryable",
    "ErrorOut": "error",
    "HealthOut": "status database",
}


def _schemas(module) -> dict[str, type[Schema]]:
    return {
        name: value for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Schema) and value.__module__ == module.__name__
        and value is not inputs.InputSchema
    }


@pytest.mark.parametrize(("module", "expected"), [(inputs, INPUT_KEYS), (outputs, OUTPUT_KEYS)], ids=["in", "out"])
def test_every_schema_reads_and_writes_its_known_keys(module, expected):
    keys = {name: " ".join(field.data_key for field in schema().fields.values())
            for name, schema in _schemas(module).items()}
    assert keys == expected


@pytest.mark.parametrize("item", [outputs.ActivityOut, outputs.MemberOut, outputs.MyTaskOut])
def test_a_page_of_items_has_items_and_has_more(item):
    page = outputs.page_of(item)
    assert page.__name__ == item.__name__.removesuffix("Out") + "Page"
    assert [field.data_key for field in page().fields.values()] == ["items", "hasMore"]


@pytest.mark.parametrize(("name", "key"), [
    ("created_at", "createdAt"), ("has_more_before", "hasMoreBefore"), ("id", "id"), ("canRead", "canRead"),
    ("from_", "from"), ("all_", "all"),
])
def test_camel(name, key):
    assert camel(name) == key
