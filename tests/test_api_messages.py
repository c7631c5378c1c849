"""REST: /api/tasks/<id>/messages (send, page back) and /api/tasks/<id>/activity."""
from __future__ import annotations

import pytest

from toolkit.chat import messages_url
from toolkit.rest import assert_error
from toolkit.sockets import events
from toolkit.wire import ATTACHMENT_KEYS, MESSAGE_KEYS, PAGE_KEYS, SENT_KEYS, without_duplicate

ACTIVITY_KEYS = {"id", "userId", "action", "entityType", "entityId", "taskId", "oldValues", "newValues",
                 "description", "createdAt"}


def activity(client, task: dict, user, **query) -> list[dict]:
    response = client.get(f"/api/tasks/{task['id']}/activity", query_string=query, headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


# ---- send -----------------------------------------------------------------------
def test_send_returns_201_and_the_message(task, bob, chat):
    response = chat.send(task, bob, "  Hello team  ")

    assert response.status_code == 201
    message = response.get_json()
    assert set(message) == SENT_KEYS
    assert type(message["id"]) is int
    assert message["taskId"] == task["id"] and type(message["taskId"]) is int
    assert message["userId"] == bob.id and type(message["userId"]) is int
    assert message["message"] == "Hello team"
    assert message["attachments"] == []
    assert message["replyTo"] is None and message["replyPreview"] is None
    assert (message["mentions"], message["reactions"]) == ([], [])
    assert message["clientId"] is None
    assert message["previousId"] is None, "the task's first message follows nothing"
    assert type(message["version"]) is int and message["version"] >= 1
    assert message["createdAt"].endswith("Z")
    assert (message["editedAt"], message["deleted"], message["deletedAt"]) == (None, False, None)
    assert message["duplicate"] is False
    assert message["user"] == {"id": bob.id, "firstName": "Bob", "lastName": "Editor"}


def test_send_links_each_message_to_the_previous_one(task, alice, bob, chat):
    first = chat.sent(task, alice, "one")
    second = chat.sent(task, bob, "two")

    assert second["previousId"] == first["id"]
    assert second["version"] > first["version"]


def test_send_keeps_uploaded_attachments_and_reply(task, alice, bob, chat):
    first = chat.sent(task, alice, "Question?")
    pdf = chat.uploaded(task, bob, b"%PDF-1.4 plan", "plan.pdf")
    note = chat.uploaded(task, bob, b"remember", "note.txt")

    reply = chat.sent(task, bob, "Answer", attachments=[pdf["id"], note["id"]], replyTo=first["id"])

    assert set(pdf) == ATTACHMENT_KEYS
    assert (pdf["name"], pdf["size"], pdf["mimeType"]) == ("plan.pdf", len(b"%PDF-1.4 plan"), "application/pdf")
    assert (note["name"], note["mimeType"]) == ("note.txt", "text/plain")
    assert reply["attachments"] == [pdf, note], "in the order sent, as the uploads described them"
    assert reply["replyTo"] == first["id"]
    assert reply["replyPreview"] == {
        "messageId": first["id"], "userId": alice.id, "userName": "Alice Owner", "excerpt": "Question?",
        "deleted": False,
    }
    assert chat.history(task, alice)["items"][0] == without_duplicate(reply)


@pytest.mark.parametrize("legacy", [
    ["plain"],
    [{"name": "a.png", "url": "https://example.com/a.png"}],
    [{"name": "a.png", "url": "https://example.com/a.png"}, "plain"],
], ids=["a string", "an object", "both"])
def test_send_legacy_attachments_are_now_a_validation_error(task, alice, legacy, chat):
    """Attachments used to be any strings or objects; now they are upload ids only."""
    error = assert_error(chat.send(task, alice, "files", attachments=legacy), 422, "validation_error")

    assert "attachments" in error["details"]
    assert chat.history(task, alice)["items"] == []


def test_send_null_attachments_means_none(task, alice, chat):
    assert chat.sent(task, alice, attachments=None)["attachments"] == []


def test_send_message_of_exactly_4000_characters_is_accepted(task, alice, chat):
    assert len(chat.sent(task, alice, "x" * 4000)["message"]) == 4000


@pytest.mark.parametrize(
    "body, field",
    [
        ({"message": ""}, "message"),
        ({"message": "   \n\t "}, "message"),
        ({"message": "x" * 4001}, "message"),
        ({}, "message"),
        ({"message": 12}, "message"),
        ({"message": "hi", "attachments": "file"}, "attachments"),
        ({"message": "hi", "attachments": list(range(1, 12))}, "attachments"),
        ({"message": "hi", "attachments": [123456]}, "attachments"),
        ({"message": "hi", "replyTo": "first"}, "replyTo"),
        ({"message": "hi", "replyTo": 99999999999}, "replyTo"),
    ],
)
def test_send_invalid_body_is_422_and_stores_nothing(client, task, alice, body, field, chat):
    response = client.post(messages_url(task), json=body, headers=alice.headers)

    error = assert_error(response, 422, "validation_error")
    assert field in error["details"]
    assert chat.history(task, alice)["items"] == []


def test_send_reply_to_a_message_of_another_task_is_422(task, alice, make_task, chat):
    other_task = make_task(alice, "Other")
    elsewhere = chat.sent(other_task, alice, "elsewhere")

    error = assert_error(chat.send(task, alice, "reply", replyTo=elsewhere["id"]), 422, "validation_error")

    assert "replyTo" in error["details"]
    assert chat.history(task, alice)["items"] == []


def test_send_reply_to_a_missing_message_is_422(task, alice, chat):
    error = assert_error(chat.send(task, alice, "reply", replyTo=123456), 422, "validation_error")
    assert "replyTo" in error["details"]


def test_viewer_cannot_send(alice, carol, make_task, add_member, chat):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")

    assert_error(chat.send(task, carol), 403, "forbidden")
    assert chat.history(task, carol)["items"] == []


def test_commenter_can_send(alice, carol, make_task, add_member, chat):
    task = make_task(alice)
    add_member(alice, task, carol, "commenter")
    assert chat.sent(task, carol)["userId"] == carol.id


def test_non_member_and_missing_task_get_the_same_403_on_send(task, carol, chat):
    not_mine = chat.send(task, carol)
    missing = chat.send({"id": task["id"] + 1000}, carol)

    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


def test_send_broadcasts_new_message_to_the_room(socket, task, alice, bob, chat):
    sock = socket(bob)
    assert sock.emit("join_task", task["id"], namespace="/tasks", callback=True)["ok"]
    sock.get_received("/tasks")

    message = chat.sent(task, alice, "  over REST ")

    [payload] = events(sock, "new_message")
    assert payload == {"message": without_duplicate(message), "taskId": task["id"]}


def test_refused_send_broadcasts_nothing(socket, task, alice, carol, chat):
    sock = socket(alice)
    assert sock.emit("join_task", task["id"], namespace="/tasks", callback=True)["ok"]
    sock.get_received("/tasks")

    chat.send(task, carol)
    chat.send(task, alice, "   ")

    assert events(sock, "new_message") == []


# ---- history --------------------------------------------------------------------
def test_history_is_newest_first_in_pages(task, alice, bob, chat):
    ids = [chat.sent(task, alice if i % 2 else bob, f"m{i}")["id"] for i in range(7)]

    first = chat.history(task, bob, limit=3)
    second = chat.history(task, bob, limit=3, before=first["items"][-1]["id"])
    third = chat.history(task, bob, limit=3, before=second["items"][-1]["id"])

    assert [m["id"] for m in first["items"]] == ids[:-4:-1]
    assert [m["message"] for m in first["items"]] == ["m6", "m5", "m4"]
    assert first["hasMore"] is True
    assert [m["id"] for m in second["items"]] == [ids[3], ids[2], ids[1]]
    assert second["hasMore"] is True
    assert [m["id"] for m in third["items"]] == [ids[0]]
    assert third["hasMore"] is False
    for page in (first, second, third):
        assert set(page) == PAGE_KEYS
        # Only an `around` page says which side has more.
        assert (page["hasMoreBefore"], page["hasMoreAfter"]) == (None, None)
    assert set(first["items"][0]) == MESSAGE_KEYS


def test_history_exactly_one_full_page_has_no_more(task, alice, chat):
    for i in range(3):
        chat.sent(task, alice, f"m{i}")
    page = chat.history(task, alice, limit=3)
    assert len(page["items"]) == 3
    assert page["hasMore"] is False


def test_history_defaults_to_50(task, alice, chat):
    for i in range(52):
        chat.sent(task, alice, f"m{i}")
    page = chat.history(task, alice)
    assert len(page["items"]) == 50
    assert page["hasMore"] is True


def test_history_holds_only_this_tasks_messages(task, alice, make_task, chat):
    other = make_task(alice, "Other")
    chat.sent(other, alice, "elsewhere")
    mine = chat.sent(task, alice, "here")
    assert [m["id"] for m in chat.history(task, alice)["items"]] == [mine["id"]]


def test_viewer_may_read_history(alice, carol, make_task, add_member, chat):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")
    chat.sent(task, alice, "for all")
    assert [m["message"] for m in chat.history(task, carol)["items"]] == ["for all"]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "last"}, "before"),
        ({"before": 0}, "before"),
        ({"before": 99999999999}, "before"),
        ({"after": -1}, "after"),
        ({"around": 0}, "around"),
        ({"before": 5, "after": 1}, "_schema"),  # one cursor at most
        ({"after": 1, "around": 5}, "_schema"),
    ],
)
def test_history_bad_paging_is_422(client, task, alice, query, field):
    response = client.get(messages_url(task), query_string=query, headers=alice.headers)
    error = assert_error(response, 422, "validation_error")
    assert field in error["details"]


def test_history_limit_of_100_is_accepted(task, alice, chat):
    assert chat.history(task, alice, limit=100)["items"] == []


def test_history_non_member_and_missing_task_get_the_same_403(client, task, carol):
    not_mine = client.get(messages_url(task), headers=carol.headers)
    missing = client.get(f"/api/tasks/{task['id'] + 1000}/messages", headers=carol.headers)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


@pytest.mark.parametrize("method", ["get", "post"])
def test_messages_on_huge_task_ids_are_404(client, alice, method):
    response = getattr(client, method)("/api/tasks/99999999999/messages", json={"message": "x"}, headers=alice.headers)
    assert_error(response, 404, "not_found")


# ---- activity -------------------------------------------------------------------
def test_activity_records_every_message(client, task, alice, bob, chat):
    first = chat.sent(task, alice, "one")
    second = chat.sent(task, bob, "two", replyTo=first["id"])

    chat_rows = [row for row in activity(client, task, alice) if row["entityType"] == "task_chat"]

    assert [(r["action"], r["entityId"], r["userId"], r["taskId"]) for r in chat_rows] == [
        ("created", second["id"], bob.id, task["id"]),
        ("created", first["id"], alice.id, task["id"]),
    ]
    assert all(type(r["entityId"]) is int and type(r["id"]) is int for r in chat_rows)
    assert set(chat_rows[0]) == ACTIVITY_KEYS
    assert chat_rows[0]["newValues"]["replyTo"] == first["id"]


def test_activity_records_task_create_and_update(client, alice, make_task):
    task = make_task(alice, "Draft")
    client.patch(f"/api/tasks/{task['id']}", json={"title": "Final", "status": "done"}, headers=alice.headers)

    updated, created = activity(client, task, alice)

    assert (created["action"], created["entityType"], created["entityId"]) == ("created", "task", task["id"])
    assert created["userId"] == alice.id
    assert created["newValues"]["title"] == "Draft"
    assert (updated["action"], updated["entityType"], updated["entityId"]) == ("updated", "task", task["id"])
    assert updated["oldValues"] == {"title": "Draft", "status": "todo"}
    assert updated["newValues"] == {"title": "Final", "status": "done"}


def test_activity_skips_a_patch_that_changes_nothing(client, alice, make_task):
    task = make_task(alice, "Same")
    client.patch(f"/api/tasks/{task['id']}", json={"title": "Same"}, headers=alice.headers)
    assert [r["action"] for r in activity(client, task, alice)] == ["created"]


def test_activity_records_member_changes(client, alice, bob, make_task, add_member):
    task = make_task(alice)
    add_member(alice, task, bob, "viewer")
    client.patch(f"/api/tasks/{task['id']}/members/{bob.id}", json={"role": "editor"}, headers=alice.headers)
    client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)

    rows = [r for r in activity(client, task, alice) if r["entityType"] == "task_member"]

    assert [(r["action"], r["entityId"], r["userId"]) for r in rows] == [
        ("member_removed", bob.id, alice.id),
        ("member_updated", bob.id, alice.id),
        ("member_added", bob.id, alice.id),
    ]
    assert rows[1]["oldValues"] == {"role": "viewer"} and rows[1]["newValues"] == {"role": "editor"}


def test_activity_records_nothing_for_refused_changes(client, register, alice, carol, make_task, add_member, chat):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")
    stranger = register("Dave", "Stranger")
    before = activity(client, task, alice)

    chat.send(task, stranger, "not a member")
    chat.send(task, carol, "not allowed")
    chat.send(task, alice, "   ")
    client.patch(f"/api/tasks/{task['id']}", json={"title": "nope"}, headers=carol.headers)
    client.post(f"/api/tasks/{task['id']}/members", json={"userId": carol.id, "role": "owner"}, headers=alice.headers)
    client.delete(f"/api/tasks/{task['id']}/members/{alice.id}", headers=alice.headers)

    assert activity(client, task, alice) == before


def test_activity_is_for_members_only(client, task, alice, bob, carol):
    assert activity(client, task, bob)  # an editor reads it
    not_mine = client.get(f"/api/tasks/{task['id']}/activity", headers=carol.headers)
    missing = client.get(f"/api/tasks/{task['id'] + 1000}/activity", headers=carol.headers)
    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


def test_activity_pages_newest_first(client, task, alice, chat):
    for i in range(4):
        chat.sent(task, alice, f"m{i}")
    everything = activity(client, task, alice)

    response = client.get(f"/api/tasks/{task['id']}/activity", query_string={"limit": 2}, headers=alice.headers)
    page = response.get_json()
    older = client.get(f"/api/tasks/{task['id']}/activity",
                       query_string={"limit": 2, "before": page["items"][-1]["id"]}, headers=alice.headers).get_json()

    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    assert [r["id"] for r in page["items"] + older["items"]] == [r["id"] for r in everything[:4]]
    assert page["hasMore"] is True
    assert_error(client.get(f"/api/tasks/{task['id']}/activity", query_string={"limit": 101},
                            headers=alice.headers), 422, "validation_error")
