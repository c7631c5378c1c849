"""A membership or role change acts at the moment it commits, on both servers: the
member's very next event after the REST answer meets the new role. Nothing here
waits or retries between the change and the event."""
from __future__ import annotations

import pytest

from e2e.live import Api, LiveServer, make_room

pytestmark = pytest.mark.e2e


def _send(sock, task_id: int, text: str) -> dict:
    return sock.call("send_message", {"taskId": task_id, "message": text})


def test_a_role_change_acts_on_the_next_event(live_server: LiveServer, api: Api, live_socket):
    room = make_room(api, "Roles")
    bob = live_socket(live_server).connect(room.member.token)
    assert bob.call("join_task", {"taskId": room.task_id})["data"]["role"] == "commenter"
    assert _send(bob, room.task_id, "as a commenter")["ok"] is True

    api.request("PATCH", f"/api/tasks/{room.task_id}/members/{room.member.id}", room.owner,
                json={"role": "viewer"})
    refused = _send(bob, room.task_id, "as a viewer")
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
    assert bob.call("typing_start", {"taskId": room.task_id})["ok"] is True  # still in the room, may watch

    api.request("PATCH", f"/api/tasks/{room.task_id}/members/{room.member.id}", room.owner,
                json={"role": "commenter"})
    assert _send(bob, room.task_id, "a commenter again")["ok"] is True
    assert [m["message"] for m in api.messages(room.owner, room.task_id)] == ["a commenter again", "as a commenter"]


def test_a_removal_acts_on_the_next_event(live_server: LiveServer, api: Api, live_socket):
    room = make_room(api, "Removal")
    bob = live_socket(live_server).connect(room.member.token)
    assert bob.call("join_task", {"taskId": room.task_id})["ok"] is True
    assert _send(bob, room.task_id, "before")["ok"] is True

    api.request("DELETE", f"/api/tasks/{room.task_id}/members/{room.member.id}", room.owner, expect=204)
    for event, payload in (("send_message", {"taskId": room.task_id, "message": "after"}),
                           ("typing_start", {"taskId": room.task_id})):
        refused = bob.call(event, payload)
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", (event, refused)
    assert [m["message"] for m in api.messages(room.owner, room.task_id)] == ["before"]
