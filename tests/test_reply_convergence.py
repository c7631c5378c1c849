"""Copies converge on the server's list: replies when their parent changes, and tombstones.

A reply quotes its parent (`replyPreview`). When the parent is edited (its first
characters change) or deleted, each reply changed too: it takes the change's
`version`, the room hears it as `message_updated`, and a catch-up lists it in
`updated`. `message_deleted` and `reaction_updated` carry the message's whole new
state (`message`), as REST history shows it. Each change is made over REST and
over Socket.IO (`door`); the state a client keeps is compared with REST history.
"""
from __future__ import annotations

import json

import pytest

from toolkit.chat import messages_url
from toolkit.sockets import NS, emit, events, sent

DOORS = ("rest", "socket")


def history_as_broadcast(chat, task: dict, user) -> dict[int, dict]:
    """REST history by id, with `reactions[].me` left out, as room broadcasts leave it out."""
    return {message_id: without_me(m) for message_id, m in chat.by_id(task, user).items()}


def without_me(message: dict) -> dict:
    return {**message, "reactions": [{k: v for k, v in r.items() if k != "me"} for r in message["reactions"]]}


def change(door: str, chat, sock, user, task: dict, action: str, message_id: int, **body) -> dict:
    """Edit, delete or react to a message over REST or as a socket event; the new state.
    `body`: the edit's `message`, or the reaction's `emoji`."""
    if door == "rest":
        response = {
            "edit": lambda: chat.edit(task, user, message_id, body["message"]),
            "delete": lambda: chat.delete(task, user, message_id),
            "react": lambda: chat.react(task, user, message_id, body["emoji"]),
        }[action]()
        assert response.status_code == 200, response.get_json()
        return response.get_json()
    event = {"edit": "edit_message", "delete": "delete_message", "react": "add_reaction"}[action]
    ack = emit(sock, event, {"messageId": message_id, **body})
    assert ack["ok"], ack
    return ack["data"]


@pytest.fixture
def socks(room_of, task, alice, bob, carol, add_member):
    """Sockets of Alice (the owner), Bob (editor) and Carol (commenter), in the task's room."""
    add_member(alice, task, carol, "commenter")
    peers = room_of(alice, bob, carol, drain=False)
    return {name: peer.sock for name, peer in zip(("alice", "bob", "carol"), peers, strict=True)}


@pytest.fixture
def thread(socks, task):
    """Alice's question; Bob's reply, Carol's reply (then deleted: a tombstone still
    quotes its parent), and Bob's message that replies to nothing. Inboxes emptied."""
    parent = sent(socks["alice"], task["id"], "Can you send the draft?")
    reply = sent(socks["bob"], task["id"], "Sending it now", replyTo=parent["id"])
    gone = sent(socks["carol"], task["id"], "Me too", replyTo=parent["id"])
    assert emit(socks["carol"], "delete_message", {"messageId": gone["id"]})["ok"]
    other = sent(socks["bob"], task["id"], "Unrelated")
    for sock in socks.values():
        sock.get_received(NS)
    return {"parent": parent, "reply": reply, "gone": gone, "other": other}


def room_heard(socks: dict, expected: list[tuple[str, int]], now: dict[int, dict], task: dict) -> list[dict]:
    """Every socket heard exactly `expected` ((event, message id), in this order),
    each event carrying the message as history shows it now. The payloads."""
    payloads = []
    for name, sock in socks.items():
        got = [(e["name"], e["args"][0]) for e in sock.get_received(NS)]
        assert [(event, payload["message"]["id"]) for event, payload in got] == expected, name
        for _event, payload in got:
            assert payload["message"] == now[payload["message"]["id"]] and payload["taskId"] == task["id"], name
        payloads += [payload for _event, payload in got]
    return payloads


# ---- a parent edited -------------------------------------------------------------------------
@pytest.mark.parametrize("door", DOORS)
def test_editing_a_parent_changes_each_reply_and_the_room_hears_it(door, socks, task, alice, bob, thread, chat):
    before = history_as_broadcast(chat, task, bob)

    parent = change(door, chat, socks["alice"], alice, task, "edit", thread["parent"]["id"],
                    message="Can you send the final draft?")

    now = history_as_broadcast(chat, task, bob)
    replies = [thread["reply"]["id"], thread["gone"]["id"]]
    for reply in replies:
        assert now[reply]["replyPreview"]["excerpt"] == "Can you send the final draft?"
        assert now[reply]["version"] == parent["version"] > before[reply]["version"]
        assert {**now[reply], "version": None, "replyPreview": None} == {
            **before[reply], "version": None, "replyPreview": None}, "only the quote and the version change"
    assert now[thread["other"]["id"]] == before[thread["other"]["id"]]
    room_heard(socks, [("message_updated", thread["parent"]["id"]), *[("message_updated", r) for r in replies]],
               now, task)


@pytest.mark.parametrize("door", DOORS)
def test_an_edit_after_the_quoted_characters_changes_no_reply(door, socks, task, alice, bob, chat):
    parent = sent(socks["alice"], task["id"], "p" * 100 + " first")
    reply = sent(socks["bob"], task["id"], "ok", replyTo=parent["id"])
    for sock in socks.values():
        sock.get_received(NS)
    before = history_as_broadcast(chat, task, bob)[reply["id"]]

    change(door, chat, socks["alice"], alice, task, "edit", parent["id"], message="p" * 100 + " second")

    now = history_as_broadcast(chat, task, bob)
    assert now[reply["id"]] == before
    room_heard(socks, [("message_updated", parent["id"])], now, task)


# ---- a parent deleted ------------------------------------------------------------------------
@pytest.mark.parametrize("door", DOORS)
def test_deleting_a_parent_changes_each_reply_and_its_words_are_quoted_nowhere(
        door, socks, task, alice, bob, thread, chat):
    tombstone = change(door, chat, socks["alice"], alice, task, "delete", thread["parent"]["id"])

    now = history_as_broadcast(chat, task, bob)
    replies = [thread["reply"]["id"], thread["gone"]["id"]]
    for reply in replies:
        assert now[reply]["replyPreview"] == {
            "messageId": thread["parent"]["id"], "userId": alice.id, "userName": "Alice Owner", "excerpt": None,
            "deleted": True,
        }
        assert now[reply]["version"] == tombstone["version"]
    payloads = room_heard(
        socks, [("message_deleted", thread["parent"]["id"]), *[("message_updated", r) for r in replies]], now, task)
    assert "draft" not in json.dumps(payloads)


@pytest.mark.parametrize("door", DOORS)
def test_a_client_that_held_the_thread_catches_up_to_the_quotes_of_now(
        door, socket, socks, task, alice, bob, thread, chat):
    """Away while the parent was edited, then deleted: the catch-up lists the parent
    and each reply in `updated`, in their current state."""
    away = socket(bob)
    newest = thread["other"]["id"]
    change(door, chat, socks["alice"], alice, task, "edit", thread["parent"]["id"], message="Any news?")
    change(door, chat, socks["alice"], alice, task, "delete", thread["parent"]["id"])

    ack = emit(away, "join_task", {"taskId": task["id"], "lastMessageId": newest})

    assert ack["ok"] and ack["data"]["missed"] == [], ack
    now = history_as_broadcast(chat, task, bob)
    updated = {m["id"]: without_me(m) for m in ack["data"]["updated"]}
    assert list(updated) == [thread["parent"]["id"], thread["reply"]["id"], thread["gone"]["id"]]
    assert all(updated[i] == now[i] for i in updated)
    assert "news" not in json.dumps(ack) and "draft" not in json.dumps(ack)


# ---- tombstones ------------------------------------------------------------------------------
@pytest.mark.parametrize("door", DOORS)
def test_message_deleted_carries_the_tombstone_as_history_shows_it(door, socks, task, alice, bob, carol, chat):
    message = sent(socks["bob"], task["id"], "@Carol see this", mentions=[carol.id])
    assert emit(socks["carol"], "add_reaction", {"messageId": message["id"], "emoji": "👍"})["ok"]
    for sock in socks.values():
        sock.get_received(NS)

    tombstone = change(door, chat, socks["alice"], alice, task, "delete", message["id"])

    stored = history_as_broadcast(chat, task, bob)[message["id"]]
    assert without_me(tombstone) == stored
    assert (stored["deleted"], stored["message"], stored["mentions"], stored["reactions"]) == (True, None, [], [])
    assert stored["deletedAt"] is not None
    for name, sock in socks.items():
        [payload] = events(sock, "message_deleted")
        assert payload == {"taskId": task["id"], "messageId": message["id"], "version": stored["version"],
                           "deletedBy": alice.id, "message": stored}, name


@pytest.mark.parametrize("door", DOORS)
def test_reaction_updated_carries_the_message_as_history_shows_it(door, socks, task, bob, carol, chat):
    message = sent(socks["bob"], task["id"], "vote")
    for sock in socks.values():
        sock.get_received(NS)

    change(door, chat, socks["carol"], carol, task, "react", message["id"], emoji="🎉")

    stored = history_as_broadcast(chat, task, bob)[message["id"]]
    for name, sock in socks.items():
        [payload] = events(sock, "reaction_updated")
        assert payload["message"] == stored and payload["version"] == stored["version"], name
        assert payload["reactions"] == stored["reactions"], name


# ---- deleted words, anywhere a member can read --------------------------------------------------
def keep(copy: dict[int, dict], messages: list[dict]) -> None:
    """docs/realtime.md's client rule: by id, the higher version wins."""
    for message in messages:
        if message["id"] not in copy or message["version"] > copy[message["id"]]["version"]:
            copy[message["id"]] = message


def test_a_deleted_parents_words_are_nowhere_a_member_can_read(client, socket, socks, task, alice, bob, carol, chat):
    """Nor in what the server answers, nor in a member's copy of the chat: one kept
    live from the room's events, one brought up to date by a catch-up."""
    parent = sent(socks["alice"], task["id"], "zebra crossing at noon", mentions=[bob.id, carol.id])
    sent(socks["bob"], task["id"], "fine", replyTo=parent["id"])
    held = list(history_as_broadcast(chat, task, bob).values())
    live, caught_up = {}, {}
    keep(live, held)
    keep(caught_up, held)
    socks["bob"].get_received(NS)

    change("rest", chat, None, alice, task, "edit", parent["id"], message="zebra crossing at one")
    change("rest", chat, None, alice, task, "delete", parent["id"])

    keep(live, [e["args"][0]["message"] for e in socks["bob"].get_received(NS) if "message" in e["args"][0]])
    ack = emit(socket(bob), "join_task", {"taskId": task["id"], "lastMessageId": max(caught_up)})
    keep(caught_up, ack["data"]["missed"] + ack["data"]["updated"])
    assert "zebra" not in json.dumps([live, caught_up], ensure_ascii=False)
    for user in (alice, bob, carol):
        headers = user.headers
        readable = [
            client.get(messages_url(task), headers=headers).get_json(),
            client.get(messages_url(task), query_string={"around": parent["id"]}, headers=headers).get_json(),
            client.get(f"/api/tasks/{task['id']}/activity", headers=headers).get_json(),
            client.get("/api/notifications", headers=headers).get_json(),
            client.get(f"/api/tasks/{task['id']}", headers=headers).get_json(),
            client.get(messages_url(task, parent["id"]) + "/history", headers=headers).get_json(),
            emit(socket(user), "join_task", {"taskId": task["id"], "lastMessageId": 0})["data"],
        ]
        assert "zebra" not in json.dumps(readable, ensure_ascii=False), user.name
