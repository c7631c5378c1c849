"""REST: /api/tasks — list, create, read, update, delete, and who may do each."""
from __future__ import annotations

import pytest

from toolkit.rest import assert_error
from toolkit.sockets import events
from toolkit.wire import PERMISSIONS

TASK_KEYS = {"id", "title", "description", "status", "createdBy", "createdAt", "updatedAt", "role", "permissions"}
# Reading a task (list and get) also tells the reader how many messages they have not read.
READ_TASK_KEYS = TASK_KEYS | {"unreadCount"}
HUGE_ID = 99999999999


# ---- list -----------------------------------------------------------------------
def test_list_is_empty_for_a_new_user(client, alice):
    response = client.get("/api/tasks", headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "hasMore": False}


def test_list_holds_only_my_tasks_with_my_role_newest_first(client, alice, bob, carol, make_task, add_member):
    first = make_task(alice, "First")
    second = make_task(alice, "Second")
    make_task(carol, "Carol's own")
    add_member(alice, second, bob, "viewer")

    alices = client.get("/api/tasks", headers=alice.headers).get_json()["items"]
    bobs = client.get("/api/tasks", headers=bob.headers).get_json()["items"]

    assert [t["id"] for t in alices] == [second["id"], first["id"]]
    assert all(t["role"] == "owner" and t["permissions"] == PERMISSIONS["owner"] for t in alices)
    assert [t["id"] for t in bobs] == [second["id"]]
    assert bobs[0]["role"] == "viewer"
    assert bobs[0]["permissions"] == {"canRead": True, "canComment": False, "canEdit": False, "canManageMembers": False}
    assert all(set(t) == READ_TASK_KEYS and t["unreadCount"] == 0 for t in alices + bobs)


def test_list_and_get_count_the_messages_of_others_i_have_not_read(client, task, alice, bob, make_task):
    quiet = make_task(alice, "Quiet")
    for text in ("one", "two"):
        client.post(f"/api/tasks/{task['id']}/messages", json={"message": text}, headers=alice.headers)
    client.post(f"/api/tasks/{task['id']}/messages", json={"message": "mine"}, headers=bob.headers)

    def unread(user) -> dict[int, int]:
        listed = client.get("/api/tasks", headers=user.headers).get_json()["items"]
        return {t["id"]: t["unreadCount"] for t in listed}

    assert unread(bob) == {task["id"]: 2}, "his own message is not unread"
    assert unread(alice) == {task["id"]: 1, quiet["id"]: 0}
    assert client.get(f"/api/tasks/{task['id']}", headers=bob.headers).get_json()["unreadCount"] == 2


# ---- create ---------------------------------------------------------------------
def test_create_returns_201_and_the_creator_is_owner(client, alice):
    response = client.post(
        "/api/tasks", json={"title": "  Ship it  ", "description": "Soon", "status": "in_progress"},
        headers=alice.headers,
    )

    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == TASK_KEYS
    assert type(task["id"]) is int and type(task["createdBy"]) is int
    assert task["title"] == "Ship it"
    assert task["description"] == "Soon"
    assert task["status"] == "in_progress"
    assert task["createdBy"] == alice.id
    assert task["role"] == "owner"
    assert task["permissions"] == PERMISSIONS["owner"]
    assert task["createdAt"].endswith("Z") and task["updatedAt"].endswith("Z")

    members = client.get(f"/api/tasks/{task['id']}/members", headers=alice.headers).get_json()["items"]
    assert [(m["userId"], m["role"]) for m in members] == [(alice.id, "owner")]


def test_create_defaults_description_and_status(client, alice):
    task = client.post("/api/tasks", json={"title": "Bare"}, headers=alice.headers).get_json()
    assert (task["description"], task["status"]) == ("", "todo")


def test_create_ignores_unknown_keys(client, alice):
    response = client.post("/api/tasks", json={"title": "T", "createdBy": 999, "id": 5}, headers=alice.headers)
    assert response.status_code == 201
    assert response.get_json()["createdBy"] == alice.id


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 7}, "title"),
        ({"title": "T", "status": "archived"}, "status"),
        ({"title": "T", "description": "x" * 10001}, "description"),
    ],
)
def test_create_validation_is_422_and_stores_nothing(client, alice, body, field):
    error = assert_error(client.post("/api/tasks", json=body, headers=alice.headers), 422, "validation_error")
    assert field in error["details"]
    assert client.get("/api/tasks", headers=alice.headers).get_json()["items"] == []


def test_create_with_a_non_object_body_is_422(client, alice):
    assert_error(client.post("/api/tasks", json=["title"], headers=alice.headers), 422, "validation_error")


# ---- get ------------------------------------------------------------------------
def test_get_as_member_carries_my_role(client, task, bob):
    response = client.get(f"/api/tasks/{task['id']}", headers=bob.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == task["id"]
    assert body["title"] == task["title"]
    assert body["role"] == "editor"
    assert body["permissions"] == PERMISSIONS["editor"]
    assert set(body) == READ_TASK_KEYS and body["unreadCount"] == 0


def test_get_non_member_and_nonexistent_task_get_the_same_403(client, task, carol):
    not_mine = client.get(f"/api/tasks/{task['id']}", headers=carol.headers)
    missing = client.get(f"/api/tasks/{task['id'] + 1000}", headers=carol.headers)

    assert_error(not_mine, 403, "forbidden")
    assert not_mine.status_code == missing.status_code
    assert not_mine.get_json() == missing.get_json()


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("task_id", [HUGE_ID, 2**31, 0])
def test_task_ids_out_of_range_are_404_not_500(client, alice, method, task_id):
    response = getattr(client, method)(f"/api/tasks/{task_id}", json={"title": "x"}, headers=alice.headers)
    assert_error(response, 404, "not_found")


def test_largest_database_id_is_a_plain_403(client, alice):
    assert_error(client.get(f"/api/tasks/{2**31 - 1}", headers=alice.headers), 403, "forbidden")


# ---- patch ----------------------------------------------------------------------
@pytest.mark.parametrize("role", ["owner", "editor"])
def test_patch_by_owner_or_editor_updates_the_task(client, alice, bob, make_task, add_member, role):
    task = make_task(alice, "Old title")
    editor = alice if role == "owner" else bob
    if role == "editor":
        add_member(alice, task, bob, "editor")

    response = client.patch(
        f"/api/tasks/{task['id']}", json={"title": "New title", "status": "done"}, headers=editor.headers
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["title"], body["status"], body["description"]) == ("New title", "done", task["description"])
    assert body["role"] == role
    again = client.get(f"/api/tasks/{task['id']}", headers=alice.headers).get_json()
    assert (again["title"], again["status"]) == ("New title", "done")


@pytest.mark.parametrize("role", ["commenter", "viewer"])
def test_patch_by_commenter_or_viewer_is_403(client, alice, carol, make_task, add_member, role):
    task = make_task(alice, "Keep me")
    add_member(alice, task, carol, role)

    response = client.patch(f"/api/tasks/{task['id']}", json={"title": "Changed"}, headers=carol.headers)

    assert_error(response, 403, "forbidden")
    assert client.get(f"/api/tasks/{task['id']}", headers=alice.headers).get_json()["title"] == "Keep me"


def test_patch_by_non_member_and_on_missing_task_get_the_same_403(client, task, carol):
    not_mine = client.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers=carol.headers)
    missing = client.patch(f"/api/tasks/{task['id'] + 1000}", json={"title": "x"}, headers=carol.headers)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


@pytest.mark.parametrize("status", ["todo", "in_progress", "done"])
def test_patch_accepts_every_status(client, task, alice, status):
    response = client.patch(f"/api/tasks/{task['id']}", json={"status": status}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == status


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "closed"}, "status"),
        ({"status": "DONE"}, "status"),
        ({"status": None}, "status"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
    ],
)
def test_patch_validation_is_422(client, task, alice, body, field):
    error = assert_error(
        client.patch(f"/api/tasks/{task['id']}", json=body, headers=alice.headers), 422, "validation_error"
    )
    assert field in error["details"]
    assert client.get(f"/api/tasks/{task['id']}", headers=alice.headers).get_json()["status"] == "todo"


@pytest.mark.parametrize("body", [{}, {"unknown": "x"}])
def test_patch_that_changes_no_field_is_422_and_logs_nothing(client, task, alice, body):
    """The document requires a body with a field; the server took `{}` as a no-op."""
    activity = client.get(f"/api/tasks/{task['id']}/activity", headers=alice.headers).get_json()["items"]

    error = assert_error(
        client.patch(f"/api/tasks/{task['id']}", json=body, headers=alice.headers), 422, "validation_error"
    )

    assert "_schema" in error["details"]
    assert client.get(f"/api/tasks/{task['id']}/activity", headers=alice.headers).get_json()["items"] == activity


def test_patch_can_clear_the_description(client, alice, make_task):
    task = make_task(alice, description="Something")
    response = client.patch(f"/api/tasks/{task['id']}", json={"description": ""}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["description"] == ""


def test_patch_broadcasts_task_updated_to_the_room(client, task, alice, bob, room_of):
    sock = room_of(bob)[0].sock

    client.patch(f"/api/tasks/{task['id']}", json={"status": "in_progress"}, headers=alice.headers)

    [update] = events(sock, "task_updated")
    assert update["taskId"] == task["id"]
    assert update["task"]["status"] == "in_progress"
    assert update["changes"] == ["status"]
    assert update["updatedBy"] == alice.id


def test_refused_patch_broadcasts_nothing(client, task, alice, carol, room_of):
    sock = room_of(alice)[0].sock
    client.patch(f"/api/tasks/{task['id']}", json={"status": "done"}, headers=carol.headers)
    assert events(sock, "task_updated") == []


# ---- delete ---------------------------------------------------------------------
def test_delete_by_owner_is_204_and_members_then_get_403(client, task, alice, bob):
    response = client.delete(f"/api/tasks/{task['id']}", headers=alice.headers)

    assert response.status_code == 204
    assert response.get_data() == b""
    for user in (alice, bob):
        assert_error(client.get(f"/api/tasks/{task['id']}", headers=user.headers), 403, "forbidden")
        assert_error(client.get(f"/api/tasks/{task['id']}/messages", headers=user.headers), 403, "forbidden")
        assert client.get("/api/tasks", headers=user.headers).get_json()["items"] == []
    assert_error(client.delete(f"/api/tasks/{task['id']}", headers=alice.headers), 403, "forbidden")


@pytest.mark.parametrize("role", ["editor", "commenter", "viewer"])
def test_delete_by_non_owner_member_is_403(client, alice, carol, make_task, add_member, role):
    task = make_task(alice)
    add_member(alice, task, carol, role)

    assert_error(client.delete(f"/api/tasks/{task['id']}", headers=carol.headers), 403, "forbidden")
    assert client.get(f"/api/tasks/{task['id']}", headers=alice.headers).status_code == 200


def test_delete_by_non_member_is_403(client, task, carol, alice):
    assert_error(client.delete(f"/api/tasks/{task['id']}", headers=carol.headers), 403, "forbidden")
    assert client.get(f"/api/tasks/{task['id']}", headers=alice.headers).status_code == 200


def test_delete_broadcasts_task_deleted_to_the_room(client, task, alice, bob, room_of):
    sock = room_of(bob)[0].sock

    client.delete(f"/api/tasks/{task['id']}", headers=alice.headers)

    [note] = events(sock, "task_notification")
    assert note["type"] == "task_deleted"
    assert note["taskId"] == task["id"]
    assert note["by"] == alice.id
