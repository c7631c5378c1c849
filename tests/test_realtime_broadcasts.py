"""REST changes reaching the task rooms: task_updated, member_changed, task_notification, new_message.

Each test has clients on both namespaces (`/tasks` and `/`) in the room, and one that
is not, and checks who heard what after the REST call.
"""
from __future__ import annotations

import pytest

from toolkit.wire import assert_recent


@pytest.fixture
def room(connect, room_of, alice, bob):
    """Alice on `/tasks` and Bob on `/`, both in the task's room; Alice also has a socket outside it."""
    idle = connect(alice)
    alice_peer, bob_peer = room_of(alice, (bob, "/"))
    idle.received()
    return {"alice": alice_peer, "bob": bob_peer, "idle": idle}


# ---- task_updated ----------------------------------------------------------------------------
def test_patch_task_sends_task_updated_to_the_room(room, client, bob, task):
    response = client.patch(f"/api/tasks/{task['id']}", json={"title": "Renamed", "status": "in_progress"},
                            headers=bob.headers)
    assert response.status_code == 200, response.get_json()

    for name in ("alice", "bob"):
        [(event, payload)] = room[name].heard()
        assert event == "task_updated", name
        assert set(payload) == {"taskId", "task", "changes", "updatedBy"}
        said = (payload["taskId"], payload["updatedBy"], payload["changes"])
        assert said == (task["id"], bob.id, ["status", "title"])
        assert (payload["task"]["id"], payload["task"]["title"], payload["task"]["status"]) == (
            task["id"], "Renamed", "in_progress")
        assert payload["task"]["updatedAt"] == response.get_json()["updatedAt"]
    assert room["idle"].heard() == []


def test_a_patch_that_changes_nothing_sends_nothing(room, client, alice, task):
    response = client.patch(f"/api/tasks/{task['id']}", json={"title": task["title"]}, headers=alice.headers)

    assert response.status_code == 200
    assert room["alice"].heard() == [] and room["bob"].heard() == []


@pytest.mark.parametrize("who, body, status", [
    ("viewer", {"title": "Mine now"}, 403),
    ("stranger", {"title": "Mine now"}, 403),
    ("owner", {"status": "finished"}, 422),
    ("owner", {"title": "   "}, 422),
])
def test_a_refused_patch_sends_nothing(room, client, alice, carol, task, add_member, who, body, status):
    if who == "viewer":
        add_member(alice, task, carol, "viewer")
        for c in room.values():
            c.heard()
    user = alice if who == "owner" else carol

    assert client.patch(f"/api/tasks/{task['id']}", json=body, headers=user.headers).status_code == status

    assert room["alice"].heard() == [] and room["bob"].heard() == []


def test_task_updated_stays_in_its_room(room, connect, client, alice, make_task, task):
    other_task = make_task(alice, "Other")
    elsewhere = connect(alice)
    elsewhere.join(other_task["id"])

    client.patch(f"/api/tasks/{task['id']}", json={"description": "more detail"}, headers=alice.headers)

    assert elsewhere.heard() == []
    assert [e["changes"] for e in room["bob"].events("task_updated")] == [["description"]]


# ---- member_changed: added, updated --------------------------------------------------------
def test_adding_a_member_sends_member_changed(room, client, alice, carol, task):
    response = client.post(f"/api/tasks/{task['id']}/members", json={"email": carol.email, "role": "commenter"},
                           headers=alice.headers)
    assert response.status_code == 201
    member = response.get_json()

    assert member["userId"] == carol.id and member["user"]["firstName"] == "Carol"
    for name in ("alice", "bob"):
        assert room[name].heard() == [
            ("member_changed", {"taskId": task["id"], "action": "added", "member": member})
        ], name
    assert room["idle"].heard() == []


def test_changing_a_role_sends_member_changed(room, client, alice, bob, task):
    response = client.patch(f"/api/tasks/{task['id']}/members/{bob.id}", json={"role": "viewer"},
                            headers=alice.headers)
    assert response.status_code == 200
    member = response.get_json()

    assert (member["userId"], member["role"], member["permissions"]["canComment"]) == (bob.id, "viewer", False)
    for name in ("alice", "bob"):
        assert room[name].heard() == [
            ("member_changed", {"taskId": task["id"], "action": "updated", "member": member})
        ], name


def test_a_new_role_takes_effect_for_a_socket_already_in_the_room(room, client, alice, bob, task):
    client.patch(f"/api/tasks/{task['id']}/members/{bob.id}", json={"role": "viewer"}, headers=alice.headers)
    for c in room.values():
        c.heard()

    ack = room["bob"].emit("send_message", {"taskId": task["id"], "message": "still allowed?"})

    assert ack["error"] == {"code": "forbidden", "message": "No permission to send messages"}
    assert room["alice"].heard() == []


def test_setting_the_same_role_sends_nothing(room, client, alice, bob, task):
    response = client.patch(f"/api/tasks/{task['id']}/members/{bob.id}", json={"role": "editor"},
                            headers=alice.headers)
    assert response.status_code == 200
    assert room["alice"].heard() == [] and room["bob"].heard() == []


@pytest.mark.parametrize("call", ["add by a non-owner", "add twice", "patch by a non-owner", "remove by a non-owner",
                                  "remove the last owner"])
def test_a_refused_membership_change_sends_nothing(room, client, alice, bob, carol, task, call):
    url = f"/api/tasks/{task['id']}/members"
    response = {
        "add by a non-owner":
            lambda: client.post(url, json={"userId": carol.id, "role": "viewer"}, headers=bob.headers),
        "add twice": lambda: client.post(url, json={"userId": bob.id, "role": "viewer"}, headers=alice.headers),
        "patch by a non-owner": lambda: client.patch(f"{url}/{alice.id}", json={"role": "viewer"},
                                                     headers=bob.headers),
        "remove by a non-owner": lambda: client.delete(f"{url}/{alice.id}", headers=bob.headers),
        "remove the last owner": lambda: client.delete(f"{url}/{alice.id}", headers=alice.headers),
    }[call]()

    assert response.status_code in (403, 409), response.get_json()
    assert room["alice"].heard() == [] and room["bob"].heard() == []


# ---- member_changed: removed ----------------------------------------------------------------
@pytest.mark.parametrize("remover", ["owner", "self"])
def test_a_removed_member_leaves_the_room_at_once(connect, client, alice, bob, carol, add_member, task, remover):
    add_member(alice, task, carol, "commenter")
    owner, witness = connect(alice), connect(carol, "/")
    bob_tasks, bob_root = connect(bob), connect(bob, "/")
    for c in (owner, witness, bob_tasks, bob_root):
        c.join(task["id"])
    for c in (owner, witness, bob_tasks, bob_root):
        c.heard()

    by = alice if remover == "owner" else bob
    assert client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=by.headers).status_code == 204

    for c in (owner, witness):
        received = c.heard()
        assert [name for name, _ in received] == ["member_changed", "user_left"]
        changed, left = received[0][1], received[1][1]
        assert (changed["taskId"], changed["action"]) == (task["id"], "removed")
        assert (changed["member"]["userId"], changed["member"]["role"]) == (bob.id, "editor")
        assert changed["member"]["user"]["firstName"] == "Bob"
        assert (left["taskId"], left["userId"], left["userName"]) == (task["id"], bob.id, "Bob Editor")
        assert_recent(left["timestamp"])
    # Each of Bob's sockets is told it was removed, and hears nothing else of the task.
    for bob_sock in (bob_tasks, bob_root):
        assert bob_sock.heard() == [("removed_from_task", {"taskId": task["id"]})], bob_sock.ns

    # Nothing more of the room reaches Bob's sockets, and they cannot act in it.
    owner.emit("send_message", {"taskId": task["id"], "message": "after Bob"})
    owner.emit("typing_start", {"taskId": task["id"]})
    client.patch(f"/api/tasks/{task['id']}", json={"title": "Without Bob"}, headers=alice.headers)
    assert bob_tasks.heard() == [] and bob_root.heard() == []

    assert bob_tasks.emit("typing_start", {"taskId": task["id"]})["error"]["code"] == "forbidden"
    assert bob_root.emit("send_message", {"taskId": task["id"], "message": "hello?"})["error"] == {
        "code": "forbidden", "message": "No access to this task"}
    refused = bob_tasks.emit("join_task", task["id"])["error"]
    assert refused == {"code": "forbidden", "message": "No access to this task"}
    assert [name for name, _ in witness.heard()] == ["new_message", "user_typing", "task_updated"]


def test_removing_a_member_who_was_not_in_the_room(room, connect, client, alice, carol, add_member, task):
    add_member(alice, task, carol, "viewer")
    carol_sock = connect(carol)  # connected, never joined
    for c in room.values():
        c.heard()

    assert client.delete(f"/api/tasks/{task['id']}/members/{carol.id}", headers=alice.headers).status_code == 204

    for name in ("alice", "bob"):
        [(event, payload)] = room[name].heard()
        assert (event, payload["action"], payload["member"]["userId"]) == ("member_changed", "removed", carol.id)
    # Told through her own user room, though she never joined the task's room; only that.
    assert carol_sock.heard() == [("removed_from_task", {"taskId": task["id"]})]


def test_a_removed_member_can_be_added_back_and_rejoin(connect, client, alice, bob, add_member, task):
    owner, bob_sock = connect(alice), connect(bob)
    owner.join(task["id"])
    bob_sock.join(task["id"])
    client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)
    add_member(alice, task, bob, "commenter")
    owner.heard()

    assert bob_sock.join(task["id"])["data"]["role"] == "commenter"
    owner.emit("send_message", {"taskId": task["id"], "message": "welcome back"})

    assert [e["message"]["message"] for e in bob_sock.events("new_message")] == ["welcome back"]


# ---- task_notification: task deleted ---------------------------------------------------------
def test_deleting_a_task_notifies_the_room_and_closes_it(room, client, alice, bob, task):
    assert client.delete(f"/api/tasks/{task['id']}", headers=alice.headers).status_code == 204

    for name in ("alice", "bob"):
        [(event, payload)] = room[name].heard()
        assert event == "task_notification", name
        assert set(payload) == {"type", "taskId", "title", "by", "timestamp"}
        assert (payload["type"], payload["taskId"], payload["title"], payload["by"]) == (
            "task_deleted", task["id"], task["title"], alice.id)
        assert_recent(payload["timestamp"])
    assert room["idle"].heard() == []

    # The room is closed: no typing from its former sockets, no rejoining, no user_left on disconnect.
    ack = room["bob"].emit("typing_start", {"taskId": task["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert room["bob"].emit("join_task", task["id"])["error"] == {"code": "forbidden",
                                                                   "message": "No access to this task"}
    room["bob"].sock.disconnect()
    assert room["alice"].heard() == []


def test_a_deleted_tasks_room_does_not_carry_over_to_a_new_task(room, client, alice, make_task, task):
    """SQLite hands a deleted task's id to the next task: its old sockets must not be in the new room."""
    client.delete(f"/api/tasks/{task['id']}", headers=alice.headers)
    for c in room.values():
        c.heard()
    new_task = make_task(alice, "Fresh start")  # Alice's alone; Bob is not a member
    listener = room["alice"]
    listener.join(new_task["id"])

    listener.emit("send_message", {"taskId": new_task["id"], "message": "private"})
    listener.emit("leave_task", new_task["id"])

    assert room["bob"].heard() == []
    assert [name for name, _ in listener.heard()] == ["new_message"]


@pytest.mark.parametrize("who", ["editor", "stranger"])
def test_a_refused_delete_sends_nothing(room, client, bob, carol, task, who):
    user = bob if who == "editor" else carol
    assert client.delete(f"/api/tasks/{task['id']}", headers=user.headers).status_code == 403
    assert room["alice"].heard() == [] and room["bob"].heard() == []


def test_deleting_one_task_leaves_the_other_rooms_alone(room, connect, client, alice, bob, make_task, add_member, task):
    other_task = make_task(alice, "Survivor")
    add_member(alice, other_task, bob, "commenter")
    survivor = connect(bob)
    survivor.join(other_task["id"])
    room["alice"].join(other_task["id"])
    survivor.heard()

    client.delete(f"/api/tasks/{task['id']}", headers=alice.headers)
    room["alice"].emit("send_message", {"taskId": other_task["id"], "message": "we carry on"})

    assert [name for name, _ in survivor.heard()] == ["new_message"]


# ---- new_message from REST -------------------------------------------------------------------
def test_posting_a_message_over_rest_reaches_the_room(room, client, alice, bob, task):
    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "  posted over REST  "},
                           headers=alice.headers)
    assert response.status_code == 201
    sent = response.get_json()
    assert sent["duplicate"] is False
    message = {k: v for k, v in sent.items() if k != "duplicate"}  # as the room and the history show it

    assert (message["message"], message["userId"]) == ("posted over REST", alice.id)
    for name in ("alice", "bob"):  # the poster's own socket in the room hears it too
        assert room[name].heard() == [("new_message", {"message": message, "taskId": task["id"]})], name
    assert room["idle"].heard() == []
    listed = client.get(f"/api/tasks/{task['id']}/messages", headers=bob.headers).get_json()["items"]
    assert listed == [message]


def test_a_rest_reply_reaches_the_room_with_its_reply_to(room, client, alice, bob, task):
    first = room["bob"].emit("send_message", {"taskId": task["id"], "message": "question"})["data"]
    room["alice"].heard()

    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "answer", "replyTo": first["id"]},
                           headers=alice.headers)

    [(event, payload)] = room["alice"].heard()
    assert payload["message"]["replyTo"] == first["id"] == response.get_json()["replyTo"]


@pytest.mark.parametrize("who, body, status", [
    ("viewer", {"message": "hi"}, 403),
    ("stranger", {"message": "hi"}, 403),
    ("owner", {"message": "   "}, 422),
    ("owner", {"message": "x" * 4001}, 422),
])
def test_a_refused_rest_message_sends_nothing(room, client, alice, carol, task, add_member, who, body, status):
    if who == "viewer":
        add_member(alice, task, carol, "viewer")
        for c in room.values():
            c.heard()
    user = alice if who == "owner" else carol

    response = client.post(f"/api/tasks/{task['id']}/messages", json=body, headers=user.headers)

    assert response.status_code == status, response.get_json()
    assert room["alice"].heard() == [] and room["bob"].heard() == []
