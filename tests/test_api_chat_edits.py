"""REST edits and soft deletes of chat messages: PATCH/DELETE /api/tasks/<id>/messages/<mid>,
GET …/<mid>/history, and the message_updated / message_deleted they send to the task's room."""
from __future__ import annotations

import pytest

from toolkit.chat import messages_url
from toolkit.rest import assert_error
from toolkit.sockets import NS, events


# ---- helpers -----------------------------------------------------------------------------------
def set_role(client, owner, task: dict, user, role: str) -> None:
    response = client.patch(f"/api/tasks/{task['id']}/members/{user.id}", json={"role": role}, headers=owner.headers)
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def room(room_of, alice, bob):
    """A socket of Alice's and one of Bob's in the task's room, their inboxes emptied."""
    return [peer.sock for peer in room_of(alice, bob)]


# ---- edit ------------------------------------------------------------------------------------
def test_author_edits_and_gets_the_new_state(task, alice, bob, chat):
    original = chat.message(task, bob, "Frist draft")
    chat.message(task, alice, "later message")

    changed = chat.edited(task, bob, original["id"], "  First draft  ")

    assert changed["id"] == original["id"]
    assert changed["message"] == "First draft", "the text is trimmed like a send"
    assert changed["editedAt"] is not None and changed["editedAt"].endswith("Z")
    assert changed["editedAt"] >= changed["createdAt"]
    assert original["editedAt"] is None
    # version is task-wide: the edit is newer than every state before it, the later message included
    listed = chat.history(task, alice, after=0)["items"]
    assert changed["version"] > max(m["version"] for m in listed if m["id"] != original["id"])
    unchanged = {"createdAt", "userId", "taskId", "previousId", "clientId", "replyTo", "user", "deleted"}
    assert {k: changed[k] for k in unchanged} == {k: original[k] for k in unchanged}
    assert next(m for m in chat.history(task, alice, after=0)["items"] if m["id"] == original["id"]) == changed


def test_every_edit_increases_the_version(task, bob, chat):
    message = chat.message(task, bob, "v1")
    seen = [message["version"]]
    for text in ("v2", "v3", "v4"):
        seen.append(chat.edited(task, bob, message["id"], text)["version"])
    assert seen == sorted(set(seen)), seen


@pytest.mark.parametrize("text", ["Same words", "  Same words \n"])
def test_editing_to_the_same_text_changes_nothing(task, room, bob, text, chat):
    message = chat.message(task, bob, "Same words")
    for sock in room:
        sock.get_received(NS)

    again = chat.edited(task, bob, message["id"], text)

    assert again == message, "no editedAt, no new version"
    assert len(chat.versions(task, bob, message["id"])["versions"]) == 1
    for sock in room:
        assert events(sock, "message_updated") == []


def test_only_the_author_may_edit_not_even_the_owner(task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "editor")
    message = chat.message(task, bob, "mine")

    for other in (alice, carol):
        assert_error(chat.edit(task, other, message["id"], "theirs"), 403, "forbidden")
    assert chat.history(task, bob, after=0)["items"][0]["message"] == "mine"


def test_author_demoted_to_viewer_can_no_longer_edit(client, task, alice, bob, chat):
    message = chat.message(task, bob, "said as editor")
    set_role(client, alice, task, bob, "viewer")

    assert_error(chat.edit(task, bob, message["id"], "changed as viewer"), 403, "forbidden")
    assert chat.history(task, bob, after=0)["items"][0]["message"] == "said as editor"


def test_editing_a_deleted_message_is_409(task, alice, bob, chat):
    message = chat.message(task, bob, "soon gone")
    chat.deleted(task, alice, message["id"])

    assert_error(chat.edit(task, bob, message["id"], "too late"), 409, "message_deleted")


@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"message": "  \n "}, {"message": "x" * 4001}, {"message": 5}, {"message": None},
     {"message": "nul\x00byte"}],
)
def test_edit_with_a_bad_body_is_422_and_changes_nothing(client, task, bob, body, chat):
    message = chat.message(task, bob, "kept")

    response = client.patch(messages_url(task, message["id"]), json=body, headers=bob.headers)

    assert "message" in assert_error(response, 422, "validation_error")["details"]
    assert chat.history(task, bob, after=0)["items"] == [message]


def test_edit_to_exactly_4000_characters_is_accepted(task, bob, chat):
    message = chat.message(task, bob, "short")
    assert chat.edited(task, bob, message["id"], "y" * 4000)["message"] == "y" * 4000


# ---- versions -------------------------------------------------------------------------------
def test_history_lists_every_version_oldest_first(task, alice, bob, chat):
    message = chat.message(task, bob, "one")
    second = chat.edited(task, bob, message["id"], "two")
    third = chat.edited(task, bob, message["id"], "three")

    body = chat.versions(task, alice, message["id"])  # any member may read it

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


def test_history_of_a_never_edited_message_is_the_message(task, bob, chat):
    message = chat.message(task, bob, "as sent")
    assert chat.versions(task, bob, message["id"])["versions"] == [
        {"message": "as sent", "writtenAt": message["createdAt"], "replacedAt": None}
    ]


def test_history_of_a_deleted_message_is_409(client, task, bob, chat):
    message = chat.message(task, bob, "v1")
    chat.edited(task, bob, message["id"], "v2")
    chat.deleted(task, bob, message["id"])

    response = client.get(messages_url(task, message["id"]) + "/history", headers=bob.headers)

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


def test_author_deletes_own_message(client, task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "commenter")
    message = chat.message(task, carol, "oops", mentions=[bob.id])
    client.post(messages_url(task, message["id"]) + "/reactions", json={"emoji": "👍"}, headers=bob.headers)

    tombstone = chat.deleted(task, carol, message["id"])

    assert_tombstone(tombstone, message)


def test_owner_deletes_someone_elses_message(task, alice, bob, chat):
    message = chat.message(task, bob, "off topic")
    assert_tombstone(chat.deleted(task, alice, message["id"]), message)


@pytest.mark.parametrize("role", ["editor", "commenter"])
def test_members_other_than_author_and_owner_may_not_delete(task, alice, carol, add_member, role, chat):
    add_member(alice, task, carol, role)
    message = chat.message(task, alice, "the owner's words")

    assert_error(chat.delete(task, carol, message["id"]), 403, "forbidden")
    assert chat.history(task, alice, after=0)["items"] == [message]


def test_a_viewer_author_may_still_delete_own_message(client, task, alice, bob, chat):
    # Deleting needs authorship (or ownership), not can_comment: taking back one's words stays possible.
    message = chat.message(task, bob, "regretted")
    set_role(client, alice, task, bob, "viewer")
    assert chat.deleted(task, bob, message["id"])["deleted"] is True


def test_tombstone_keeps_its_place_in_the_list(task, alice, bob, chat):
    first, middle, last = (chat.message(task, alice if i != 1 else bob, f"m{i}") for i in range(3))

    tombstone = chat.deleted(task, bob, middle["id"])

    assert [m["id"] for m in chat.history(task, alice, after=0)["items"]] == [first["id"], middle["id"], last["id"]]
    assert chat.history(task, alice, after=0)["items"][1] == tombstone
    assert chat.history(task, alice, after=0)["items"][2]["previousId"] == middle["id"], "the chain stays whole"


def test_deleting_twice_is_ok_and_silent(task, room, alice, bob, chat):
    message = chat.message(task, bob, "gone")
    first = chat.deleted(task, bob, message["id"])
    for sock in room:
        sock.get_received(NS)

    again = chat.deleted(task, alice, message["id"])

    assert again == first
    for sock in room:
        assert sock.get_received(NS) == []


def test_deleting_a_reply_parent_leaves_the_reply(task, alice, bob, chat):
    parent = chat.message(task, alice, "question")
    reply = chat.message(task, bob, "answer", replyTo=parent["id"])

    chat.deleted(task, alice, parent["id"])

    stored_reply = chat.history(task, bob, after=0)["items"][1]
    assert stored_reply["id"] == reply["id"] and stored_reply["message"] == "answer"
    assert stored_reply["replyTo"] == parent["id"]


# ---- broadcasts of REST changes --------------------------------------------------------------
def test_rest_edit_reaches_every_socket_in_the_room(client, task, room, socket, alice, bob, chat):
    outside = socket(alice)  # connected, never joined
    message = chat.message(task, bob, "before")
    client.post(messages_url(task, message["id"]) + "/reactions", json={"emoji": "🎉"}, headers=alice.headers)
    for sock in room:
        sock.get_received(NS)

    changed = chat.edited(task, bob, message["id"], "after")

    for sock in room:
        [payload] = events(sock, "message_updated")
        assert payload["taskId"] == task["id"]
        # One payload for everybody: reactions carry no viewer-relative `me`.
        assert payload["message"]["reactions"] == [{"emoji": "🎉", "count": 1, "userIds": [alice.id]}]
        assert {**payload["message"], "reactions": changed["reactions"]} == changed
    assert events(outside, "message_updated") == []


def test_rest_delete_reaches_every_socket_in_the_room(task, room, socket, alice, bob, chat):
    outside = socket(bob)
    message = chat.message(task, bob, "to remove")
    for sock in room:
        sock.get_received(NS)

    tombstone = chat.deleted(task, alice, message["id"])

    for sock in room:
        assert events(sock, "message_deleted") == [
            {"taskId": task["id"], "messageId": message["id"], "version": tombstone["version"], "deletedBy": alice.id,
             "message": tombstone}
        ]
    assert events(outside, "message_deleted") == []


def test_refused_changes_broadcast_nothing(task, room, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "commenter")
    message = chat.message(task, bob, "stays")
    for sock in room:
        sock.get_received(NS)

    chat.edit(task, alice, message["id"], "not yours")
    chat.edit(task, bob, message["id"], "   ")
    chat.delete(task, carol, message["id"])

    for sock in room:
        assert sock.get_received(NS) == []


# ---- who and which message -------------------------------------------------------------------
def request(client, method: str, task: dict, message_id: int, user):
    url = messages_url(task, message_id)
    if method == "edit":
        return client.patch(url, json={"message": "new"}, headers=user.headers)
    if method == "delete":
        return client.delete(url, headers=user.headers)
    return client.get(url + "/history", headers=user.headers)


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_non_member_is_403_like_for_any_task(client, task, bob, carol, method, chat):
    message = chat.message(task, bob, "private")

    response = request(client, method, task, message["id"], carol)

    assert_error(response, 403, "forbidden")
    assert chat.history(task, bob, after=0)["items"] == [message]


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_message_of_another_task_is_404(client, task, make_task, alice, method, chat):
    other_task = make_task(alice, "Other")
    elsewhere = chat.message(other_task, alice, "elsewhere")

    response = request(client, method, task, elsewhere["id"], alice)

    assert_error(response, 404, "not_found")
    assert chat.history(other_task, alice, after=0)["items"] == [elsewhere]


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
@pytest.mark.parametrize("message_id", [987654, 2**31 - 1, 2**31])
def test_unknown_message_is_404(client, task, alice, method, message_id):
    assert_error(request(client, method, task, message_id, alice), 404, "not_found")


@pytest.mark.parametrize("method", ["edit", "delete", "history"])
def test_no_token_is_401(client, task, alice, method, chat):
    message = chat.message(task, alice, "x")
    url = messages_url(task, message["id"])
    response = {"edit": lambda: client.patch(url, json={"message": "y"}),
                "delete": lambda: client.delete(url),
                "history": lambda: client.get(url + "/history")}[method]()
    assert response.status_code == 401


def test_a_deleted_messages_words_leave_the_activity_log(client, task, alice, bob, chat):
    message = chat.message(task, bob, "my secret plan")
    chat.edited(task, bob, message["id"], "my revised secret plan")
    kept = chat.message(task, bob, "this one stays")

    chat.deleted(task, bob, message["id"])

    log = client.get(f"/api/tasks/{task['id']}/activity", headers=alice.headers).get_json()["items"]
    chat_entries = {(e["entityId"], e["action"]): e for e in log if e["entityType"] == "task_chat"}
    assert set(chat_entries) == {
        (message["id"], "created"), (message["id"], "updated"), (message["id"], "deleted"), (kept["id"], "created"),
    }
    assert "secret" not in str(log)
    assert chat_entries[(kept["id"], "created")]["newValues"]["message"] == "this one stays"
