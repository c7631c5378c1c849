"""What the API answers with, over REST and Socket.IO alike: the keys of its JSON, its times."""
from __future__ import annotations

from datetime import datetime, timedelta, UTC

MESSAGE_KEYS = {
    "id", "taskId", "userId", "message", "attachments", "replyTo", "replyPreview", "mentions", "reactions",
    "clientId", "previousId", "version", "createdAt", "editedAt", "deleted", "deletedAt", "user",
}
SENT_KEYS = MESSAGE_KEYS | {"duplicate"}  # the answer to a send says whether it was a retry
PAGE_KEYS = {"items", "hasMore", "hasMoreBefore", "hasMoreAfter"}
ATTACHMENT_KEYS = {"id", "name", "size", "mimeType", "url"}
PERMISSIONS = {  # of each role, as a task or a member names them
    "owner": {"canRead": True, "canComment": True, "canEdit": True, "canManageMembers": True},
    "editor": {"canRead": True, "canComment": True, "canEdit": True, "canManageMembers": False},
    "commenter": {"canRead": True, "canComment": True, "canEdit": False, "canManageMembers": False},
    "viewer": {"canRead": True, "canComment": False, "canEdit": False, "canManageMembers": False},
}
MAX_ID = 2**31 - 1  # the largest id the database's integer columns hold
# The error of a request the database could not serve: retryable.
UNAVAILABLE = {"code": "unavailable", "message": "The service is temporarily unavailable; try again", "retryable": True}


def without_duplicate(sent: dict) -> dict:
    """The answer to a first send (not a retry) as history and broadcasts show the
    message: without `duplicate`."""
    assert sent["duplicate"] is False, sent
    return {k: v for k, v in sent.items() if k != "duplicate"}


def assert_recent(timestamp: str) -> None:
    """An ISO 8601 UTC time ("…Z") within the last half minute (or the next)."""
    assert timestamp.endswith("Z"), timestamp
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - when) < timedelta(seconds=30)
