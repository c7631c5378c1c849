"""Chat features over Socket.IO: edit_message, delete_message, add_reaction, remove_reaction,
mark_read and mentions. For each: the ack, what the room hears (on both namespaces), who is
refused, and that a repeat changes and announces nothing.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest

from toolkit.notices import mentions_only
from toolkit.sockets import Peer, fill, join

# The users that add_member adds have read the notice of it: the notifications here are mentions.
pytestmark = pytest.mark.added_notices_read


def quiet(*peers: Peer) -> None:
    """Nothing was announced."""
    for peer in peers:
        assert peer.received() == [], peer.ns


@pytest.fixture
def dan(register):
    return register("Dan", "Viewer")


@pytest.fixture
def eve(register):
    return register("Eve", "Stranger")


@pytest.fixture
def room(room_of, alice, bob, carol, dan, task, add_member) -> dict[str, Peer]:
    """Alice (owner, on "/"), Bob (editor, "/tasks"), Carol (commenter, "/tasks") and Dan
    (viewer, "/"), each with a socket in the task's room."""
    add_member(alice, task, carol, "commenter")
    add_member(alice, task, dan, "viewer")
    peers = room_of((alice, "/"), bob, carol, (dan, "/"))
    return dict(zip(("Alice", "Bob", "Carol", "Dan"), peers, strict=True))


@pytest.fixture
def bobs(room, task) -> dict:
    """A message by Bob, announced and drained."""
    message = room["Bob"].sent(task["id"], "Bob's draft")
    for peer in room.values():
        peer.received()
    return message


def everyone(room) -> list[Peer]:
    return list(room.values())


# ---- edit_message ----------------------------------------------------------------------------
def test_the_author_edits_and_the_room_gets_message_updated(room, alice, task, bobs, chat):
    edited = room["Bob"].ok("edit_message", {"messageId": bobs["id"], "message": "  Bob's final  "})

    assert (edited["id"], edited["message"]) == (bobs["id"], "Bob's final")
    assert edited["editedAt"] is not None and edited["version"] > bobs["version"]
    assert {k: v for k, v in edited.items() if k not in ("message", "editedAt", "version")} == \
           {k: v for k, v in bobs.items() if k not in ("message", "editedAt", "version", "duplicate")}
    for name, peer in room.items():
        assert peer.received() == [
            {"name": "message_updated", "args": [{"taskId": task["id"], "message": edited}], "namespace": peer.ns}
        ], name
    assert chat.by_id(task, alice)[bobs["id"]] == edited


@pytest.mark.parametrize("editor", ["Alice", "Carol"], ids=["the owner", "another commenter"])
def test_only_the_author_may_edit(room, alice, task, bobs, editor, chat):
    ack = room[editor].emit("edit_message", {"messageId": bobs["id"], "message": "not yours"})

    room[editor].refused(ack, "forbidden")
    quiet(*(p for n, p in room.items() if n != editor))
    assert chat.by_id(task, alice)[bobs["id"]]["message"] == "Bob's draft"


def test_an_author_demoted_to_viewer_may_no_longer_edit(room, client, alice, carol, task, chat):
    mine = room["Carol"].sent(task["id"], "Carol's words")
    client.patch(f"/api/tasks/{task['id']}/members/{carol.id}", json={"role": "viewer"}, headers=alice.headers)
    for peer in everyone(room):
        peer.received()

    ack = room["Carol"].emit("edit_message", {"messageId": mine["id"], "message": "changed"})

    room["Carol"].refused(ack, "forbidden")
    quiet(room["Alice"], room["Bob"], room["Dan"])
    assert chat.by_id(task, alice)[mine["id"]]["message"] == "Carol's words"


def test_the_same_text_again_changes_and_announces_nothing(room, bobs):
    first = room["Bob"].ok("edit_message", {"messageId": bobs["id"], "message": "settled"})
    for peer in everyone(room):
        peer.received()

    again = room["Bob"].ok("edit_message", {"messageId": bobs["id"], "message": " settled "})

    assert again == first
    quiet(*everyone(room))


def test_a_deleted_message_cannot_be_edited(room, bobs):
    room["Bob"].ok("delete_message", {"messageId": bobs["id"]})
    for peer in everyone(room):
        peer.received()

    ack = room["Bob"].emit("edit_message", {"messageId": bobs["id"], "message": "back from the dead"})

    room["Bob"].refused(ack, "message_deleted")
    quiet(room["Alice"], room["Carol"], room["Dan"])


# ---- delete_message --------------------------------------------------------------------------
def test_the_author_deletes_and_the_room_gets_message_deleted(room, alice, bob, task, bobs, chat):
    tombstone = room["Bob"].ok("delete_message", {"messageId": bobs["id"]})

    assert (tombstone["id"], tombstone["deleted"], tombstone["message"]) == (bobs["id"], True, None)
    assert (tombstone["attachments"], tombstone["reactions"], tombstone["mentions"]) == ([], [], [])
    assert tombstone["deletedAt"] is not None and tombstone["version"] > bobs["version"]
    # The whole tombstone too (issue 10: a client reaches exactly the server's tombstone).
    expected = {"taskId": task["id"], "messageId": bobs["id"], "version": tombstone["version"], "deletedBy": bob.id,
                "message": tombstone}
    for name, peer in room.items():
        assert peer.received() == [{"name": "message_deleted", "args": [expected], "namespace": peer.ns}], name
    assert chat.by_id(task, alice)[bobs["id"]] == tombstone


def test_the_owner_may_delete_anyones_message(room, alice, bobs):
    tombstone = room["Alice"].ok("delete_message", {"messageId": bobs["id"]})

    assert tombstone["deleted"] is True and tombstone["userId"] == bobs["userId"]
    for name, peer in room.items():
        [event] = peer.events("message_deleted")
        assert event["deletedBy"] == alice.id, name


@pytest.mark.parametrize("deleter, author", [("Carol", "Bob"), ("Bob", "Carol"), ("Dan", "Bob")],
                         ids=["a commenter", "an editor", "a viewer"])
def test_others_may_not_delete_someone_elses_message(room, alice, task, deleter, author, chat):
    message = room[author].sent(task["id"], "mine")
    for peer in everyone(room):
        peer.received()

    ack = room[deleter].emit("delete_message", {"messageId": message["id"]})

    room[deleter].refused(ack, "forbidden")
    quiet(*(p for n, p in room.items() if n != deleter))
    assert chat.by_id(task, alice)[message["id"]]["deleted"] is False


def test_deleting_again_answers_the_tombstone_and_announces_nothing(room, bobs):
    first = room["Bob"].ok("delete_message", {"messageId": bobs["id"]})
    for peer in everyone(room):
        peer.received()

    # Also by the owner: the message is gone either way.
    assert room["Bob"].ok("delete_message", {"messageId": bobs["id"]}) == first
    assert room["Alice"].ok("delete_message", {"messageId": bobs["id"]})["deleted"] is True
    quiet(*everyone(room))


# ---- add_reaction / remove_reaction ----------------------------------------------------------
def test_a_reaction_is_announced_without_me_and_acked_with_me(room, carol, task, bobs):
    message = room["Carol"].ok("add_reaction", {"messageId": bobs["id"], "emoji": "👍"})

    assert message["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [carol.id], "me": True}]
    expected = {
        "taskId": task["id"], "messageId": bobs["id"], "emoji": "👍", "action": "added", "userId": carol.id,
        "userName": "Carol Outsider", "version": message["version"],
        "reactions": [{"emoji": "👍", "count": 1, "userIds": [carol.id]}],
    }
    # And the whole message, as broadcasts show it: without `me`.
    expected["message"] = {**message, "reactions": expected["reactions"]}
    for name, peer in room.items():
        assert peer.received() == [{"name": "reaction_updated", "args": [expected], "namespace": peer.ns}], name


def test_me_is_relative_to_whoever_asks(room, alice, bob, carol, task, bobs, chat):
    room["Carol"].ok("add_reaction", {"messageId": bobs["id"], "emoji": "👍"})
    by_bob = room["Bob"].ok("add_reaction", {"messageId": bobs["id"], "emoji": "👍"})
    by_alice = room["Alice"].ok("add_reaction", {"messageId": bobs["id"], "emoji": "🎉"})

    assert by_bob["reactions"] == [{"emoji": "👍", "count": 2, "userIds": [carol.id, bob.id], "me": True}]
    # Emojis keep the order of their first use.
    assert by_alice["reactions"] == [
        {"emoji": "👍", "count": 2, "userIds": [carol.id, bob.id], "me": False},
        {"emoji": "🎉", "count": 1, "userIds": [alice.id], "me": True},
    ]
    last = room["Dan"].events("reaction_updated")[-1]
    assert last["reactions"] == [{"emoji": "👍", "count": 2, "userIds": [carol.id, bob.id]},
                                 {"emoji": "🎉", "count": 1, "userIds": [alice.id]}]
    assert [r["me"] for r in chat.by_id(task, carol)[bobs["id"]]["reactions"]] == [True, False]


def test_reactions_are_idempotent_both_ways(room, carol, bobs):
    ref = {"messageId": bobs["id"], "emoji": "🚀"}
    added = room["Carol"].ok("add_reaction", ref)
    for peer in everyone(room):
        peer.received()

    assert room["Carol"].ok("add_reaction", ref) == added
    quiet(*everyone(room))

    removed = room["Carol"].ok("remove_reaction", ref)
    assert removed["reactions"] == [] and removed["version"] > added["version"]
    for name, peer in room.items():
        [event] = peer.events("reaction_updated")
        assert (event["action"], event["userId"], event["reactions"]) == ("removed", carol.id, []), name

    assert room["Carol"].ok("remove_reaction", ref) == removed
    assert room["Carol"].ok("remove_reaction", {"messageId": bobs["id"], "emoji": "never added"}) == removed
    quiet(*everyone(room))


def test_broadcasts_of_a_reacted_message_leave_me_out(room, carol, bobs):
    """One payload goes to everybody, so it cannot say whether "I" reacted."""
    room["Carol"].ok("add_reaction", {"messageId": bobs["id"], "emoji": "👍"})
    for peer in everyone(room):
        peer.received()

    edited = room["Bob"].ok("edit_message", {"messageId": bobs["id"], "message": "edited after the reaction"})

    assert edited["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [carol.id], "me": False}]
    for name, peer in room.items():
        [event] = peer.events("message_updated")
        assert event["message"]["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [carol.id]}], name


@pytest.mark.parametrize("emoji", ["/", "a/b", "a//b", "%2F", "%", "?", "#", " a", "../x"])
def test_any_emoji_added_on_one_door_is_removed_on_the_other(room, client, carol, task, bobs, emoji, chat):
    """A reaction added over Socket.IO is removed over REST (the emoji percent-encoded in
    the path), and one added over REST is removed over Socket.IO."""
    ref = {"messageId": bobs["id"], "emoji": emoji}
    url = f"/api/tasks/{task['id']}/messages/{bobs['id']}/reactions"
    assert [r["emoji"] for r in room["Carol"].ok("add_reaction", ref)["reactions"]] == [emoji]

    response = client.delete(f"{url}/{quote(emoji, safe='')}", headers=carol.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["reactions"] == []

    assert client.post(url, json={"emoji": emoji}, headers=carol.headers).status_code == 200
    assert room["Carol"].ok("remove_reaction", ref)["reactions"] == []
    assert chat.by_id(task, carol)[bobs["id"]]["reactions"] == []


@pytest.mark.parametrize("emoji", [".", ".."])
def test_an_emoji_no_url_can_name_is_refused_over_socket_too(room, alice, task, bobs, emoji, chat):
    ack = room["Carol"].emit("add_reaction", {"messageId": bobs["id"], "emoji": emoji})

    room["Carol"].refused(ack, "validation_error")
    assert "emoji" in ack["error"]["details"]
    quiet(room["Alice"], room["Bob"], room["Dan"])
    assert chat.by_id(task, alice)[bobs["id"]]["reactions"] == []


@pytest.mark.parametrize("event", ["add_reaction", "remove_reaction"])
def test_a_viewer_may_not_react(room, alice, task, bobs, event, chat):
    ack = room["Dan"].emit(event, {"messageId": bobs["id"], "emoji": "👍"})

    room["Dan"].refused(ack, "forbidden")
    quiet(room["Alice"], room["Bob"], room["Carol"])
    assert chat.by_id(task, alice)[bobs["id"]]["reactions"] == []


@pytest.mark.parametrize("event", ["add_reaction", "remove_reaction"])
def test_a_deleted_message_takes_no_reactions(room, bobs, event):
    room["Bob"].ok("delete_message", {"messageId": bobs["id"]})
    for peer in everyone(room):
        peer.received()

    ack = room["Carol"].emit(event, {"messageId": bobs["id"], "emoji": "👍"})

    room["Carol"].refused(ack, "message_deleted")
    quiet(room["Alice"], room["Bob"], room["Dan"])


# ---- a message the user cannot see ----------------------------------------------------------
MESSAGE_EVENTS = {
    "edit_message": {"message": "hijacked"},
    "delete_message": {},
    "add_reaction": {"emoji": "👎"},
    "remove_reaction": {"emoji": "👎"},
}


@pytest.mark.parametrize("which", ["another task's message", "no such message"])
@pytest.mark.parametrize("event", MESSAGE_EVENTS)
def test_a_message_of_a_task_the_user_is_not_in_is_not_found(
        room, socket, alice, eve, make_task, task, bobs, event, which, chat):
    """Not `forbidden`: a stranger learns nothing, not even that the message exists."""
    stranger = Peer(socket(eve), "/tasks")
    join(stranger.sock, make_task(eve, "Eve's own")["id"])  # a member of something, just not this
    stranger.received()
    message_id = bobs["id"] if which == "another task's message" else bobs["id"] + 10_000
    before = chat.by_id(task, alice)[bobs["id"]]

    ack = stranger.emit(event, {"messageId": message_id, **MESSAGE_EVENTS[event]})

    stranger.refused(ack, "not_found")
    assert ack["error"]["message"] == "Message not found"
    quiet(*everyone(room))
    assert chat.by_id(task, alice)[bobs["id"]] == before


# ---- mark_read -------------------------------------------------------------------------------
@pytest.fixture
def three_unread(room, task) -> list[int]:
    """Three messages by Alice, unread by the others."""
    ids = [room["Alice"].sent(task["id"], f"news {i}")["id"] for i in range(3)]
    for peer in everyone(room):
        peer.received()
    return ids


def test_mark_read_acks_and_tells_the_users_other_sockets_only(room, socket, bob, task, three_unread):
    other_tab, other_device = Peer(socket(bob, namespace="/"), "/"), Peer(socket(bob), "/tasks")  # not joined

    ack = room["Bob"].ok("mark_read", {"taskId": task["id"], "messageId": three_unread[1]})

    state = {"taskId": task["id"], "lastReadId": three_unread[1], "unreadCount": 1}
    assert ack == state
    for peer in (other_tab, other_device):
        assert peer.received() == [{"name": "read_updated", "args": [state], "namespace": peer.ns}]
    quiet(*everyone(room))  # not the socket that marked, and nobody else's


def test_the_read_mark_only_moves_forward(room, socket, bob, task, three_unread):
    other_tab = Peer(socket(bob, namespace="/"), "/")
    room["Bob"].ok("mark_read", {"taskId": task["id"], "messageId": three_unread[2]})
    other_tab.received()

    ack = room["Bob"].ok("mark_read", {"taskId": task["id"], "messageId": three_unread[0]})

    assert ack == {"taskId": task["id"], "lastReadId": three_unread[2], "unreadCount": 0}
    quiet(other_tab, *everyone(room))


def test_the_join_ack_counts_what_is_unread(room, socket, bob, task, three_unread):
    room["Bob"].ok("mark_read", {"taskId": task["id"], "messageId": three_unread[0]})
    room["Bob"].sent(task["id"], "my own message is never unread to me")

    assert join(socket(bob), task["id"])["data"]["unreadCount"] == 2


def test_deleted_messages_are_not_unread(room, socket, bob, task, three_unread):
    room["Alice"].ok("delete_message", {"messageId": three_unread[1]})
    assert join(socket(bob), task["id"])["data"]["unreadCount"] == 2


def test_a_rest_mark_read_tells_every_socket_of_the_user(room, socket, client, bob, task, three_unread):
    other_tab = Peer(socket(bob, namespace="/"), "/")

    response = client.post(f"/api/tasks/{task['id']}/read", json={"messageId": three_unread[2]}, headers=bob.headers)

    state = {"taskId": task["id"], "lastReadId": three_unread[2], "unreadCount": 0}
    assert response.get_json() == state
    for peer in (room["Bob"], other_tab):
        assert peer.received() == [{"name": "read_updated", "args": [state], "namespace": peer.ns}]
    quiet(room["Alice"], room["Carol"], room["Dan"])


def test_marking_a_message_of_another_task_is_a_validation_error(room, socket, alice, make_task, task):
    elsewhere = socket(alice)
    other_id = Peer(elsewhere, "/tasks").sent(make_task(alice, "Other")["id"], "over there")["id"]

    ack = room["Bob"].emit("mark_read", {"taskId": task["id"], "messageId": other_id})

    room["Bob"].refused(ack, "validation_error")


def test_a_non_member_may_not_mark_read(socket, eve, task, three_unread):
    stranger = Peer(socket(eve), "/tasks")
    stranger.refused(stranger.emit("mark_read", {"taskId": task["id"], "messageId": three_unread[0]}), "forbidden")


# ---- mentions --------------------------------------------------------------------------------
def test_a_mention_reaches_every_socket_of_the_mentioned_users(room, socket, client, alice, bob, dan, task):
    # Bob's room socket (/tasks), plus one on /tasks and one on / that never joined the task.
    bobs_peers = [room["Bob"], Peer(socket(bob), "/tasks"), Peer(socket(bob, namespace="/"), "/")]

    message = room["Alice"].sent(task["id"], "@Bob @Dan please look", mentions=[bob.id, dan.id])

    assert message["mentions"] == [bob.id, dan.id]
    bob_notes = [peer.events("task_notification") for peer in bobs_peers]
    [note] = bob_notes[0]
    assert bob_notes == [[note]] * 3, "the same notification, once, on every socket"
    assert note == {
        "id": note["id"], "notificationId": note["id"], "type": "mention", "taskId": task["id"],
        "messageId": message["id"], "from": {"userId": alice.id, "userName": "Alice Owner"},
        "createdAt": note["createdAt"], "timestamp": note["createdAt"], "read": False, "readAt": None,
    }
    [dans] = room["Dan"].events("task_notification")
    assert (dans["messageId"], dans["id"] != note["id"]) == (message["id"], True)
    # The sender and the unmentioned hear only the message.
    assert [e["name"] for e in room["Alice"].received()] == ["new_message"]
    assert [e["name"] for e in room["Carol"].received()] == ["new_message"]
    # And it is stored for Bob.
    listed = client.get("/api/notifications", headers=bob.headers).get_json()
    assert [n["id"] for n in mentions_only(listed)["items"]] == [note["id"]] and listed["unreadCount"] == 1


def test_mentioning_yourself_or_twice_notifies_once_and_not_you(room, alice, bob, task):
    message = room["Alice"].sent(task["id"], "note to self and Bob", mentions=[alice.id, bob.id, bob.id])

    assert message["mentions"] == [alice.id, bob.id]
    assert len(room["Bob"].events("task_notification")) == 1
    assert room["Alice"].events("task_notification") == []


def test_mentioning_a_non_member_is_refused_and_nothing_is_stored(room, socket, client, alice, bob, eve, task, chat):
    idle_bob = Peer(socket(bob, namespace="/"), "/")
    eves = Peer(socket(eve), "/tasks")

    ack = room["Alice"].emit("send_message", {"taskId": task["id"], "message": "hi", "mentions": [bob.id, eve.id]})

    room["Alice"].refused(ack, "validation_error")
    quiet(room["Bob"], room["Carol"], room["Dan"], idle_bob, eves)
    assert chat.by_id(task, alice) == {}
    assert mentions_only(client.get("/api/notifications", headers=bob.headers).get_json())["items"] == []


# ---- malformed payloads ----------------------------------------------------------------------
MSG, TASK = object(), object()  # replaced by Bob's message id and the task id

MALFORMED = {
    "edit_message": {
        "no args": (), "None": (None,), "a bare id": (MSG,), "a list": ([MSG, "text"],), "an empty dict": ({},),
        "no message": ({"messageId": MSG},), "no messageId": ({"message": "text"},),
        "an empty message": ({"messageId": MSG, "message": ""},),
        "a blank message": ({"messageId": MSG, "message": " \n "},),
        "4001 characters": ({"messageId": MSG, "message": "x" * 4001},),
        "a number message": ({"messageId": MSG, "message": 7},),
        "a NUL": ({"messageId": MSG, "message": "a\x00b"},),
        "a word messageId": ({"messageId": "first", "message": "text"},),
        "a bool messageId": ({"messageId": True, "message": "text"},),
        "a zero messageId": ({"messageId": 0, "message": "text"},),
        "a huge messageId": ({"messageId": 2**31, "message": "text"},),
    },
    "delete_message": {
        "no args": (), "None": (None,), "a bare id": (MSG,), "an empty dict": ({},),
        "a word messageId": ({"messageId": "abc"},), "a negative messageId": ({"messageId": -1},),
        "a float messageId": ({"messageId": 1.5},), "a null messageId": ({"messageId": None},),
    },
    "add_reaction": {
        "no args": (), "a bare id": (MSG,), "no emoji": ({"messageId": MSG},), "no messageId": ({"emoji": "👍"},),
        "an empty emoji": ({"messageId": MSG, "emoji": ""},), "a blank emoji": ({"messageId": MSG, "emoji": "  "},),
        "33 characters": ({"messageId": MSG, "emoji": "x" * 33},),
        "a control character": ({"messageId": MSG, "emoji": "\n"},),
        "a number emoji": ({"messageId": MSG, "emoji": 1},), "a list emoji": ({"messageId": MSG, "emoji": ["👍"]},),
        "a bool messageId": ({"messageId": False, "emoji": "👍"},),
    },
    "remove_reaction": {
        "no args": (), "None": (None,), "no emoji": ({"messageId": MSG},),
        "a null emoji": ({"messageId": MSG, "emoji": None},),
        "33 characters": ({"messageId": MSG, "emoji": "x" * 33},),
        "a huge messageId": ({"messageId": 10**20, "emoji": "👍"},),
    },
    "mark_read": {
        "no args": (), "a bare id": (TASK,), "an empty dict": ({},), "no messageId": ({"taskId": TASK},),
        "no taskId": ({"messageId": MSG},), "a word taskId": ({"taskId": "mine", "messageId": MSG},),
        "a negative messageId": ({"taskId": TASK, "messageId": -3},),
        "a bool messageId": ({"taskId": TASK, "messageId": True},),
        "a list messageId": ({"taskId": TASK, "messageId": [MSG]},),
    },
}

# A good payload of each event, to show the socket still works after a bad one.
VALID = {
    "edit_message": {"messageId": MSG, "message": "fixed"},
    "delete_message": {"messageId": MSG},
    "add_reaction": {"messageId": MSG, "emoji": "👍"},
    "remove_reaction": {"messageId": MSG, "emoji": "👍"},
    "mark_read": {"taskId": TASK, "messageId": MSG},
}
CASES = [(event, args) for event, table in MALFORMED.items() for args in table.values()]
CASE_IDS = [f"{event}: {name}" for event, table in MALFORMED.items() for name in table]


@pytest.mark.parametrize("event, args", CASES, ids=CASE_IDS)
def test_malformed_payloads_get_a_validation_error_and_the_socket_keeps_working(
        room, alice, task, bobs, event, args, chat):
    before = chat.by_id(task, alice)[bobs["id"]]

    ack = room["Bob"].emit(event, *(fill(arg, {MSG: bobs["id"], TASK: task["id"]}) for arg in args))

    room["Bob"].refused(ack, "validation_error")
    quiet(room["Alice"], room["Carol"], room["Dan"])
    assert chat.by_id(task, alice)[bobs["id"]] == before
    assert room["Bob"].sock.is_connected("/tasks")
    assert room["Bob"].emit(event, fill(VALID[event], {MSG: bobs["id"], TASK: task["id"]}))["ok"] is True
