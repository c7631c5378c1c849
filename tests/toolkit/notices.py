"""The notifications that tell a user they were added to a task, told apart from mentions."""
from __future__ import annotations

from toolkit.users import User

ADDED = "added_to_task"


def read_added_notices(client, user: User) -> None:
    """Mark read the notifications telling `user` they were added to a task. For tests
    of mention notifications, where being added is only their setup."""
    items = client.get("/api/notifications", query_string={"limit": 100}, headers=user.headers).get_json()["items"]
    ids = [n["id"] for n in items if n["type"] == ADDED and not n["read"]]
    response = client.post("/api/notifications/read", json={"ids": ids}, headers=user.headers)
    assert response.status_code == 200, response.get_json()


def mentions_only(body: dict) -> dict:
    """A GET /api/notifications answer without the (read) notices of being added."""
    return {**body, "items": [n for n in body["items"] if n["type"] != ADDED]}
