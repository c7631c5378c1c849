"""The task chat over REST, as one Flask test client reaches it: the `chat` fixture.

Every action names the task first (its JSON, as `make_task` answers it, or its id)
and then the user who acts. An action in the present tense (`send`, `upload`,
`edit`, `delete`, `react`, `unreact`, `mark_read`) answers the response, for tests
of refusals; its past participle (`sent`, `uploaded`, `edited`, `deleted`) asserts
that it succeeded and answers the JSON.
"""
from __future__ import annotations

import io
from urllib.parse import quote

from toolkit.notices import mentions_only
from toolkit.users import User
from toolkit.wire import without_duplicate


def task_id(task: dict | int) -> int:
    return task["id"] if isinstance(task, dict) else task


def messages_url(task: dict | int, message_id: int | None = None) -> str:
    """The task's messages, or one of them."""
    base = f"/api/tasks/{task_id(task)}/messages"
    return base if message_id is None else f"{base}/{message_id}"


def ok(response, status: int = 200) -> dict:
    """The JSON of a response that must have `status`."""
    assert response.status_code == status, response.get_json()
    return response.get_json()


class Chat:
    def __init__(self, client):
        self.client = client

    # ---- sending ----------------------------------------------------------------------------
    def send(self, task: dict | int, user: User, text: str = "Hello", **extra):
        """POST a message; `extra`: its other fields (clientId, replyTo, attachments, mentions)."""
        return self.client.post(messages_url(task), json={"message": text, **extra}, headers=user.headers)

    def sent(self, task: dict | int, user: User, text: str = "Hello", **extra) -> dict:
        """The answer to a send that must be stored (201): the message and its `duplicate` flag."""
        return ok(self.send(task, user, text, **extra), 201)

    def message(self, task: dict | int, user: User, text: str = "Hello", **extra) -> dict:
        """A new message (a first send, not a duplicate) as lists and broadcasts show it:
        without the send's own `duplicate` flag."""
        return without_duplicate(self.sent(task, user, text, **extra))

    def upload(self, task: dict | int, user: User | None, content: bytes = b"hello file", name: str = "notes.txt",
               content_type: str | None = None, field: str = "file"):
        """POST a file as multipart `field` (with `content_type` when given); no user: no token."""
        data = {field: (io.BytesIO(content), name, content_type) if content_type else (io.BytesIO(content), name)}
        headers = user.headers if user else {}
        return self.client.post(f"/api/tasks/{task_id(task)}/attachments", data=data, headers=headers,
                                content_type="multipart/form-data")

    def uploaded(self, task: dict | int, user: User, content: bytes = b"hello file", name: str = "notes.txt") -> dict:
        """An uploaded file (201): what a message's `attachments` then names by id."""
        return ok(self.upload(task, user, content, name), 201)

    # ---- reading ----------------------------------------------------------------------------
    def history(self, task: dict | int, user: User, **query) -> dict:
        """One page of the task's messages (GET …/messages with `query`)."""
        return ok(self.client.get(messages_url(task), query_string=query, headers=user.headers))

    def whole_history(self, task: dict | int, user: User) -> list[dict]:
        """Every message the server holds for the task, oldest first, paged with ?after=."""
        items, after = [], 0
        while True:
            body = self.history(task, user, after=after, limit=100)
            items += body["items"]
            if not body["hasMore"]:
                return items
            after = items[-1]["id"]

    def by_id(self, task: dict | int, user: User) -> dict[int, dict]:
        """The whole history, by message id."""
        return {m["id"]: m for m in self.whole_history(task, user)}

    # ---- changing a message -----------------------------------------------------------------
    def edit(self, task: dict | int, user: User, message_id: int, text):
        return self.client.patch(messages_url(task, message_id), json={"message": text}, headers=user.headers)

    def edited(self, task: dict | int, user: User, message_id: int, text: str) -> dict:
        return ok(self.edit(task, user, message_id, text))

    def delete(self, task: dict | int, user: User, message_id: int):
        return self.client.delete(messages_url(task, message_id), headers=user.headers)

    def deleted(self, task: dict | int, user: User, message_id: int) -> dict:
        return ok(self.delete(task, user, message_id))

    def versions(self, task: dict | int, user: User, message_id: int) -> dict:
        """The message's edit history (GET …/messages/<id>/history)."""
        return ok(self.client.get(messages_url(task, message_id) + "/history", headers=user.headers))

    def react(self, task: dict | int, user: User, message_id: int, emoji: str):
        return self.client.post(messages_url(task, message_id) + "/reactions", json={"emoji": emoji},
                                headers=user.headers)

    def unreact(self, task: dict | int, user: User, message_id: int, emoji: str):
        """DELETE the reaction, the emoji escaped as one path segment."""
        return self.client.delete(f"{messages_url(task, message_id)}/reactions/{quote(emoji, safe='')}",
                                  headers=user.headers)

    # ---- reads and notifications ------------------------------------------------------------
    def mark_read(self, task: dict | int, user: User, message_id):
        return self.client.post(f"/api/tasks/{task_id(task)}/read", json={"messageId": message_id},
                                headers=user.headers)

    def notifications(self, user: User, **query) -> dict:
        """GET /api/notifications with `query`."""
        return ok(self.client.get("/api/notifications", query_string=query, headers=user.headers))

    def mentions(self, user: User, **query) -> dict:
        """The notifications without those of being added to a task: for tests where being
        added is only the setup (their modules mark `added_notices_read`)."""
        return mentions_only(self.notifications(user, **query))
