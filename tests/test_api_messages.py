"""REST: /api/tasks/<id>/messages (send, page back) and /api/tasks/<id>/activity."""
from __future__ import annotations

import io

import pytest

from toolkit.rest import assert_error
from toolkit.sockets import events

MESSAGE_KEYS = {
    "id", "taskId", "userId", "message", "attachments", "replyTo", "replyPreview", "mentions", "reactions",
    "clientId", "previousId", "version", "createdAt", "editedAt", "deleted", "deletedAt", "user",
}
SENT_KEYS = MESSAGE_KEYS | {"duplicate"}  # the answer to a send says whether it was a retry
PAGE_KEYS = {"items", "hasMore", "hasMoreBefore", "hasMoreAfter"}
ATTACHMENT_KEYS = {"id", "name", "size", "mimeType", "url"}
ACTIVITY_KEYS = {"id", "userId", "action", "entityType", "entityId", "taskId", "oldValues", "newValues",
                 "description", "createdAt"}


def messages_url(task: dict) -> str:
    return f"/api/tasks/{task['id']}/messages"


def send(client, task: dict, user, text: str = "Hello", **extra):
    return client.post(messages_url(task), json={"message": text, **extra}, headers=user.headers)


def sent(client, task: dict, user, text: str = "Hello", **extra) -> dict:
    response = send(client, task, user, text, **extra)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored_form(sent_message: dict) -> dict:
    """A send's answer as history and broadcasts show it: without `duplicate`."""
    assert "duplicate" in sent_message, sent_message
    return {k: v for k, v in sent_message.items() if k != "duplicate"}


def upload(client, task: dict, user, name: str = "plan.pdf", data: bytes = b"%PDF-1.4 plan") -> dict:
    """Upload a file to the task: what a message's `attachments` then names by id."""
    response = client.post(f"/api/tasks/{task['id']}/attachments", data={"file": (io.BytesIO(data), name)},
                           headers=user.headers, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def history(client, task: dict, user, **query) -> dict:
    response = client.get(messages_url(task), query_string=query, headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def activity(client, task: dict, user, **query) -> list[dict]:
    response = client.get(f"/api/tasks/{task['id']}/activity", query_string=query, headers=user.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


# ---- send -----------------------------------------------------------------------
def test_send_returns_201_and_the_message(client, task, bob):
    response = send(client, task, bob, "  Hello team  ")

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


def test_send_links_each_message_to_the_previous_one(client, task, alice, bob):
    first = sent(client, task, alice, "one")
    second = sent(client, task, bob, "two")

    assert second["previousId"] == first["id"]
    assert second["version"] > first["version"]


def test_send_keeps_uploaded_attachments_and_reply(client, task, alice, bob):
    first = sent(client, task, alice, "Question?")
    pdf = upload(client, task, bob, "plan.pdf", b"%PDF-1.4 plan")
    note = upload(client, task, bob, "note.txt", b"remember")

    reply = sent(client, task, bob, "Answer", attachments=[pdf["id"], note["id"]], replyTo=first["id"])

    assert set(pdf) == ATTACHMENT_KEYS
    assert (pdf["name"], pdf["size"], pdf["mimeType"]) == ("plan.pdf", len(b"%PDF-1.4 plan"), "application/pdf")
    assert (note["name"], note["mimeType"]) == ("note.txt", "text/plain")
    assert reply["attachments"] == [pdf, note], "in the order sent, as the uploads described them"
    assert reply["replyTo"] == first["id"]
    assert reply["replyPreview"] == {
        "messageId": first["id"], "userId": alice.id, "userName": "Alice Owner", "excerpt": "Question?",
        "deleted": False,
    }
    assert history(client, task, alice)["items"][0] == stored_form(reply)


@pytest.mark.parametrize("legacy", [
    ["plain"],
    [{"name": "a.png", "url": "https://example.com/a.png"}],
    [{"name": "a.png", "url": "https://example.com/a.png"}, "plain"],
], ids=["a string", "an object", "both"])
def test_send_legacy_attachments_are_now_a_validation_error(client, task, alice, legacy):
    """Attachments used to be any strings or objects; now they are upload ids only."""
    error = assert_error(send(client, task, alice, "files", attachments=legacy), 422, "validation_error")

    assert "attachments" in error["details"]
    assert history(client, task, alice)["items"] == []


def test_send_null_attachments_means_none(client, task, alice):
    assert sent(client, task, alice, attachments=None)["attachments"] == []


def test_send_message_of_exactly_4000_characters_is_accepted(client, task, alice):
    assert len(sent(client, task, alice, "x" * 4000)["message"]) == 4000


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
def test_send_invalid_body_is_422_and_stores_nothing(client, task, alice, body, field):
    response = client.post(messages_url(task), json=body, headers=alice.headers)

    error = assert_error(response, 422, "validation_error")
    assert field in error["details"]
    assert history(client, task, alice)["items"] == []


def test_send_reply_to_a_message_of_another_task_is_422(client, task, alice, make_task):
    other_task = make_task(alice, "Other")
    elsewhere = sent(client, other_task, alice, "elsewhere")

    error = assert_error(send(client, task, alice, "reply", replyTo=elsewhere["id"]), 422, "validation_error")

    assert "replyTo" in error["details"]
    assert history(client, task, alice)["items"] == []


def test_send_reply_to_a_missing_message_is_422(client, task, alice):
    error = assert_error(send(client, task, alice, "reply", replyTo=123456), 422, "validation_error")
    assert "replyTo" in error["details"]


def test_viewer_cannot_send(client, alice, carol, make_task, add_member):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")

    assert_error(send(client, task, carol), 403, "forbidden")
    assert history(client, task, carol)["items"] == []


def test_commenter_can_send(client, alice, carol, make_task, add_member):
    task = make_task(alice)
    add_member(alice, task, carol, "commenter")
    assert sent(client, task, carol)["userId"] == carol.id


def test_non_member_and_missing_task_get_the_same_403_on_send(client, task, carol):
    not_mine = send(client, task, carol)
    missing = send(client, {"id": task["id"] + 1000}, carol)

    assert_error(not_mine, 403, "forbidden")
    assert not_mine.get_json() == missing.get_json()


def test_send_broadcasts_new_message_to_the_room(client, socket, task, alice, bob):
    sock = socket(bob)
    assert sock.emit("join_task", task["id"], namespace="/tasks", callback=True)["ok"]
    sock.get_received("/tasks")

    message = sent(client, task, alice, "  over REST ")

    [payload] = events(sock, "new_message")
    assert payload == {"message": stored_form(message), "taskId": task["id"]}


def test_refused_send_broadcasts_nothing(client, socket, task, alice, carol):
    sock = socket(alice)
    assert sock.emit("join_task", task["id"], namespace="/tasks", callback=True)["ok"]
    sock.get_received("/tasks")

    send(client, task, carol)
    send(client, task, alice, "   ")

    assert events(sock, "new_message") == []


# ---- history --------------------------------------------------------------------
def test_history_is_newest_first_in_pages(client, task, alice, bob):
    ids = [sent(client, task, alice if i % 2 else bob, f"m{i}")["id"] for i in range(7)]

    first = history(client, task, bob, limit=3)
    second = history(client, task, bob, limit=3, before=first["items"][-1]["id"])
    third = history(client, task, bob, limit=3, before=second["items"][-1]["id"])

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


def test_history_exactly_one_full_page_has_no_more(client, task, alice):
    for i in range(3):
        sent(client, task, alice, f"m{i}")
    page = history(client, task, alice, limit=3)
    assert len(page["items"]) == 3
    assert page["hasMore"] is False


def test_history_defaults_to_50(client, task, alice):
    for i in range(52):
        sent(client, task, alice, f"m{i}")
    page = history(client, task, alice)
    assert len(page["items"]) == 50
    assert page["hasMore"] is True


def test_history_holds_only_this_tasks_messages(client, task, alice, make_task):
    other = make_task(alice, "Other")
    sent(client, other, alice, "elsewhere")
    mine = sent(client, task, alice, "here")
    assert [m["id"] for m in history(client, task, alice)["items"]] == [mine["id"]]


def test_viewer_may_read_history(client, alice, carol, make_task, add_member):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")
    sent(client, task, alice, "for all")
    assert [m["message"] for m in history(client, task, carol)["items"]] == ["for all"]


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


def test_history_limit_of_100_is_accepted(client, task, alice):
    assert history(client, task, alice, limit=100)["items"] == []


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
def test_activity_records_every_message(client, task, alice, bob):
    first = sent(client, task, alice, "one")
    second = sent(client, task, bob, "two", replyTo=first["id"])

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


def test_activity_records_nothing_for_refused_changes(client, register, alice, carol, make_task, add_member):
    task = make_task(alice)
    add_member(alice, task, carol, "viewer")
    stranger = register("Dave", "Stranger")
    before = activity(client, task, alice)

    send(client, task, stranger, "not a member")
    send(client, task, carol, "not allowed")
    send(client, task, alice, "   ")
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


def test_activity_pages_newest_first(client, task, alice):
    for i in range(4):
        sent(client, task, alice, f"m{i}")
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
