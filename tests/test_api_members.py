"""REST: /api/tasks/<id>/members — list, add, change role, remove, and what each role may do."""
from __future__ import annotations

import pytest

from toolkit.rest import assert_error, members_url
from toolkit.sockets import events
from toolkit.wire import PERMISSIONS

MEMBER_KEYS = {"taskId", "userId", "role", "permissions", "createdAt", "user"}


def roles(client, task: dict, as_user) -> dict[int, str]:
    response = client.get(members_url(task), headers=as_user.headers)
    assert response.status_code == 200, response.get_json()
    return {m["userId"]: m["role"] for m in response.get_json()["items"]}


# ---- list -----------------------------------------------------------------------
def test_list_members_shows_every_member_with_role_permissions_and_user(client, task, alice, bob):
    response = client.get(members_url(task), headers=bob.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["hasMore"] is False
    owner, editor = body["items"]
    assert set(owner) == MEMBER_KEYS
    assert (owner["taskId"], owner["userId"], owner["role"]) == (task["id"], alice.id, "owner")
    assert owner["permissions"] == PERMISSIONS["owner"]
    assert owner["user"] == {"id": alice.id, "email": alice.email, "firstName": "Alice", "lastName": "Owner"}
    assert (editor["userId"], editor["role"]) == (bob.id, "editor")
    assert editor["permissions"] == PERMISSIONS["editor"]
    assert all(type(m["taskId"]) is int and type(m["userId"]) is int for m in body["items"])


def test_list_members_non_member_and_missing_task_get_the_same_403(client, task, carol):
    not_mine = client.get(members_url(task), headers=carol.headers)
    missing = client.get(f"/api/tasks/{task['id'] + 1000}/members", headers=carol.headers)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


# ---- add ------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["owner", "editor", "commenter", "viewer"])
def test_owner_adds_a_member_with_any_role(client, alice, carol, make_task, role):
    task = make_task(alice)

    response = client.post(members_url(task), json={"email": carol.email, "role": role}, headers=alice.headers)

    assert response.status_code == 201
    member = response.get_json()
    assert set(member) == MEMBER_KEYS
    assert (member["taskId"], member["userId"], member["role"]) == (task["id"], carol.id, role)
    assert member["permissions"] == PERMISSIONS[role]
    assert member["user"]["id"] == carol.id
    assert roles(client, task, alice) == {alice.id: "owner", carol.id: role}
    assert client.get(f"/api/tasks/{task['id']}", headers=carol.headers).get_json()["role"] == role


def test_add_accepts_a_user_id_sent_as_a_string(client, task, alice, bob, make_task):
    """Bob shares Alice's `task`, so his id finds him for her new one."""
    fresh = make_task(alice)
    response = client.post(members_url(fresh), json={"userId": str(bob.id), "role": "viewer"}, headers=alice.headers)
    assert response.status_code == 201
    assert response.get_json()["userId"] == bob.id


@pytest.mark.parametrize("role", ["editor", "commenter", "viewer"])
def test_non_owner_cannot_add_members(client, alice, bob, carol, make_task, add_member, role):
    task = make_task(alice)
    add_member(alice, task, bob, role)

    response = client.post(members_url(task), json={"userId": carol.id, "role": "viewer"}, headers=bob.headers)

    assert_error(response, 403, "forbidden")
    assert carol.id not in roles(client, task, alice)


def test_non_member_cannot_add_members(client, task, carol):
    response = client.post(members_url(task), json={"userId": carol.id, "role": "owner"}, headers=carol.headers)
    assert_error(response, 403, "forbidden")


def test_add_unknown_user_is_404_not_found(client, task, alice):
    response = client.post(members_url(task), json={"userId": 987654, "role": "viewer"}, headers=alice.headers)
    assert_error(response, 404, "not_found")


def test_add_existing_member_is_409_and_keeps_the_role(client, task, alice, bob):
    response = client.post(members_url(task), json={"userId": bob.id, "role": "viewer"}, headers=alice.headers)

    assert_error(response, 409, "conflict")
    assert roles(client, task, alice)[bob.id] == "editor"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"userId": "CAROL", "role": "viewer"}, "userId"),
        ({"role": "viewer"}, "userId"),
        ({"userId": 0, "role": "viewer"}, "userId"),
        ({"userId": 99999999999, "role": "viewer"}, "userId"),
        ({"userId": True, "role": "viewer"}, "userId"),
        ({"userId": 1.5, "role": "viewer"}, "userId"),
        ({"userId": "CAROL_ID", "role": "admin"}, "role"),
        ({"userId": "CAROL_ID"}, "role"),
        ({"userId": "CAROL_ID", "role": "Owner"}, "role"),
        ({"userId": "CAROL_ID", "email": "CAROL_EMAIL", "role": "viewer"}, "email"),
        ({"userId": "CAROL_ID", "email": "CAROL_EMAIL", "role": "viewer"}, "userId"),
        ({"role": "viewer"}, "email"),
        ({"email": "carol", "role": "viewer"}, "email"),
        ({"email": "", "role": "viewer"}, "email"),
        ({"email": None, "role": "viewer"}, "email"),
        ({"email": 7, "role": "viewer"}, "email"),
        ({"email": "c" * 250 + "@x.io", "role": "viewer"}, "email"),
        ({"email": "CAROL_EMAIL", "role": "admin"}, "role"),
    ],
)
def test_add_invalid_body_is_422(client, alice, carol, make_task, body, field):
    task = make_task(alice)
    body = {k: {"CAROL_ID": carol.id, "CAROL_EMAIL": carol.email}.get(v, v) if isinstance(v, str) else v
            for k, v in body.items()}

    error = assert_error(client.post(members_url(task), json=body, headers=alice.headers), 422, "validation_error")

    assert field in error["details"]
    assert carol.id not in roles(client, task, alice)


def test_the_api_document_asks_for_exactly_one_of_email_and_user_id(client):
    """As the server refuses a body with both or neither (above), so does the document."""
    schema = client.get("/api/openapi.json").get_json()["components"]["schemas"]["MemberAddIn"]

    assert set(schema["properties"]) == {"email", "userId", "role"}
    assert schema["required"] == ["role"]
    assert schema["oneOf"] == [{"required": ["email"]}, {"required": ["userId"]}]
    email = schema["properties"]["email"]
    assert (email["type"], email["format"], email["maxLength"]) == ("string", "email", 254)


def test_add_broadcasts_member_changed_added(client, task, alice, bob, carol, room_of):
    sock = room_of(bob)[0].sock

    client.post(members_url(task), json={"email": carol.email, "role": "commenter"}, headers=alice.headers)

    [change] = events(sock, "member_changed")
    assert change["taskId"] == task["id"]
    assert change["action"] == "added"
    assert change["member"]["userId"] == carol.id
    assert change["member"]["role"] == "commenter"


# ---- change a role --------------------------------------------------------------
def test_owner_changes_a_role(client, task, alice, bob):
    response = client.patch(members_url(task, bob), json={"role": "viewer"}, headers=alice.headers)

    assert response.status_code == 200
    member = response.get_json()
    assert (member["userId"], member["role"]) == (bob.id, "viewer")
    assert member["permissions"] == PERMISSIONS["viewer"]
    assert roles(client, task, alice)[bob.id] == "viewer"
    # The new role takes effect at once: a viewer may no longer edit.
    assert_error(client.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers=bob.headers), 403, "forbidden")


def test_setting_the_same_role_is_a_no_op(client, task, alice, bob):
    response = client.patch(members_url(task, bob), json={"role": "editor"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["role"] == "editor"


def test_promote_to_owner_then_the_first_owner_may_step_down(client, task, alice, bob):
    assert client.patch(members_url(task, bob), json={"role": "owner"}, headers=alice.headers).status_code == 200

    response = client.patch(members_url(task, alice), json={"role": "viewer"}, headers=bob.headers)

    assert response.status_code == 200
    assert roles(client, task, bob) == {alice.id: "viewer", bob.id: "owner"}


def test_cannot_demote_the_last_owner(client, task, alice):
    response = client.patch(members_url(task, alice), json={"role": "editor"}, headers=alice.headers)

    assert_error(response, 409, "conflict")
    assert roles(client, task, alice)[alice.id] == "owner"


@pytest.mark.parametrize("role", ["editor", "commenter", "viewer"])
def test_non_owner_cannot_change_roles(client, alice, bob, carol, make_task, add_member, role):
    task = make_task(alice)
    add_member(alice, task, bob, role)
    add_member(alice, task, carol, "viewer")

    for target in (carol, bob):
        response = client.patch(members_url(task, target), json={"role": "owner"}, headers=bob.headers)
        assert_error(response, 403, "forbidden")
    assert roles(client, task, alice) == {alice.id: "owner", bob.id: role, carol.id: "viewer"}


def test_change_role_of_a_non_member_is_404(client, task, alice, carol):
    response = client.patch(members_url(task, carol), json={"role": "viewer"}, headers=alice.headers)
    assert_error(response, 404, "not_found")


def test_change_role_by_non_member_and_on_missing_task_get_the_same_403(client, task, carol, bob):
    not_mine = client.patch(members_url(task, bob), json={"role": "viewer"}, headers=carol.headers)
    missing = client.patch(f"/api/tasks/{task['id'] + 1000}/members/{bob.id}", json={"role": "viewer"},
                           headers=carol.headers)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


@pytest.mark.parametrize("body", [{}, {"role": "admin"}, {"role": None}, {"role": 3}])
def test_change_role_invalid_is_422(client, task, alice, bob, body):
    response = client.patch(members_url(task, bob), json=body, headers=alice.headers)
    error = assert_error(response, 422, "validation_error")
    assert "role" in error["details"]
    assert roles(client, task, alice)[bob.id] == "editor"


def test_change_role_broadcasts_member_changed_updated(client, task, alice, bob, room_of):
    sock = room_of(bob)[0].sock

    client.patch(members_url(task, bob), json={"role": "commenter"}, headers=alice.headers)

    [change] = events(sock, "member_changed")
    assert (change["taskId"], change["action"]) == (task["id"], "updated")
    assert (change["member"]["userId"], change["member"]["role"]) == (bob.id, "commenter")


# ---- remove ---------------------------------------------------------------------
def test_owner_removes_a_member(client, task, alice, bob):
    response = client.delete(members_url(task, bob), headers=alice.headers)

    assert response.status_code == 204
    assert roles(client, task, alice) == {alice.id: "owner"}
    assert_error(client.get(f"/api/tasks/{task['id']}", headers=bob.headers), 403, "forbidden")
    assert client.get("/api/tasks", headers=bob.headers).get_json()["items"] == []


@pytest.mark.parametrize("role", ["editor", "commenter", "viewer"])
def test_a_member_may_remove_themself(client, alice, bob, make_task, add_member, role):
    task = make_task(alice)
    add_member(alice, task, bob, role)

    assert client.delete(members_url(task, bob), headers=bob.headers).status_code == 204
    assert roles(client, task, alice) == {alice.id: "owner"}


@pytest.mark.parametrize("role", ["editor", "commenter", "viewer"])
def test_a_non_owner_cannot_remove_someone_else(client, alice, bob, carol, make_task, add_member, role):
    task = make_task(alice)
    add_member(alice, task, bob, role)
    add_member(alice, task, carol, "viewer")

    assert_error(client.delete(members_url(task, carol), headers=bob.headers), 403, "forbidden")
    # Removing the last owner is refused as a conflict first, whoever asks (see below).
    assert_error(client.delete(members_url(task, alice), headers=bob.headers), 409, "conflict")
    assert set(roles(client, task, alice)) == {alice.id, bob.id, carol.id}


def test_cannot_remove_the_last_owner_even_themself(client, task, alice):
    assert_error(client.delete(members_url(task, alice), headers=alice.headers), 409, "conflict")
    assert roles(client, task, alice)[alice.id] == "owner"


def test_an_owner_may_leave_when_another_owner_remains(client, task, alice, bob):
    client.patch(members_url(task, bob), json={"role": "owner"}, headers=alice.headers)

    assert client.delete(members_url(task, alice), headers=alice.headers).status_code == 204
    assert roles(client, task, bob) == {bob.id: "owner"}


# ---- the last owner, whoever asks ---------------------------------------------------
# Two owners who demote or remove each other at the same moment are serialized by the
# task's write lock, so the second meets what it meets here, one after the other
# (tests/e2e/test_live_owners.py races them against the live server).
def _demote_or_remove(client, task, kind: str, actor, target):
    if kind == "demote":
        return client.patch(members_url(task, target), json={"role": "viewer"}, headers=actor.headers)
    return client.delete(members_url(task, target), headers=actor.headers)


@pytest.mark.parametrize("second", ["demote", "remove"])
@pytest.mark.parametrize("first", ["demote", "remove"])
def test_of_two_owners_acting_on_each_other_the_second_is_a_conflict(client, task, alice, bob, first, second):
    assert client.patch(members_url(task, bob), json={"role": "owner"}, headers=alice.headers).status_code == 200

    assert _demote_or_remove(client, task, first, alice, bob).status_code == (200 if first == "demote" else 204)
    # Bob is now a viewer, or no longer a member, and Alice is the last owner.
    assert_error(_demote_or_remove(client, task, second, bob, alice), 409, "conflict")
    assert roles(client, task, alice) == {alice.id: "owner", **({bob.id: "viewer"} if first == "demote" else {})}


def test_a_removed_member_gets_403_when_the_target_is_not_the_last_owner(client, task, alice, bob, carol,
                                                                        add_member):
    add_member(alice, task, carol, "owner")
    assert client.delete(members_url(task, bob), headers=alice.headers).status_code == 204

    for kind in ("demote", "remove"):
        assert_error(_demote_or_remove(client, task, kind, bob, alice), 403, "forbidden")
    assert roles(client, task, alice) == {alice.id: "owner", carol.id: "owner"}


@pytest.mark.parametrize("kind", ["demote", "remove"])
def test_someone_never_a_member_gets_403_even_against_the_last_owner(client, task, alice, carol, kind):
    """Whether a user is a task's last owner is not told to strangers: the same 403 as a missing task."""
    not_mine = _demote_or_remove(client, task, kind, carol, alice)
    missing = _demote_or_remove(client, {"id": task["id"] + 1000}, kind, carol, alice)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


def test_remove_a_non_member_is_404(client, task, alice, carol):
    assert_error(client.delete(members_url(task, carol), headers=alice.headers), 404, "not_found")


def test_remove_by_non_member_is_403(client, task, bob, carol):
    assert_error(client.delete(members_url(task, bob), headers=carol.headers), 403, "forbidden")


def test_remove_broadcasts_member_changed_removed_and_the_removed_socket_leaves(client, task, alice, bob, room_of):
    alice_sock, bob_sock = (peer.sock for peer in room_of(alice, bob))

    client.delete(members_url(task, bob), headers=alice.headers)

    [change] = events(alice_sock, "member_changed")
    assert (change["taskId"], change["action"]) == (task["id"], "removed")
    assert change["member"]["userId"] == bob.id
    # Bob's socket left the room at once: the next message does not reach him.
    bob_sock.get_received("/tasks")
    client.post(f"/api/tasks/{task['id']}/messages", json={"message": "after"}, headers=alice.headers)
    assert events(bob_sock, "new_message") == []
    assert [m["message"]["message"] for m in events(alice_sock, "new_message")] == ["after"]


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize("user_id", [99999999999, 2**31, 0])
def test_member_user_ids_out_of_range_are_404(client, task, alice, method, user_id):
    response = getattr(client, method)(f"/api/tasks/{task['id']}/members/{user_id}", json={"role": "viewer"},
                                       headers=alice.headers)
    assert_error(response, 404, "not_found")


# ---- roles decide what a member may do --------------------------------------------
@pytest.mark.parametrize(
    "role, may_comment, may_edit, may_manage",
    [
        ("owner", True, True, True),
        ("editor", True, True, False),
        ("commenter", True, False, False),
        ("viewer", False, False, False),
    ],
)
def test_role_permissions_are_enforced(client, alice, bob, carol, make_task, add_member,
                                       role, may_comment, may_edit, may_manage):
    task = make_task(alice)
    add_member(alice, task, bob, role)
    base = f"/api/tasks/{task['id']}"

    read = client.get(f"{base}/messages", headers=bob.headers)
    comment = client.post(f"{base}/messages", json={"message": "hi"}, headers=bob.headers)
    edit = client.patch(base, json={"title": "edited"}, headers=bob.headers)
    manage = client.post(f"{base}/members", json={"email": carol.email, "role": "viewer"}, headers=bob.headers)

    assert read.status_code == 200
    assert comment.status_code == (201 if may_comment else 403)
    assert edit.status_code == (200 if may_edit else 403)
    assert manage.status_code == (201 if may_manage else 403)
