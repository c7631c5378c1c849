"""Presence per user, the typing throttle and the server's own `user_stopped_typing`, and
membership changes that act on connected sockets at once.

Typing settings are long by default here, so nothing expires on its own during a test;
the tests about expiry set short ones and wait with a bounded poll, never asserting a duration.
"""
from __future__ import annotations

import time
import pytest

from toolkit.sockets import Peer

NO_SEND = "No permission to send messages"
SHORT_TYPING = {"TYPING_TIMEOUT": "0.3s", "TYPING_THROTTLE": "0.2s"}


@pytest.fixture
def settings() -> dict[str, str]:
    return {"TYPING_TIMEOUT": "60s", "TYPING_THROTTLE": "60s"}


def wait_for(peer: Peer, name: str, seconds: float = 5.0) -> list[dict]:
    """Everything the peer receives until a `name` event arrives (bounded; fails if it never does)."""
    got: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += peer.received()
        if any(e["name"] == name for e in got):
            return got
        time.sleep(0.02)
    pytest.fail(f"no {name} within {seconds}s; got {[e['name'] for e in got]}")


def online(*users) -> list[dict]:
    return [{"userId": u.id, "userName": u.name} for u in sorted(users, key=lambda u: u.id)]


def go(peer: Peer, task_id: int, how: str) -> None:
    """The socket leaves the task: by asking, or by disconnecting."""
    if how == "leave":
        assert peer.emit("leave_task", {"taskId": task_id})["ok"] is True
    else:
        peer.disconnect()


@pytest.fixture
def watcher(room_of, alice) -> Peer:
    """Alice, in the room on /tasks, watching what the others do."""
    [peer] = room_of(alice)
    return peer


@pytest.fixture
def bob_twice(socket, bob) -> tuple[Peer, Peer]:
    """Bob on two devices: one on /tasks, one on / (the original frontend). Not joined yet."""
    return Peer(socket(bob), "/tasks"), Peer(socket(bob, namespace="/"), "/")


# ---- presence ---------------------------------------------------------------------------------
def test_a_user_with_two_sockets_joins_once(watcher, bob_twice, alice, bob, task):
    first, second = bob_twice

    ack = first.join(task["id"])["data"]

    assert ack["online"] == online(alice, bob)
    [joined] = watcher.events("user_joined")
    assert {k: joined[k] for k in ("taskId", "userId", "userName")} == \
           {"taskId": task["id"], "userId": bob.id, "userName": "Bob Editor"}

    ack = second.join(task["id"])["data"]

    assert ack["online"] == online(alice, bob), "each user once, self included"
    assert watcher.received() == []
    assert first.received() == []


def test_joining_twice_on_the_same_socket_announces_nothing(watcher, bob_twice, task):
    first, _ = bob_twice
    first.join(task["id"])
    watcher.received()

    first.join(task["id"])

    assert watcher.received() == []


@pytest.mark.parametrize("first_goes", ["leave", "disconnect"])
@pytest.mark.parametrize("last_goes", ["leave", "disconnect"])
def test_user_left_only_when_the_last_socket_goes(socket, watcher, bob_twice, alice, bob, task, first_goes,
                                                   last_goes):
    first, second = bob_twice
    first.join(task["id"])
    second.join(task["id"])
    watcher.received()

    go(first, task["id"], first_goes)

    assert watcher.received() == [], "Bob is still here on his other device"
    assert Peer(socket(alice), "/tasks").join(task["id"])["data"]["online"] == online(alice, bob)

    go(second, task["id"], last_goes)

    [left] = watcher.events("user_left")
    assert (left["taskId"], left["userId"], left["userName"]) == (task["id"], bob.id, "Bob Editor")
    assert Peer(socket(alice), "/tasks").join(task["id"])["data"]["online"] == online(alice)


def test_leaving_a_task_that_was_not_joined_announces_nothing(watcher, bob_twice, task):
    first, _ = bob_twice
    assert first.emit("leave_task", {"taskId": task["id"]})["ok"] is True
    assert watcher.received() == []


# ---- typing throttle ------------------------------------------------------------------------
def test_many_typing_starts_within_the_throttle_announce_once(watcher, bob_twice, bob, task):
    first, second = bob_twice
    first.join(task["id"])
    second.join(task["id"])
    watcher.received()

    for peer in (first, second) * 10:  # from both of Bob's devices: still one user typing
        assert peer.emit("typing_start", {"taskId": task["id"]}) == {"ok": True, "data": {"taskId": task["id"]}}

    assert watcher.received() == [{
        "name": "user_typing", "args": [{"taskId": task["id"], "userId": bob.id, "userName": "Bob Editor"}],
        "namespace": "/tasks",
    }]
    # Bob's other device hears it too (only the socket that typed is skipped).
    assert [e["userId"] for e in second.events("user_typing")] == [bob.id]


@pytest.mark.parametrize("settings", [{"TYPING_THROTTLE": "0.2s", "TYPING_TIMEOUT": "60s"}], ids=["throttle 0.2s"])
def test_typing_is_announced_again_once_the_throttle_has_passed(watcher, bob_twice, task):
    typist, _ = bob_twice
    typist.join(task["id"])
    watcher.received()

    # Keep typing until a second announcement comes (bounded).
    got = []
    deadline = time.monotonic() + 5
    while len([e for e in got if e["name"] == "user_typing"]) < 2 and time.monotonic() < deadline:
        typist.emit("typing_start", {"taskId": task["id"]})
        got += watcher.received()
        time.sleep(0.02)

    assert [e["name"] for e in got] == ["user_typing", "user_typing"]


# ---- the server stops typing itself ------------------------------------------------------------
@pytest.fixture
def bob_typing(watcher, bob_twice, task) -> Peer:
    """Bob joined on /tasks and typing; Alice saw `user_typing`."""
    typist, _ = bob_twice
    typist.join(task["id"])
    typist.emit("typing_start", {"taskId": task["id"]})
    assert watcher.names() == ["user_joined", "user_typing"]
    return typist


def stopped(task, user) -> dict:
    return {"taskId": task["id"], "userId": user.id}


def test_sending_a_message_stops_typing(watcher, bob_typing, bob, task):
    bob_typing.emit("send_message", {"taskId": task["id"], "message": "done typing"})

    got = watcher.received()
    assert [e["name"] for e in got] == ["new_message", "user_stopped_typing"]
    assert got[1]["args"][0] == stopped(task, bob)
    # Typing afresh is announced at once: the stop ended the throttle window.
    bob_typing.emit("typing_start", {"taskId": task["id"]})
    assert watcher.names() == ["user_typing"]


def test_sending_without_typing_sends_no_stop(watcher, bob_twice, task):
    sender, _ = bob_twice
    sender.join(task["id"])
    watcher.received()

    sender.emit("send_message", {"taskId": task["id"], "message": "no typing first"})

    assert watcher.names() == ["new_message"]


@pytest.mark.parametrize("how", ["leave", "disconnect"])
def test_leaving_stops_typing(watcher, bob_typing, bob, task, how):
    go(bob_typing, task["id"], how)

    got = watcher.received()
    assert [e["name"] for e in got] == ["user_stopped_typing", "user_left"]
    assert got[0]["args"][0] == stopped(task, bob)


def test_leaving_on_one_device_while_another_stays_does_not_stop_typing(watcher, bob_typing, bob_twice, task):
    _, other = bob_twice
    other.join(task["id"])
    bob_typing.emit("leave_task", {"taskId": task["id"]})

    assert watcher.received() == []


def test_removal_stops_typing(client, watcher, bob_typing, alice, bob, task):
    assert client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers).status_code == 204

    got = watcher.received()
    assert [e["name"] for e in got] == ["user_stopped_typing", "member_changed", "user_left"]
    assert got[0]["args"][0] == stopped(task, bob)


@pytest.mark.parametrize("settings", [SHORT_TYPING], ids=["timeout 0.3s"])
def test_silence_past_the_typing_timeout_stops_typing(watcher, bob_typing, bob, task):
    got = wait_for(watcher, "user_stopped_typing")

    assert got == [{"name": "user_stopped_typing", "args": [stopped(task, bob)], "namespace": "/tasks"}]
    # Typing again is a fresh start, announced at once.
    bob_typing.emit("typing_start", {"taskId": task["id"]})
    assert "user_typing" in [e["name"] for e in wait_for(watcher, "user_typing")]


def test_an_explicit_typing_stop_is_passed_on_once(watcher, bob_typing, bob, task):
    for _ in range(3):
        assert bob_typing.emit("typing_stop", {"taskId": task["id"]})["ok"] is True

    assert [e["args"][0] for e in watcher.received()] == [stopped(task, bob)]


# ---- typing needs a joined socket of a member -------------------------------------------------
def test_typing_from_a_socket_that_has_not_joined_is_forbidden(watcher, bob_twice, task):
    joined, not_joined = bob_twice
    joined.join(task["id"])
    watcher.received()

    for event in ("typing_start", "typing_stop"):
        ack = not_joined.emit(event, {"taskId": task["id"]})
        assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden")
    assert [e["code"] for e in not_joined.events("error")] == ["forbidden", "forbidden"]
    assert watcher.received() == []


def test_typing_from_a_removed_member_is_forbidden(client, watcher, bob_twice, alice, bob, task):
    typist, _ = bob_twice
    typist.join(task["id"])
    client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)
    watcher.received()
    typist.received()

    ack = typist.emit("typing_start", {"taskId": task["id"]})

    assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden")
    assert watcher.received() == []


# ---- membership changes act at once -----------------------------------------------------------
def test_a_removed_members_sockets_are_told_and_hear_nothing_more(socket, client, watcher, bob_twice, alice, bob,
                                                                  carol, task, add_member):
    add_member(alice, task, carol, "commenter")
    carols = Peer(socket(carol, namespace="/"), "/")
    carols.join(task["id"])
    first, second = bob_twice
    first.join(task["id"])
    second.join(task["id"])
    idle = Peer(socket(bob), "/tasks")  # never joined: told all the same
    for peer in (watcher, carols, first, second):
        peer.received()

    assert client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers).status_code == 204

    for peer in (first, second, idle):
        assert peer.received() == [
            {"name": "removed_from_task", "args": [{"taskId": task["id"]}], "namespace": peer.ns}
        ]
    for peer in (watcher, carols):
        got = peer.received()
        assert [e["name"] for e in got] == ["member_changed", "user_left"], peer.ns
        changed, left = (e["args"][0] for e in got)
        assert (changed["taskId"], changed["action"], changed["member"]["userId"]) == (task["id"], "removed", bob.id)
        assert (left["taskId"], left["userId"]) == (task["id"], bob.id)
    assert watcher.join(task["id"])["data"]["online"] == online(alice, carol)

    # The room goes on without Bob.
    message = watcher.emit("send_message", {"taskId": task["id"], "message": "after Bob"})["data"]
    watcher.emit("typing_start", {"taskId": task["id"]})
    watcher.emit("edit_message", {"messageId": message["id"], "message": "after Bob, edited"})
    assert carols.names() == ["new_message", "user_typing", "message_updated"]
    for peer in (first, second, idle):
        assert peer.received() == []
    # And Bob cannot come back in by himself.
    ack = first.emit("join_task", task["id"])
    assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden")


def test_removing_a_member_who_is_not_online_sends_no_user_left(client, watcher, alice, bob, task):
    client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)
    assert watcher.names() == ["member_changed"]


def test_a_member_demoted_to_viewer_is_refused_on_the_very_next_send(client, watcher, bob_twice, alice, bob, task):
    sender, _ = bob_twice
    sender.join(task["id"])
    mine = sender.emit("send_message", {"taskId": task["id"], "message": "while editor"})["data"]
    watcher.received()
    sender.received()
    url = f"/api/tasks/{task['id']}/members/{bob.id}"

    assert client.patch(url, json={"role": "viewer"}, headers=alice.headers).status_code == 200

    [changed] = sender.events("member_changed")
    assert (changed["action"], changed["member"]["role"]) == ("updated", "viewer")
    for event, payload in [
        ("send_message", {"taskId": task["id"], "message": "as a viewer"}),
        ("edit_message", {"messageId": mine["id"], "message": "as a viewer"}),
        ("add_reaction", {"messageId": mine["id"], "emoji": "👍"}),
    ]:
        ack = sender.emit(event, payload)
        assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden"), event
    assert sender.emit("send_message", {"taskId": task["id"], "message": "x"})["error"]["message"] == NO_SEND
    watcher.received()
    messages = client.get(f"/api/tasks/{task['id']}/messages", headers=alice.headers).get_json()["items"]
    assert [m["message"] for m in messages] == ["while editor"]
    # Still in the room, reading.
    watcher.emit("send_message", {"taskId": task["id"], "message": "for the viewer"})
    assert "new_message" in sender.names()
    # Promoted back: the next send goes through.
    client.patch(url, json={"role": "commenter"}, headers=alice.headers)
    assert sender.emit("send_message", {"taskId": task["id"], "message": "commenting again"})["ok"] is True


def test_a_re_added_member_can_join_again(client, watcher, bob_twice, alice, bob, task, add_member):
    first, _ = bob_twice
    first.join(task["id"])
    client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)
    add_member(alice, task, bob, "commenter")
    watcher.received()
    first.received()

    data = first.join(task["id"])["data"]  # the same socket, still connected

    assert (data["role"], data["online"]) == ("commenter", online(alice, bob))
    assert watcher.names() == ["user_joined"]
    message = first.emit("send_message", {"taskId": task["id"], "message": "back again"})["data"]
    assert [e["message"]["id"] for e in watcher.events("new_message")] == [message["id"]]
    assert [e["message"]["id"] for e in first.events("new_message")] == [message["id"]]
