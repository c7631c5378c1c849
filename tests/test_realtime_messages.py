"""Socket.IO send_message: the ack, `new_message` to the whole room, refusals, and what is stored."""
from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from toolkit.sockets import NS, assert_refused, drain, emit, events, fill, join, send
from toolkit.wire import MESSAGE_KEYS, without_duplicate

REQUIRED = "Task ID and message are required"


def broadcast_form(ack_message: dict) -> dict:
    """The ack's message as the room and the history show it: without `duplicate`.
    (A message with reactions would also differ in `reactions[].me`; these have none.)"""
    assert ack_message["reactions"] == [], ack_message
    return without_duplicate(ack_message)


# ---- success ---------------------------------------------------------------------------------
def test_the_ack_is_the_stored_message(room, alice, bob, task, chat):
    ack = send(room["Bob"], task["id"], "Hello team")

    assert ack["ok"] is True
    message = ack["data"]
    assert set(message) == MESSAGE_KEYS | {"duplicate"}
    assert isinstance(message["id"], int)
    assert (message["taskId"], message["userId"], message["message"]) == (task["id"], bob.id, "Hello team")
    assert (message["attachments"], message["replyTo"], message["replyPreview"]) == ([], None, None)
    assert (message["mentions"], message["reactions"], message["clientId"]) == ([], [], None)
    assert (message["previousId"], message["duplicate"]) == (None, False)
    assert isinstance(message["version"], int) and message["version"] >= 1
    assert (message["editedAt"], message["deleted"], message["deletedAt"]) == (None, False, None)
    assert message["user"] == {"id": bob.id, "firstName": "Bob", "lastName": "Editor"}
    created = datetime.fromisoformat(message["createdAt"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - created) < timedelta(seconds=30)
    assert chat.history(task, alice)["items"] == [broadcast_form(message)]


def test_the_whole_room_gets_new_message_sender_included(room, socket, alice, bob, carol, task):
    idle_member = socket(alice)  # connected, never joined

    message = broadcast_form(send(room["Bob"], task["id"], "Hi all")["data"])

    for name in ("Alice", "Bob", "Carol"):
        assert room[name].get_received(NS) == [
            {"name": "new_message", "args": [{"message": message, "taskId": task["id"]}], "namespace": NS}
        ], name
    assert set(message) == MESSAGE_KEYS
    assert idle_member.get_received(NS) == []


def test_a_client_outside_the_room_does_not_get_it(room, socket, alice, carol, make_task, task):
    outsider = socket(carol)  # Carol, but a socket that did not join
    other_room = socket(alice)
    join(other_room, make_task(alice, "Unrelated")["id"])
    drain(other_room)

    send(room["Alice"], task["id"], "only for this room")

    assert outsider.get_received(NS) == []
    assert other_room.get_received(NS) == []


def test_a_member_who_has_not_joined_can_still_send(room, socket, bob, task, chat):
    not_joined = socket(bob)

    ack = send(not_joined, task["id"], "from the corridor")

    assert ack["ok"] is True
    for name in ("Alice", "Bob", "Carol"):
        assert [e["message"] for e in events(room[name], "new_message")] == [broadcast_form(ack["data"])], name
    assert events(not_joined, "new_message") == [], "the sender's socket is not in the room"
    assert [m["id"] for m in chat.history(task, bob)["items"]] == [ack["data"]["id"]]


def test_the_text_is_trimmed(room, alice, task, chat):
    ack = send(room["Carol"], task["id"], " \n\t trimmed text \t\n ")

    assert ack["data"]["message"] == "trimmed text"
    [received] = events(room["Alice"], "new_message")
    assert received["message"]["message"] == "trimmed text"
    assert chat.history(task, alice)["items"][0]["message"] == "trimmed text"


def test_exactly_4000_characters_are_accepted_even_with_surrounding_blanks(room, task):
    text = "x" * 4000
    assert send(room["Bob"], task["id"], f"  {text}\n")["data"]["message"] == text


def test_a_digit_string_task_id_is_accepted(room, task):
    ack = send(room["Bob"], str(task["id"]), "string id")
    assert ack["data"]["taskId"] == task["id"]
    assert [e["taskId"] for e in events(room["Alice"], "new_message")] == [task["id"]]


def test_attachments_and_a_reply_come_back_as_sent(room, alice, bob, task, chat):
    first = send(room["Alice"], task["id"], "the plan")["data"]
    pdf = chat.uploaded(task, bob, b"%PDF-1.4 the plan", "plan.pdf")
    picture = chat.uploaded(task, bob, b"\x89PNG sketch", "sketch.png")

    reply = send(room["Bob"], task["id"], "looks good", attachments=[picture["id"], str(pdf["id"])],
                 replyTo=first["id"])["data"]

    assert reply["attachments"] == [picture, pdf], "the uploads' descriptions, in the order sent"
    assert [a["mimeType"] for a in reply["attachments"]] == ["image/png", "application/pdf"]
    assert reply["replyTo"] == first["id"]
    assert reply["replyPreview"] == {"messageId": first["id"], "userId": alice.id, "userName": "Alice Owner",
                                     "excerpt": "the plan", "deleted": False}
    assert [e["message"] for e in events(room["Carol"], "new_message")] == [broadcast_form(first),
                                                                             broadcast_form(reply)]
    assert chat.history(task, alice)["items"][0] == broadcast_form(reply)


@pytest.mark.parametrize("legacy", [
    ["note"],
    [{"name": "plan.pdf", "url": "https://example.com/plan.pdf", "size": 1024}],
], ids=["a string", "an object"])
def test_legacy_attachments_are_refused(room, alice, task, legacy, chat):
    """Attachments used to be free strings or objects; now only ids of uploads are accepted."""
    ack = send(room["Bob"], task["id"], "looks good", attachments=legacy)

    assert_refused(room["Bob"], ack, "validation_error", REQUIRED)
    assert "attachments" in ack["error"]["details"]
    assert room["Alice"].get_received(NS) == []
    assert chat.history(task, alice)["items"] == []


def test_null_attachments_are_an_empty_list(room, task):
    assert send(room["Bob"], task["id"], "no files", attachments=None)["data"]["attachments"] == []


def test_unknown_keys_are_ignored_and_cannot_impersonate(room, alice, bob, task, chat):
    ack = send(room["Bob"], task["id"], "it is me", userId=alice.id, id=999_999, user={"firstName": "Mallory"},
               createdAt="2000-01-01T00:00:00Z", foo=[1, 2])

    message = broadcast_form(ack["data"])
    assert message["userId"] == bob.id and message["user"]["firstName"] == "Bob"
    assert message["id"] != 999_999 and not message["createdAt"].startswith("2000")
    assert chat.history(task, alice)["items"] == [message]


def test_messages_are_stored_once_with_one_activity_entry(room, client, alice, task, chat):
    ids = [send(room[name], task["id"], f"from {name}")["data"]["id"] for name in ("Alice", "Bob", "Carol")]

    assert [m["id"] for m in chat.history(task, alice)["items"]] == ids[::-1]  # newest first
    activity = client.get(f"/api/tasks/{task['id']}/activity", headers=alice.headers).get_json()["items"]
    chat_entries = [a for a in activity if a["entityType"] == "task_chat"]
    assert sorted(a["entityId"] for a in chat_entries) == sorted(ids)
    assert {a["action"] for a in chat_entries} == {"created"}


def test_sending_without_an_ack_still_reaches_the_room(room, task):
    assert room["Bob"].emit("send_message", {"taskId": task["id"], "message": "no ack"}, namespace=NS) is None

    for name in ("Alice", "Bob", "Carol"):
        assert [e["message"]["message"] for e in events(room[name], "new_message")] == ["no ack"], name


def test_root_and_tasks_clients_see_each_others_messages(socket, alice, bob, task, chat):
    root, tasks = socket(alice, namespace="/"), socket(bob, namespace="/tasks")
    join(root, task["id"], ns="/")
    join(tasks, task["id"], ns="/tasks")
    drain(root, ns="/")

    from_root = broadcast_form(send(root, task["id"], "from /", ns="/")["data"])
    from_tasks = broadcast_form(send(tasks, task["id"], "from /tasks", ns="/tasks")["data"])

    expected = [{"message": from_root, "taskId": task["id"]}, {"message": from_tasks, "taskId": task["id"]}]
    assert events(root, "new_message", "/") == expected
    assert events(tasks, "new_message", "/tasks") == expected
    assert len(chat.history(task, alice)["items"]) == 2


# ---- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    {"message": ""},
    {"message": "   \n\t "},
    {},
    {"message": None},
    {"message": 42},
    {"message": ["hi"]},
], ids=["empty", "blank", "missing", "null", "a number", "a list"])
def test_a_blank_or_missing_message_is_refused(room, alice, task, payload, chat):
    ack = emit(room["Bob"], "send_message", {"taskId": task["id"], **payload})

    assert_refused(room["Bob"], ack, "validation_error", REQUIRED)
    assert room["Alice"].get_received(NS) == []
    assert chat.history(task, alice)["items"] == []


def test_a_missing_task_id_is_refused(room, task):
    ack = emit(room["Bob"], "send_message", {"message": "where to?"})
    assert_refused(room["Bob"], ack, "validation_error", REQUIRED)
    assert room["Alice"].get_received(NS) == []


def test_over_4000_characters_is_refused(room, alice, task, chat):
    ack = send(room["Bob"], task["id"], "x" * 4001)

    assert_refused(room["Bob"], ack, "validation_error")
    assert room["Alice"].get_received(NS) == []
    assert chat.history(task, alice)["items"] == []


def test_a_viewer_may_not_send(socket, alice, carol, task, add_member, chat):
    add_member(alice, task, carol, "viewer")
    member, viewer = socket(alice), socket(carol)
    join(member, task["id"])
    join(viewer, task["id"])
    drain(member, viewer)

    ack = send(viewer, task["id"], "can I?")

    assert ack == {"ok": False, "error": {"code": "forbidden", "message": "No permission to send messages"}}
    [error] = events(viewer, "error")
    assert (error["code"], error["message"]) == ("forbidden", "No permission to send messages")
    assert member.get_received(NS) == []
    assert viewer.get_received(NS) == []
    assert chat.history(task, alice)["items"] == []


@pytest.mark.parametrize("which", ["not a member", "no such task", "the largest id"])
def test_without_access_to_the_task_sending_is_refused(room, socket, alice, register, task, which, chat):
    stranger = register("Dan", "Stranger")
    task_id = {"not a member": task["id"], "no such task": task["id"] + 1000, "the largest id": 2**31 - 1}[which]
    sock = socket(stranger)

    ack = send(sock, task_id, "let me in")

    assert ack == {"ok": False, "error": {"code": "forbidden", "message": "No access to this task"}}
    [error] = events(sock, "error")
    assert (error["code"], error["message"]) == ("forbidden", "No access to this task")
    for name in ("Alice", "Bob", "Carol"):
        assert room[name].get_received(NS) == [], name
    assert chat.history(task, alice)["items"] == []


def test_a_reply_to_a_message_of_another_task_is_refused(room, socket, alice, make_task, task, chat):
    other_task = make_task(alice, "Elsewhere")
    elsewhere = socket(alice)
    foreign = send(elsewhere, other_task["id"], "over here")["data"]
    drain(elsewhere)

    ack = send(room["Bob"], task["id"], "replying across tasks", replyTo=foreign["id"])

    assert_refused(room["Bob"], ack, "validation_error")
    assert room["Alice"].get_received(NS) == []
    assert chat.history(task, alice)["items"] == []


def test_a_reply_to_a_message_that_does_not_exist_is_refused(room, alice, task, chat):
    ack = send(room["Bob"], task["id"], "replying to nothing", replyTo=987_654)

    assert_refused(room["Bob"], ack, "validation_error")
    assert chat.history(task, alice)["items"] == []


def test_too_many_attachments_are_refused(room, alice, bob, task, chat):
    ids = [chat.uploaded(task, bob, b"note", f"note{i}.txt")["id"] for i in range(11)]

    ack = send(room["Bob"], task["id"], "files", attachments=ids)

    assert_refused(room["Bob"], ack, "validation_error")
    assert "attachments" in ack["error"]["details"]
    assert chat.history(task, alice)["items"] == []
    # Ten is the limit: the same uploads, one fewer, go through.
    assert len(send(room["Bob"], task["id"], "files", attachments=ids[:10])["data"]["attachments"]) == 10


def test_a_failed_send_without_an_ack_still_gets_the_error_event(room, task):
    room["Bob"].emit("send_message", {"taskId": task["id"], "message": "  "}, namespace=NS)

    [error] = events(room["Bob"], "error")
    assert (error["code"], error["message"]) == ("validation_error", REQUIRED)
    assert room["Alice"].get_received(NS) == []


# ---- malformed payloads ----------------------------------------------------------------------
TASK = object()  # replaced by the task's id

MALFORMED = {
    "no args": (),
    "None": (None,),
    "a list": ([TASK, "hi"],),
    "a string": ("hi",),
    "a bare id": (TASK,),
    "a float": (1.5,),
    "True": (True,),
    "a huge number": (10**20,),
    "a negative number": (-1,),
    "an empty dict": ({},),
    "a float taskId": ({"taskId": 1.5, "message": "hi"},),
    "a boolean taskId": ({"taskId": True, "message": "hi"},),
    "a huge taskId": ({"taskId": 10**20, "message": "hi"},),
    "a negative taskId": ({"taskId": -1, "message": "hi"},),
    "a zero taskId": ({"taskId": 0, "message": "hi"},),
    "a null taskId": ({"taskId": None, "message": "hi"},),
    "a list taskId": ({"taskId": [TASK], "message": "hi"},),
    "a word taskId": ({"taskId": "one", "message": "hi"},),
    "a dict message": ({"taskId": TASK, "message": {"text": "hi"}},),
    "a boolean message": ({"taskId": TASK, "message": True},),
    "string attachments": ({"taskId": TASK, "message": "hi", "attachments": "file.pdf"},),
    "dict attachments": ({"taskId": TASK, "message": "hi", "attachments": {"a": 1}},),
    "a file name as an attachment": ({"taskId": TASK, "message": "hi", "attachments": ["file.pdf"]},),
    "a zero attachment id": ({"taskId": TASK, "message": "hi", "attachments": [0]},),
    "a boolean attachment id": ({"taskId": TASK, "message": "hi", "attachments": [True]},),
    "a word replyTo": ({"taskId": TASK, "message": "hi", "replyTo": "first"},),
    "a boolean replyTo": ({"taskId": TASK, "message": "hi", "replyTo": True},),
    "a huge replyTo": ({"taskId": TASK, "message": "hi", "replyTo": 10**20},),
    "a negative replyTo": ({"taskId": TASK, "message": "hi", "replyTo": -5},),
    # PostgreSQL stores no NUL in text or JSONB: refused as input, not a database error.
    # (Attachment objects are refused as non-ids now, NUL or not; kept as the old attack.)
    "a NUL in the message": ({"taskId": TASK, "message": "a\x00b"},),
    "a NUL in an attachment": ({"taskId": TASK, "message": "hi", "attachments": [{"name": "a\x00.pdf"}]},),
    "a NUL in an attachment key": ({"taskId": TASK, "message": "hi", "attachments": [{"n\x00": 1}]},),
    "a NUL in the clientId": ({"taskId": TASK, "message": "hi", "clientId": "a\x00b"},),
    "a blank clientId": ({"taskId": TASK, "message": "hi", "clientId": "   "},),
    "a numeric clientId": ({"taskId": TASK, "message": "hi", "clientId": 7},),
    "a clientId of 65 characters": ({"taskId": TASK, "message": "hi", "clientId": "c" * 65},),
    "string mentions": ({"taskId": TASK, "message": "hi", "mentions": "everyone"},),
    "a word in mentions": ({"taskId": TASK, "message": "hi", "mentions": ["bob"]},),
}


@pytest.mark.parametrize("args", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_payloads_get_a_validation_error_and_the_socket_keeps_working(room, alice, task, args, chat):
    sender = room["Bob"]

    ack = emit(sender, "send_message", *(fill(arg, {TASK: task["id"]}) for arg in args))

    assert_refused(sender, ack, "validation_error", REQUIRED)
    assert room["Alice"].get_received(NS) == [], "a refused message reaches nobody"
    assert chat.history(task, alice)["items"] == []
    # Still connected, still able to send.
    assert sender.is_connected(NS)
    message = broadcast_form(send(sender, task["id"], "after the bad one")["data"])
    assert [e["message"] for e in events(room["Alice"], "new_message")] == [message]
    assert [m["id"] for m in chat.history(task, alice)["items"]] == [message["id"]]
