"""Delivery over Socket.IO: idempotent sends (clientId), the catch-up in the join ack,
the `previousId` chain, and a client copy that ends equal to the server's list.

REST is the referee: what the server holds is read back with GET /api/tasks/<id>/messages.
"""
from __future__ import annotations

import pytest

from toolkit.sockets import NS, assert_refused, drain, emit, events, join, send, sent

CATCH_UP_LIMIT = 200


# ---- helpers ---------------------------------------------------------------------------------
def catch_up(sock, task_id, last_message_id, ns=NS) -> dict:
    return join(sock, {"taskId": task_id, "lastMessageId": last_message_id}, ns=ns)["data"]


@pytest.fixture
def eve_id(register) -> int:
    """A user who is a member of nothing."""
    return register("Eve", "Stranger").id


# ---- idempotent send -------------------------------------------------------------------------
def test_a_retry_with_the_same_client_id_acks_the_first_message_as_a_duplicate(room, alice, task, chat):
    first = send(room["Bob"], task["id"], "once only", clientId="bob-1")
    retry = send(room["Bob"], task["id"], "once only", clientId="bob-1")

    assert first["ok"] is True and first["data"]["duplicate"] is False
    assert retry["ok"] is True and retry["data"]["duplicate"] is True
    assert {**retry["data"], "duplicate": False} == first["data"]
    assert first["data"]["clientId"] == "bob-1"
    # One row, one broadcast to each client in the room (the sender's included).
    assert [m["id"] for m in chat.whole_history(task, alice)] == [first["data"]["id"]]
    for name in ("Alice", "Bob", "Carol"):
        assert [e["message"]["id"] for e in events(room[name], "new_message")] == [first["data"]["id"]], name


def test_a_retry_answers_the_first_message_even_if_the_text_differs(room, alice, task, chat):
    """The clientId names the message: a retry cannot overwrite it."""
    first = sent(room["Bob"], task["id"], "original", clientId="bob-2")
    retry = sent(room["Bob"], task["id"], "changed on retry", clientId="bob-2")

    assert (retry["id"], retry["message"], retry["duplicate"]) == (first["id"], "original", True)
    assert [m["message"] for m in chat.whole_history(task, alice)] == ["original"]


@pytest.mark.parametrize("retry_ns", ["/tasks", "/"])
def test_a_retry_from_a_new_socket_after_the_first_one_dropped(room, socket, alice, bob, task, retry_ns, chat):
    """The ack was lost with the connection; the client retries from a new socket."""
    dropping = socket(bob)
    first = sent(dropping, task["id"], "sent before the drop", clientId="flaky-1")
    dropping.disconnect(NS)
    again = socket(bob, namespace=retry_ns)

    retry = sent(again, task["id"], "sent before the drop", ns=retry_ns, clientId="flaky-1")

    assert retry["duplicate"] is True and retry["id"] == first["id"]
    assert [m["id"] for m in chat.whole_history(task, alice)] == [first["id"]]
    for name in ("Alice", "Carol"):
        assert [e["message"]["id"] for e in events(room[name], "new_message")] == [first["id"]], name


def test_a_rest_retry_of_a_socket_send_is_a_200_duplicate(room, client, alice, bob, task, chat):
    first = sent(room["Bob"], task["id"], "by socket", clientId="mixed-1")

    response = client.post(f"/api/tasks/{task['id']}/messages",
                           json={"message": "by socket", "clientId": "mixed-1"}, headers=bob.headers)

    assert response.status_code == 200
    assert response.get_json()["id"] == first["id"] and response.get_json()["duplicate"] is True
    assert len(chat.whole_history(task, alice)) == 1
    assert len(events(room["Alice"], "new_message")) == 1


def test_client_ids_are_per_user(room, alice, task, chat):
    from_bob = sent(room["Bob"], task["id"], "Bob's", clientId="same")
    from_carol = sent(room["Carol"], task["id"], "Carol's", clientId="same")

    assert from_carol["duplicate"] is False and from_carol["id"] != from_bob["id"]
    assert [m["message"] for m in chat.whole_history(task, alice)] == ["Bob's", "Carol's"]


def test_a_client_id_reused_for_another_task_is_refused(room, socket, alice, bob, make_task, add_member, task, chat):
    other = make_task(alice, "Other task")
    add_member(alice, other, bob, "editor")
    watcher = socket(alice)
    join(watcher, other["id"])
    drain(watcher)
    first = sent(room["Bob"], task["id"], "in the first task", clientId="reused")
    drain(*room.values())

    ack = send(room["Bob"], other["id"], "in the other task", clientId="reused")

    assert_refused(room["Bob"], ack, "client_id_reused")
    assert chat.whole_history(other["id"], alice) == []
    assert watcher.get_received(NS) == []
    # The first message is untouched, and still answers its own retries.
    assert sent(room["Bob"], task["id"], "in the first task", clientId="reused")["id"] == first["id"]
    assert len(chat.whole_history(task, alice)) == 1


def test_a_retry_after_the_message_was_deleted_acks_the_tombstone(room, alice, task, chat):
    """The message existed: a late retry must not bring it back as a new one."""
    first = sent(room["Bob"], task["id"], "regretted", clientId="gone-1")
    emit(room["Bob"], "delete_message", {"messageId": first["id"]})
    for sock in room.values():
        sock.get_received(NS)

    retry = sent(room["Bob"], task["id"], "regretted", clientId="gone-1")

    assert (retry["id"], retry["duplicate"], retry["deleted"], retry["message"]) == (first["id"], True, True, None)
    assert [m["id"] for m in chat.whole_history(task, alice)] == [first["id"]]
    assert room["Alice"].get_received(NS) == []


def test_a_refused_send_does_not_use_up_its_client_id(room, alice, eve_id, task, chat):
    """Nothing was stored, so the corrected retry with the same clientId is the first message."""
    refused = send(room["Bob"], task["id"], "hello @stranger", clientId="fix-1", mentions=[eve_id])
    assert_refused(room["Bob"], refused, "validation_error")

    fixed = sent(room["Bob"], task["id"], "hello", clientId="fix-1")

    assert fixed["duplicate"] is False
    assert [m["message"] for m in chat.whole_history(task, alice)] == ["hello"]


@pytest.mark.parametrize("client_id", ["", "   ", "x" * 65, "tab\there", "new\nline", "del\x7f", 42, ["a"], True],
                         ids=["empty", "blank", "65 chars", "tab", "newline", "DEL", "a number", "a list", "a bool"])
def test_a_malformed_client_id_is_a_validation_error(room, alice, task, client_id, chat):
    ack = send(room["Bob"], task["id"], "hi", clientId=client_id)

    assert_refused(room["Bob"], ack, "validation_error")
    assert chat.whole_history(task, alice) == []
    assert room["Alice"].get_received(NS) == []


def test_a_64_character_client_id_is_accepted(room, task):
    assert sent(room["Bob"], task["id"], "hi", clientId="é" * 64)["clientId"] == "é" * 64


# ---- catch-up on join ------------------------------------------------------------------------
def test_without_last_message_id_the_catch_up_is_empty(socket, alice, bob, task, chat):
    for text in ("one", "two"):
        chat.sent(task, alice, text)

    data = join(socket(bob), task["id"])["data"]

    assert (data["missed"], data["hasMore"], data["updated"], data["updatedHasMore"]) == ([], False, [], False)


def test_the_messages_after_last_message_id_come_oldest_first(socket, alice, bob, task, chat):
    ids = [chat.sent(task, alice, f"m{i}")["id"] for i in range(5)]

    data = catch_up(socket(bob), task["id"], ids[1])

    assert [m["id"] for m in data["missed"]] == ids[2:]
    assert data["hasMore"] is False
    # Each is the message as the server holds it.
    assert data["missed"] == [chat.by_id(task, bob)[i] for i in ids[2:]]


def test_last_message_id_zero_catches_up_everything_tombstones_included(socket, client, alice, bob, task, chat):
    ids = [chat.sent(task, alice, f"m{i}")["id"] for i in range(3)]
    client.delete(f"/api/tasks/{task['id']}/messages/{ids[1]}", headers=alice.headers)

    data = catch_up(socket(bob), task["id"], 0)

    assert [m["id"] for m in data["missed"]] == ids
    assert (data["missed"][1]["deleted"], data["missed"][1]["message"]) == (True, None)
    assert (data["hasMore"], data["updated"]) == (False, [])


def test_a_last_message_id_past_the_newest_misses_nothing(socket, alice, bob, task, chat):
    newest = chat.sent(task, alice, "latest")["id"]
    data = catch_up(socket(bob), task["id"], newest + 1000)
    assert (data["missed"], data["hasMore"]) == ([], False)


def test_more_than_200_missed_gives_200_and_has_more_then_rest_pages_the_rest(socket, client, alice, bob, task, chat):
    last_seen = chat.sent(task, alice, "seen")["id"]
    ids = [chat.sent(task, alice, f"missed {i}")["id"] for i in range(CATCH_UP_LIMIT + 30)]

    data = catch_up(socket(bob), task["id"], last_seen)

    assert [m["id"] for m in data["missed"]] == ids[:CATCH_UP_LIMIT]
    assert data["hasMore"] is True
    # The client pages the rest forward from the last one it got.
    rest, after = [], data["missed"][-1]["id"]
    while True:
        page = client.get(f"/api/tasks/{task['id']}/messages", query_string={"after": after, "limit": 100},
                          headers=bob.headers).get_json()
        rest += [m["id"] for m in page["items"]]
        if not page["hasMore"]:
            break
        after = rest[-1]
    assert rest == ids[CATCH_UP_LIMIT:]


def test_exactly_200_missed_has_no_more(socket, alice, bob, task, chat):
    last_seen = chat.sent(task, alice, "seen")["id"]
    for i in range(CATCH_UP_LIMIT):
        chat.sent(task, alice, f"missed {i}")

    data = catch_up(socket(bob), task["id"], last_seen)

    assert (len(data["missed"]), data["hasMore"]) == (CATCH_UP_LIMIT, False)


def test_changes_to_older_messages_after_last_message_id_come_as_updated(room, socket, client, alice, bob, task, chat):
    url = f"/api/tasks/{task['id']}/messages"
    m1, m2, m3, m4 = (sent(room["Alice"], task["id"], f"m{i}")["id"] for i in range(1, 5))
    # Changed before the client's newest message was stored: the client already has this state.
    assert client.patch(f"{url}/{m1}", json={"message": "m1 edited early"}, headers=alice.headers).status_code == 200
    last_seen = sent(room["Alice"], task["id"], "m5, the client's newest")["id"]
    # Changed while the client was away.
    assert client.patch(f"{url}/{m2}", json={"message": "m2 edited late"}, headers=alice.headers).status_code == 200
    assert client.post(f"{url}/{m3}/reactions", json={"emoji": "🎉"}, headers=bob.headers).status_code == 200
    assert client.delete(f"{url}/{m4}", headers=alice.headers).status_code == 200
    m6 = sent(room["Alice"], task["id"], "m6")["id"]

    data = catch_up(socket(bob), task["id"], last_seen)

    assert [m["id"] for m in data["missed"]] == [m6]
    assert [m["id"] for m in data["updated"]] == [m2, m3, m4]
    assert data["updatedHasMore"] is False
    current = chat.by_id(task, bob)  # as Bob sees it, `me` included
    assert data["updated"] == [current[m2], current[m3], current[m4]]
    edited, reacted, tombstone = data["updated"]
    assert (edited["message"], edited["editedAt"] is not None) == ("m2 edited late", True)
    assert reacted["reactions"] == [{"emoji": "🎉", "count": 1, "userIds": [bob.id], "me": True}]
    assert (tombstone["deleted"], tombstone["message"], tombstone["reactions"]) == (True, None, [])


@pytest.mark.parametrize("settings", [{"RATE_LIMIT_MESSAGES": "1000/minute"}])  # 210 reactions by one user
def test_more_than_200_changed_older_messages_give_200_and_updated_has_more(socket, alice, bob, task, chat):
    ids = [chat.sent(task, alice, f"old {i}")["id"] for i in range(CATCH_UP_LIMIT + 5)]
    reactor = socket(alice)
    for message_id in ids:
        assert emit(reactor, "add_reaction", {"messageId": message_id, "emoji": "✔"})["ok"] is True

    data = catch_up(socket(bob), task["id"], ids[-1])

    assert [m["id"] for m in data["updated"]] == ids[:CATCH_UP_LIMIT]
    assert data["updatedHasMore"] is True
    assert (data["missed"], data["hasMore"]) == ([], False)


def test_a_change_undone_while_away_still_reports_the_current_state(room, socket, client, alice, bob, task):
    """A reaction added and removed again: the message changed, its current state is reported."""
    url = f"/api/tasks/{task['id']}/messages"
    old = sent(room["Alice"], task["id"], "old")["id"]
    client.post(f"{url}/{old}/reactions", json={"emoji": "👍"}, headers=alice.headers)
    client.delete(f"{url}/{old}/reactions/👍", headers=alice.headers)

    data = catch_up(socket(bob), task["id"], old)

    assert [(m["id"], m["reactions"]) for m in data["updated"]] == [(old, [])]


@pytest.mark.parametrize("last_message_id", [
    -1, 2**31, 10**20, "abc", "", True, False, 1.5, [1], {"id": 1},
], ids=["negative", "over 32 bits", "huge", "a word", "empty string", "True", "False", "a float", "a list",
        "a dict"])
def test_a_malformed_last_message_id_is_a_validation_error(room, socket, bob, task, last_message_id):
    sock = socket(bob)

    ack = emit(sock, "join_task", {"taskId": task["id"], "lastMessageId": last_message_id})

    assert_refused(sock, ack, "validation_error")
    # Not joined: nobody heard of it. The socket still works.
    assert room["Alice"].get_received(NS) == []
    assert sock.is_connected(NS)
    assert catch_up(sock, task["id"], 0)["missed"] == []


@pytest.mark.parametrize("last_message_id", [None, "digits"], ids=["null", "a digit string"])
def test_a_null_or_digit_string_last_message_id_is_accepted(socket, alice, bob, task, last_message_id, chat):
    first = chat.sent(task, alice, "first")["id"]
    second = chat.sent(task, alice, "second")["id"]
    sent_value = str(first) if last_message_id == "digits" else None

    data = catch_up(socket(bob), task["id"], sent_value)

    assert [m["id"] for m in data["missed"]] == ([second] if sent_value else [])


# ---- order and the client's copy -------------------------------------------------------------
def test_previous_id_chains_the_messages_of_each_task(socket, alice, bob, make_task, add_member, task, chat):
    other = make_task(alice, "Other")
    add_member(alice, other, bob, "commenter")
    watcher = socket(alice)
    join(watcher, task["id"])
    drain(watcher)
    sock = socket(bob)

    # Interleaved between the two tasks and the two doors.
    acked = {task["id"]: [], other["id"]: []}
    for i in range(4):
        for task_id in (task["id"], other["id"]):
            acked[task_id].append(sent(sock, task_id, f"socket {i}"))
            acked[task_id].append(chat.sent(task_id, alice, f"rest {i}"))

    for task_id, messages in acked.items():
        stored = chat.whole_history(task_id, alice)
        assert [m["id"] for m in stored] == [m["id"] for m in messages]
        expected = [None] + [m["id"] for m in messages[:-1]]
        assert [m["previousId"] for m in messages] == expected, "in the acks"
        assert [m["previousId"] for m in stored] == expected, "as stored"
    # A client in the room sees each new message linked to the one before it.
    received = [e["message"] for e in events(watcher, "new_message")]
    assert [m["previousId"] for m in received] == [None] + [m["id"] for m in received[:-1]]


def test_events_of_other_tasks_never_arrive(socket, client, alice, bob, make_task, add_member, task):
    """Bob is a member of both tasks but joined only this one."""
    other = make_task(alice, "Other")
    add_member(alice, other, bob, "editor")
    mine = socket(bob)
    join(mine, task["id"])
    busy = socket(alice)
    join(busy, other["id"])
    drain(mine)

    elsewhere = [sent(busy, other["id"], f"elsewhere {i}")["id"] for i in range(3)]
    emit(busy, "typing_start", {"taskId": other["id"]})
    emit(busy, "edit_message", {"messageId": elsewhere[0], "message": "edited elsewhere"})
    emit(busy, "add_reaction", {"messageId": elsewhere[1], "emoji": "👀"})
    emit(busy, "delete_message", {"messageId": elsewhere[2]})
    client.patch(f"/api/tasks/{other['id']}", json={"title": "Renamed"}, headers=alice.headers)
    here = sent(mine, task["id"], "here")

    assert [(e["name"], e["args"][0]["taskId"]) for e in mine.get_received(NS)] == [("new_message", task["id"])]
    # Nor in a catch-up: only this task's messages.
    data = catch_up(socket(bob), task["id"], 0)
    assert [m["id"] for m in data["missed"]] == [here["id"]]


class Replica:
    """A client's copy of one task's chat, kept as a real client would: every message by id,
    replaced only by a state at least as new (`version`)."""

    def __init__(self) -> None:
        self.messages: dict[int, dict] = {}

    def put(self, message: dict) -> None:
        held = self.messages.get(message["id"])
        if held is None or message["version"] >= held["version"]:
            self.messages[message["id"]] = comparable(message)

    def apply(self, received: list[dict]) -> None:
        for event in received:
            name, payload = event["name"], event["args"][0]
            # Each carries the message's whole new state (docs/realtime.md).
            if name in ("new_message", "message_updated", "message_deleted", "reaction_updated"):
                self.put(payload["message"])

    def apply_catch_up(self, data: dict) -> None:
        for message in data["missed"] + data["updated"]:
            self.put(message)

    def newest_id(self) -> int:
        return max(self.messages, default=0)

    def as_list(self) -> list[dict]:
        return [self.messages[i] for i in sorted(self.messages)]


def comparable(message: dict) -> dict:
    """What a client shows; reactions without `me`, which broadcasts leave out."""
    return {
        "id": message["id"], "userId": message["userId"], "message": message["message"],
        "deleted": message["deleted"], "version": message["version"], "previousId": message["previousId"],
        "reactions": [{k: v for k, v in r.items() if k != "me"} for r in message["reactions"]],
    }


def test_a_client_applying_events_and_the_catch_up_ends_with_the_servers_list(
        room, socket, client, alice, bob, carol, task, chat):
    url = f"/api/tasks/{task['id']}/messages"
    early = [chat.sent(task, alice, f"before Carol {i}")["id"] for i in range(3)]
    room["Carol"].disconnect(NS)
    replica = Replica()
    carol_sock = socket(carol)
    replica.apply_catch_up(catch_up(carol_sock, task["id"], 0))

    # Live: Carol applies what she receives.
    live = [sent(room["Bob"], task["id"], f"live {i}")["id"] for i in range(2)]
    emit(room["Alice"], "edit_message", {"messageId": early[0], "message": "edited live"})
    emit(room["Bob"], "add_reaction", {"messageId": early[1], "emoji": "👍"})
    emit(carol_sock, "add_reaction", {"messageId": early[1], "emoji": "👍"})
    sent(carol_sock, task["id"], "Carol live")
    emit(room["Alice"], "delete_message", {"messageId": live[0]})
    replica.apply(carol_sock.get_received(NS))

    # Away: the others change old and new messages.
    carol_sock.disconnect(NS)
    away = [sent(room["Alice"], task["id"], f"away {i}")["id"] for i in range(5)]
    client.patch(f"{url}/{early[2]}", json={"message": "edited away"}, headers=alice.headers)
    client.delete(f"{url}/{early[0]}", headers=alice.headers)
    client.delete(f"{url}/{early[1]}/reactions/👍", headers=bob.headers)
    client.post(f"{url}/{live[1]}/reactions", json={"emoji": "✅"}, headers=alice.headers)
    client.patch(f"{url}/{away[1]}", json={"message": "away 1, edited"}, headers=alice.headers)
    client.delete(f"{url}/{away[3]}", headers=alice.headers)
    sent(room["Bob"], task["id"], "the last one")

    # Back: one join with the newest id held, then whatever arrives live.
    back = socket(carol)
    data = catch_up(back, task["id"], replica.newest_id())
    assert (data["hasMore"], data["updatedHasMore"]) == (False, False)
    replica.apply_catch_up(data)
    replica.apply(back.get_received(NS))

    assert replica.as_list() == [comparable(m) for m in chat.whole_history(task, carol)]


def test_every_change_raises_the_version_so_the_newer_state_wins(room, task):
    """A change may reach a client twice (in the catch-up and as an event, since the socket
    joins the room first): comparing versions tells which state is newer."""
    message = sent(room["Alice"], task["id"], "v1")
    edited = emit(room["Alice"], "edit_message", {"messageId": message["id"], "message": "v2"})["data"]
    reacted = emit(room["Bob"], "add_reaction", {"messageId": message["id"], "emoji": "👍"})["data"]
    deleted = emit(room["Alice"], "delete_message", {"messageId": message["id"]})["data"]
    later = sent(room["Bob"], task["id"], "later")

    versions = [m["version"] for m in (message, edited, reacted, deleted)]
    assert versions == sorted(set(versions)), "strictly increasing"
    assert later["version"] > deleted["version"], "one change counter per task"
    replica = Replica()
    for state in (deleted, message, reacted, edited):  # out of order, as a race could deliver them
        replica.put(state)
    assert replica.as_list() == [comparable(deleted)]
