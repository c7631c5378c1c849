"""REST edits and soft deletes of chat messages: PATCH/DELETE /api/tasks/<id>/messages/<mid>,
GET …/<mid>/history, and the message_updated / message_deleted they send to the task's room."""
from __future__ import annotations

import pytest

from toolkit.rest import assert_error
from toolkit.sockets import NS, events

# ---- helpers -----------------------------------------------------------------------------------
def message_url(task: dict, message_id: int) -> str:
    return f"/api/tasks/{task['id']}/messages/{message_id}"


def sent(client, task: dict, user, text: str = "Hello", **extra) -> dict:
    """The stored message, without the send's own `duplicate` flag (lists do not carry it)."""
    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": text, **extra}, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    message = response.get_json()
    assert message.pop("duplicate") is False
    return message


def edit(client, task: dict, user, message_id: int, text):
    return client.patch(message_url(task, message_id), json={"message": text}, headers=user.headers)


def edited(client, task: dict, user, message_id: int, text: str) -> dict:
    response = edit(client, task, user, message_id, text)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def delete(client, task: dict, user, message_id: int):
    return client.delete(message_url(task, message_id), headers=user.headers)


def deleted(client, task: dict, user, message_id: int) -> dict:
    response = delete(client, task, user, message_id)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def versions(client, task: dict, user, message_id: int) -> dict:
    response = client.get(message_url(task, message_id) + "/history", headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def listed(client, task: dict, user) -> list[dict]:
    """The task's messages, oldest first."""
    response = client.get(f"/api/tasks/{task['id']}/messages", query_string={"after": 0}, headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def set_role(client, owner, task: dict, user, role: str) -> None:
    response = client.patch(f"/api/tasks/{task['id']}/members/{user.id}", json={"role": role}, headers=owner.headers)
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def room(room_of, alice, bob):
    """A socket of Alice's and one of Bob's in the task's room, their inboxes emptied."""
    return [peer.sock for peer in room_of(alice, bob)]


# ---- edit ------------------------------------------------------------------------------------
def test_author_edits_and_gets_the_new_state(client, task, alice, bob):
    original = sent(client, task, bob, "Frist draft")
    sent(client, task, alice, "later message")

    changed = edited(client, task, bob, original["id"], "  First draft  ")

    assert changed["id"] == original["id"]
    assert changed["message"] == "First draft", "the text is trimmed like a send"
    assert changed["editedAt"] is not None and changed["editedAt"].endswith("Z")
    assert changed["editedAt"] >= changed["createdAt"]
    assert original["editedAt"] is None
    # version is task-wide: the edit is newer than every state before it, the later message included
    assert changed["version"] > max(m["version"] for m in listed(client, task, alice) if m["id"] != original["id"])
    unchanged = {"createdAt", "userId", "taskId", "previousId", "clientId", "replyTo", "user", "deleted"}
    assert {k: changed[k] for k in unchanged} == {k: original[k] for k in unchanged}
    assert next(m for m in listed(client, task, alice) if m["id"] == original["id"]) == changed


def test_every_edit_increases_the_version(client, task, bob):
    message = sent(client, task, bob, "v1")
    seen = [message["version"]]
    for text in ("v2", "v3", "v4"):
        seen.append(edited(client, task, bob, message["id"], text)["version"])
    assert seen == sorted(set(seen)), seen


@pytest.mark.parametrize("text", ["Same words", "  Same words \n"])
def test_editing_to_the_same_text_changes_nothing(client, task, room, bob, text):
    message = sent(client, task, bob, "Same words")
    for sock in room:
        sock.get_received(NS)

    again = edited(client, task, bob, message["id"], text)

    assert again == message, "no editedAt, no new version"
    assert len(versions(client, task, bob, message["id"])["versions"]) == 1
    for sock in room:
        assert events(sock, "message_updated") == []


def test_only_the_author_may_edit_not_even_the_owner(client, task, alice, bob, carol, add_member):
    add_member(alice, task, carol, "editor")
    message = sent(client, task, bob, "mine")

    for other in (alice, carol):
        assert_error(edit(client, task, other, message["id"], "theirs"), 403, "forbidden")
    assert listed(client, task, bob)[0]["message"] == "mine"


def test_author_demoted_to_viewer_can_no_longer_edit(client, task, alice, bob):
    message = sent(client, task, bob, "said as editor")
    set_role(client, alice, task, bob, "viewer")

    assert_error(edit(client, task, bob, message["id"], "changed as viewer"), 403, "forbidden")
    assert listed(client, task, bob)[0]["message"] == "said as editor"


def test_editing_a_deleted_message_is_409(client, task, alice, bob):
    message = sent(client, task, bob, "soon gone")
    deleted(client, task, alice, message["id"])

    assert_error(edit(client, task, bob, message["id"], "too late"), 409, "message_deleted")


@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"message": "  \n "}, {"message": "x" * 4001}, {"message": 5}, {"message": None},
     {"message": "nul\x00byte"}],
)
def test_edit_with_a_bad_body_is_422_and_changes_nothing(client, task, bob, body):
    message = sent(client, task, bob, "kept")

    response = client.patch(message_url(task, message["id"]), json=body, headers=bob.headers)

    assert "message" in assert_error(response, 422, "validation_error")["details"]
    assert listed(client, task, bob) == [message]


def test_edit_to_exactly_4000_characters_is_accepted(client, task, bob):
    message = sent(client, task, bob, "short")
    assert edited(client, task, bob, message["id"], "y" * 4000)["message"] == "y" * 4000


# ---- versions -------------------------------------------------------------------------------
def test_history_lists_every_version_oldest_first(client, task, alice, bob):
    message = sent(client, task, bob, "one")
    second = edited(client, task, bob, message["id"], "two")
    third = edited(client, task, bob, message["id"], "three")

    body = versions(client, task, alice, message["id"])  # any member may read it

    assert body["messageId"] == message["id"]
    assert [v["message"] for v in body["versions"]] == ["one", "two", "three"]
    first_v, second_v, current = body["versions"]
    assert set(first_v) == {"message", "writtenAt", "replacedAt"}
    assert first_v["writtenAt"] == message["createdAt"]
    assert second_v["writtenAt"] == second["editedAt"]
    assert current["writtenAt"] == third["editedAt"]
    assert current["replacedAt"] is None
    assert first_v["replacedAt"] is not None and second_v["replacedAt"] is not None
    assert first_v["writtenAt"] <= first_v["replacedAt"] <= second_v["replacedAt"]


def test_history_of_a_never_edited_message_is_the_message(client, task, bob):
    message = sent(client, task, bob, "as sent")
    assert versions(client, task, bob, message["id"])["versions"] == [
        {"message": "as sent", "writtenAt": message["createdAt"], "replacedAt": None}
    ]


def test_history_of_a_deleted_message_is_409(client, task, bob):
    message = sent(client, task, bob, "v1")
    edited(client, task, bob, message["id"], "v2")
    deleted(client, task, bob, message["id"])

    response = client.get(message_url(task, message["id"]) + "/history", headers=bob.headers)

    assert_error(response, 409, "message_deleted")


# ---- delete ---------------------------------------------------------------------------------
def assert_tombstone(message: dict, original: dict) -> None:
    assert message["deleted"] is True
    assert message["message"] is None
    assert (message["attachments"], message["reactions"], message["mentions"]) == ([], [], [])
    assert message["deletedAt"] is not None and message["deletedAt"].endswith("Z")
    assert message["version"] > original["version"]
    same = ("id", "taskId", "userId", "createdAt", "previousId", "user")
    assert {k: message[k] for k in same} == {k: original[k] for k in same}


def test_author_deletes_own_message(client, task, alice, bob, carol, add_member):
    add_member(alice, task, carol, "commenter")
    message = sent(client, task, carol, "oops", mentions=[bob.id])
    client.post(message_url(task, message["id"]) + "/reactions", json={"emoji": "👍"}, headers=bob.headers)

    tombstone = deleted(client, task, carol, message["id"])

    assert_tombstone(tombstone, message)


def test_owner_deletes_someone_elses_message(client, task, alice, bob):
    message = sent(client, task, bob, "off topic")
    assert_tombstone(deleted(client, task, alice, message["id"]), message)


@pytest.mark.parametrize("role", ["editor", "commenter"])
def test_members_other_than_author_and_owner_may_not_delete(client, task, alice, carol, add_member, role):
    add_member(alice, task, carol, role)
    message = sent(client, task, alice, "the owner's words")

    assert_error(delete(client, task, carol, message["id"]), 403, "forbidden")
    assert listed(client, task, alice) == [message]


def test_a_viewer_author_may_still_delete_own_message(client, task, alice, bob):
    # Deleting needs authorship (or ownership), not can_comment: taking back one's words stays possible.
    message = sent(client, task, bob, "regretted")
    set_role(client, alice, task, bob, "viewer")
    assert deleted(client, task, bob, message["id"])["deleted"] is True


def test_tombstone_keeps_its_place_in_the_list(client, task, alice, bob):
    first, middle, last = (sent(client, task, alice if i != 1 else bob, f"m{i}") for i in range(3))

    tombstone = deleted(client, task, bob, middle["id"])

    assert [m["id"] for m in listed(client, task, alice)] == [first["id"], middle["id"], last["id"]]
    assert listed(client, task, alice)[1] == tombstone
    assert listed(client, task, alice)[2]["previousId"] == middle["id"], "the chain stays whole"


def test_deleting_twice_is_ok_and_silent(client, task, room, alice, bob):
    message = sent(client, task, bob, "gone")
    first = deleted(client, task, bob, message["id"])
    for sock in room:
        sock.get_received(NS)

    again = deleted(client, task, alice, message["id"])

    assert again == first
    for sock in room:
        assert sock.get_received(NS) == []


def test_deleting_a_reply_parent_leaves_the_reply(client, task, alice, bob):
    parent = sent(client, task, alice, "question")
    reply = sent(client, task, bob, "answer", replyTo=parent["id"])

    deleted(client, task, alice, parent["id"])

    stored_reply = listed(client, task, bob)[1]
    assert stored_reply["id"] == reply["id"] and stored_reply["message"] == "answer"
    assert stored_reply["replyTo"] == parent["id"]


# ---- broadcasts of REST changes --------------------------------------------------------------
def test_rest_edit_reaches_every_socket_in_the_room(client, task, room, socket, alice, bob):
    outside = socket(alice)  # connected, never joined
    message = sent(client, task, bob, "before")
    client.post(message_url(task, message["id"]) + "/reactions", json={"emoji": "🎉"}, headers=alice.headers)
    for sock in room:
        sock.get_received(NS)

    changed = edited(client, task, bob, message["id"], "after")

    for sock in room:
        [payload] = events(sock, "message_updated")
        assert payload["taskId"] == task["id"]
        # One payload for everybody: reactions carry no viewer-relative `me`.
        assert payload["message"]["reactions"] == [{"emoji": "🎉", "count": 1, "userIds": [alice.id]}]
        assert {**payload["message"], "reactions": changed["reactions"]} == changed
    assert events(outside, "message_updated") == []


def test_rest_delete_reaches_every_socket_in_the_room(client, task, room, socket, alice, bob):
    outside = socket(bob)
    message = sent(client, task, bob, "to remove")
    for sock in room:
        sock.get_received(NS)

    tombstone = deleted(client, task, alice, message["id"])

    for sock in room:
        assert events(sock, "message_deleted") == [
            {"taskId": task["id"], "messageId": message["id"], "version": tombstone["version"], "deletedBy": alice.id,
             "message": tombstone}
        ]
    assert events(outside, "message_deleted") == []


def test_refused_changes_broadcast_nothing(client, task, room, alice, bob, carol, add_member):
    add_member(alice, task, carol, "commenter")
    message = sent(client, task, bob, "stays")
    for sock in room:
        sock.get_received(NS)

    edit(client, task, alice, message["id"], "not yours")
    edit(client, task, bob, message["id"], "   ")
    delete(client, task, carol, message["id"])

    for sock in room:
        assert sock.get_received(NS) == []


# ---- who and which message -------------------------------------------------------------------
def request(client, method: str, task: dict, message_id: int, user):
    url = message_url(task, message_id)
    if method == "edit":
        return client.patch(url, json={"message": "new"}, headers=user.headers)
    if method == "delete":
        return client.delete(url, headers=user.headers)
    return client.get(url + "/history", headers=user.headers)


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_non_member_is_403_like_for_any_task(client, task, bob, carol, method):
    message = sent(client, task, bob, "private")

    response = request(client, method, task, message["id"], carol)

    assert_error(response, 403, "forbidden")
    assert listed(client, task, bob) == [message]


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_message_of_another_task_is_404(client, task, make_task, alice, method):
    other_task = make_task(alice, "Other")
    elsewhere = sent(client, other_task, alice, "elsewhere")

    response = request(client, method, task, elsewhere["id"], alice)

    assert_error(response, 404, "not_found")
    assert listed(client, other_task, alice) == [elsewhere]


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
@pytest.mark.parametrize("message_id", [987654, 2**31 - 1, 2**31])
def test_unknown_message_is_404(client, task, alice, method, message_id):
    assert_error(request(client, method, task, message_id, alice), 404, "not_found")


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_no_token_is_401(client, task, alice, method):
    message = sent(client, task, alice, "x")
    url = message_url(task, message["id"])
    response = {"edit": lambda: client.patch(url, json={"message": "y"}),
                "delete": lambda: client.delete(url),
                "history": lambda: client.get(url + "/history")}[method]()
    assert response.status_code == 401


def test_a_deleted_messages_words_leave_the_activity_log(client, task, alice, bob):
    message = sent(client, task, bob, "my secret plan")
    edited(client, task, bob, message["id"], "my revised secret plan")
    kept = sent(client, task, bob, "this one stays")

    deleted(client, task, bob, message["id"])

    log = client.get(f"/api/tasks/{task['id']}/activity", headers=alice.headers).get_json()["items"]
    chat_entries = {(e["entityId"], e["action"]): e for e in log if e["entityType"] == "task_chat"}
    assert set(chat_entries) == {
        (message["id"], "created"), (message["id"], "updated"), (message["id"], "deleted"), (kept["id"], "created"),
    }
    assert "secret" not in str(log)
    assert chat_entries[(kept["id"], "created")]["newValues"]["message"] == "this one stays"
