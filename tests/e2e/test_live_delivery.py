"""Delivery guarantees against live gunicorn (the gevent websocket worker), as in production.

- Catch-up: a member who was away rejoins with the last message id it had and,
  applying `missed` and `updated` to its list (the higher `version` wins per id,
  tombstones replace), ends with exactly the server's list; also when the
  server was restarted (SIGTERM, then started again on the same port and
  database) while the member was away.
- Retries: a client whose connection drops before it reads the ack reconnects
  and sends again with the same clientId; each message is stored once and
  announced once.

Python-socketio clients over WebSocket (see live.py). Every wait is bounded.
"""
from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from e2e.live import (
    SETTLE, STOP_TIMEOUT, WAIT, Api, LiveServer, LiveSocket, User, make_room, restart_server, start_server,
    whole_history,
)

pytestmark = pytest.mark.e2e

BURST = 50  # messages sent while the member is away
MAX_PAGES = 50  # bound on paging through a task's history
FLAKY_MESSAGES = 20
MAX_ATTEMPTS = 5  # bound on the retries of one message
COMPARED = ("id", "message", "deleted", "editedAt", "version", "reactions")


# ---- the server's list, and a client's ---------------------------------------------
def state(message: dict) -> dict:
    """What a client keeps of a message. `reactions[].me` is left out: room
    broadcasts have none, and it is the viewer's, not the message's."""
    kept = {key: message[key] for key in COMPARED}
    kept["reactions"] = [{k: v for k, v in r.items() if k != "me"} for r in message["reactions"]]
    return kept


@dataclass
class ChatView:
    """One client's copy of a task chat, kept the way a client should keep it."""

    messages: dict[int, dict] = field(default_factory=dict)

    def apply(self, message: dict) -> None:
        """The higher version wins; an equal one is the same state."""
        current = self.messages.get(message["id"])
        if current is None or message["version"] > current["version"]:
            self.messages[message["id"]] = state(message)

    def apply_events(self, received: list[tuple[str, Any]]) -> None:
        for event, data in received:
            # Each carries the message's whole new state (docs/realtime.md).
            if event in ("new_message", "message_updated", "message_deleted", "reaction_updated"):
                self.apply(data["message"])

    @property
    def last_id(self) -> int:
        return max(self.messages)

    def as_list(self) -> list[dict]:
        return [self.messages[i] for i in sorted(self.messages)]


def assert_same_list(view: ChatView, server: list[dict]) -> None:
    expected = [state(m) for m in server]
    mine = view.as_list()
    if mine != expected:
        ours, theirs = {m["id"]: m for m in mine}, {m["id"]: m for m in expected}
        diff = [(i, ours.get(i), theirs.get(i))
                for i in sorted(ours.keys() | theirs.keys()) if ours.get(i) != theirs.get(i)]
        raise AssertionError(f"{len(diff)} messages differ (id, client, server):\n" + "\n".join(map(repr, diff)))


# ---- the room ----------------------------------------------------------------------
@dataclass
class Chat:
    """A task with an owner (Alice), a commenter (Bob) who write, and Carol, who comes and goes."""

    server: LiveServer
    api: Api
    make_socket: Callable[..., LiveSocket]
    task_id: int
    alice: User
    bob: User
    carol: User
    writers: dict[int, LiveSocket] = field(default_factory=dict)  # user id -> socket

    @classmethod
    def open(cls, server: LiveServer, make_socket: Callable[..., LiveSocket]) -> Chat:
        api = Api(server.url)
        room = make_room(api, "Delivery")
        carol = api.register("Carol", f"Away{uuid.uuid4().hex[:6]}")
        api.add_member(room.owner, room.task_id, carol, "commenter")
        chat = cls(server, api, make_socket, room.task_id, room.owner, room.member, carol)
        chat.connect_writers()
        return chat

    def connect_writers(self) -> None:
        # The two namespaces share task rooms: the writers sit on both.
        for user, namespace in ((self.alice, "/"), (self.bob, "/tasks")):
            sock = self.make_socket(self.server, namespace).connect(user.token)
            assert sock.call("join_task", {"taskId": self.task_id})["ok"] is True
            self.writers[user.id] = sock

    def disconnect_writers(self) -> None:
        for sock in self.writers.values():
            sock.disconnect()
        self.writers.clear()

    def send(self, user: User, text: str) -> dict:
        ack = self.writers[user.id].call("send_message", {"taskId": self.task_id, "message": text})
        assert ack["ok"] is True and ack["data"]["duplicate"] is False, ack
        return ack["data"]

    def send_burst(self, count: int, label: str) -> list[dict]:
        """Alice and Bob send `count` messages between them, at the same time."""
        def send_many(user: User, numbers: range) -> list[dict]:
            return [self.send(user, f"{label} {n} from {user.first_name}") for n in numbers]

        with ThreadPoolExecutor(max_workers=2) as pool:
            halves = [pool.submit(send_many, self.alice, range(0, count, 2)),
                      pool.submit(send_many, self.bob, range(1, count, 2))]
            sent = [m for half in halves for m in half.result(timeout=count * WAIT)]
        return sorted(sent, key=lambda m: m["id"])

    def call(self, user: User, event: str, data: dict) -> dict:
        ack = self.writers[user.id].call(event, data)
        assert ack["ok"] is True, (event, data, ack)
        return ack["data"]

    def edit(self, message: dict, text: str) -> dict:
        author = self.alice if message["userId"] == self.alice.id else self.bob
        return self.call(author, "edit_message", {"messageId": message["id"], "message": text})

    def server_list(self) -> list[dict]:
        return whole_history(self.api, self.carol, self.task_id, max_pages=MAX_PAGES)

    def close(self) -> None:
        self.api.close()


def carol_comes(chat: Chat) -> tuple[LiveSocket, ChatView]:
    """Carol joins, then loads the history: the events that arrive meanwhile overlap it, harmlessly."""
    sock = chat.make_socket(chat.server, "/tasks").connect(chat.carol.token)
    ack = sock.call("join_task", {"taskId": chat.task_id})
    assert ack["ok"] is True, ack
    assert ack["data"]["missed"] == [] and ack["data"]["updated"] == [], ack
    view = ChatView()
    for message in chat.server_list():
        view.apply(message)
    return sock, view


def carol_while_here(chat: Chat, sock: LiveSocket) -> None:
    """Messages and an edit while Carol is connected; she sees them live."""
    first = chat.send_burst(6, "while Carol is here")
    edited = chat.edit(first[1], "edited while Carol is here")
    last = chat.send_burst(3, "still here")
    sock.wait_for("message_updated", lambda d: d["message"]["id"] == edited["id"])
    sock.wait_for("new_message", lambda d: d["message"]["id"] == last[-1]["id"])


def carol_leaves(sock: LiveSocket, view: ChatView) -> int:
    """Carol's copy is what the events of her connection made of the history; answers her last id."""
    sock.disconnect()
    view.apply_events(sock.received)
    return view.last_id


@dataclass
class AwayChanges:
    """What changed, while Carol was away, among the messages she already had."""

    edited: dict
    deleted: dict
    reacted: dict


def change_while_away(chat: Chat, old: list[dict], new: list[dict], *, delete_her_last: bool) -> AwayChanges:
    """Edits (one old message twice, one new), deletes (one old, by the owner;
    one new, by its author), and a reaction to an old message.

    `delete_her_last`: the old message deleted is the last one Carol had, the
    anchor of her catch-up; else her last message is left as it was, so that
    `updated` must leave it out."""
    her_last, earlier = old[-1], old[:-1]
    old_by_alice = [m for m in earlier if m["userId"] == chat.alice.id]
    old_by_bob = [m for m in earlier if m["userId"] == chat.bob.id]
    to_delete = her_last if delete_her_last else old_by_bob[-1]
    edited = chat.edit(old_by_bob[0], "old, edited while Carol was away")
    edited = chat.edit(edited, "old, edited twice while Carol was away")
    chat.edit(new[10], "new, edited before Carol saw it")
    deleted = chat.call(chat.alice, "delete_message", {"messageId": to_delete["id"]})  # the owner deletes
    new_deleted = next(m for m in new[20:] if m["userId"] == chat.bob.id)
    chat.call(chat.bob, "delete_message", {"messageId": new_deleted["id"]})  # the author deletes
    reacted = chat.call(chat.bob, "add_reaction", {"messageId": old_by_alice[-1]["id"], "emoji": "👍"})
    assert deleted["deleted"] is True and reacted["reactions"][0]["count"] == 1, (deleted, reacted)
    return AwayChanges(edited, deleted, reacted)


def carol_returns(chat: Chat, view: ChatView, last_id: int, changes: AwayChanges) -> dict:
    """Carol rejoins with her last id, applies the catch-up, and has the server's list."""
    sock = chat.make_socket(chat.server, "/tasks").connect(chat.carol.token)
    ack = sock.call("join_task", {"taskId": chat.task_id, "lastMessageId": last_id})
    assert ack["ok"] is True, ack
    data = ack["data"]
    assert data["hasMore"] is False and data["updatedHasMore"] is False, data
    missed_ids = [m["id"] for m in data["missed"]]
    assert missed_ids == sorted(missed_ids) and all(i > last_id for i in missed_ids), missed_ids
    # Exactly the old messages that changed while she was away: not the one
    # edited while she was here, which she has.
    assert [m["id"] for m in data["updated"]] == sorted(
        [changes.edited["id"], changes.deleted["id"], changes.reacted["id"]]
    ), data["updated"]

    for message in data["missed"] + data["updated"]:
        view.apply(message)
    assert_same_list(view, chat.server_list())
    assert sock.events("error") == [], sock.received
    return data


# ---- fixtures ------------------------------------------------------------------------
@pytest.fixture
def gunicorn_api(gunicorn_server: LiveServer) -> Iterator[Api]:
    api = Api(gunicorn_server.url)
    yield api
    api.close()


@pytest.fixture
def own_gunicorn(e2e_database_url, tmp_path) -> Iterator[LiveServer]:
    """A gunicorn of this test alone (the test restarts it), on the run's database.
    Fails the test if any of its processes logged a traceback."""
    server = start_server("gunicorn", e2e_database_url, tmp_path)
    try:
        yield server
    finally:
        server.stop()
    for log in sorted(tmp_path.glob("gunicorn-*.log")):  # the log of each process it ran
        text = log.read_text("utf-8", "replace")
        assert "Traceback" not in text, f"{log.name} has a traceback:\n{text}"


# ---- catch-up ------------------------------------------------------------------------
def carol_goes_away(chat: Chat) -> tuple[ChatView, list[dict], int]:
    """Carol comes, sees some traffic live, and leaves: her copy, the server's list then, her last id."""
    chat.send_burst(4, "before Carol")
    carol, view = carol_comes(chat)
    carol_while_here(chat, carol)
    old = chat.server_list()
    last_id = carol_leaves(carol, view)
    assert_same_list(view, old)  # the live events kept her copy right
    assert last_id == old[-1]["id"]
    return view, old, last_id


def test_rejoin_catches_up_with_what_changed_while_away(gunicorn_server: LiveServer, live_socket):
    chat = Chat.open(gunicorn_server, live_socket)
    try:
        view, old, last_id = carol_goes_away(chat)

        new = chat.send_burst(BURST, "while Carol is away")
        changes = change_while_away(chat, old, new, delete_her_last=False)

        data = carol_returns(chat, view, last_id, changes)
        assert len(data["missed"]) == BURST, [m["id"] for m in data["missed"]]
    finally:
        chat.close()


def test_rejoin_catches_up_across_a_server_restart(own_gunicorn: LiveServer, live_socket, e2e_database_url,
                                                   tmp_path):
    chat = Chat.open(own_gunicorn, live_socket)
    try:
        view, old, last_id = carol_goes_away(chat)
        before = chat.send_burst(BURST // 2, "away, before the restart")

        # A deploy: the writers' connections go (gunicorn's graceful stop would
        # wait for them), SIGTERM, and the server comes back on the same port and database.
        chat.disconnect_writers()
        chat.api.close()
        own_gunicorn.terminate()
        assert own_gunicorn.process.wait(timeout=STOP_TIMEOUT) == 0, own_gunicorn.log_tail()
        restart_server(own_gunicorn, e2e_database_url, tmp_path)
        chat.connect_writers()

        after = chat.send_burst(BURST - BURST // 2, "away, after the restart")
        changes = change_while_away(chat, old, before + after, delete_her_last=True)

        data = carol_returns(chat, view, last_id, changes)
        assert len(data["missed"]) == BURST, [m["id"] for m in data["missed"]]
        # The history runs on across the restart: each message names the one before it.
        history = chat.server_list()
        assert [m["previousId"] for m in history[1:]] == [m["id"] for m in history[:-1]], history
    finally:
        chat.close()


# ---- retries on a flaky connection -----------------------------------------------------
def drop_after_emit(sock: LiveSocket) -> None:
    """A clean Socket.IO disconnect right after the emit: the send may or may not get through."""
    sock.disconnect()


def drop_transport(sock: LiveSocket) -> None:
    """The network goes: the TCP connection closes under the WebSocket, with no
    close frame and no Engine.IO or Socket.IO goodbye."""
    sock.client.eio.ws.sock.shutdown(socket.SHUT_RDWR)
    deadline = time.monotonic() + WAIT
    while sock.client.connected and time.monotonic() < deadline:  # the client notices, and gives up
        time.sleep(0.01)


def drop_after_delivery(sock: LiveSocket, observer: LiveSocket, client_id: str) -> None:
    """The send got through (the observer has it) but the ack is never read."""
    observer.wait_for("new_message", lambda d: d["message"]["clientId"] == client_id)
    drop_transport(sock)


def test_retries_after_dropped_connections_store_and_announce_once(gunicorn_server: LiveServer, gunicorn_api: Api,
                                                                    live_socket):
    api = gunicorn_api
    room = make_room(api, "Flaky")
    observer = live_socket(gunicorn_server, "/").connect(room.owner.token)
    assert observer.call("join_task", {"taskId": room.task_id})["ok"] is True
    payloads = [
        {"taskId": room.task_id, "message": f"flaky {n}", "clientId": f"flaky-{uuid.uuid4().hex}"}
        for n in range(FLAKY_MESSAGES)
    ]

    def attempt_and_drop(payload: dict, way: int) -> bool:
        """Send, and lose the connection before reading the ack in one of three
        ways; answers whether the message surely got through."""
        sock = live_socket(gunicorn_server, "/tasks").connect(room.member.token)
        sock.client.emit("send_message", payload, namespace=sock.namespace, callback=lambda *_: None)
        if way % 3 == 0:
            drop_after_delivery(sock, observer, payload["clientId"])
            return True
        (drop_after_emit if way % 3 == 1 else drop_transport)(sock)
        return False

    acks: dict[str, dict] = {}
    for n, payload in enumerate(payloads):
        delivered = attempt_and_drop(payload, n)
        if n % 4 == 0:  # some messages lose a second connection too
            delivered = attempt_and_drop(payload, n + 1) or delivered
        for _ in range(MAX_ATTEMPTS):  # reconnect and retry until an ack comes
            sock = live_socket(gunicorn_server, "/tasks").connect(room.member.token)
            try:
                ack = sock.call("send_message", payload)
            except socketio.exceptions.TimeoutError:
                continue
            finally:
                sock.disconnect()
            break
        else:
            raise AssertionError(f"no ack for {payload['clientId']} in {MAX_ATTEMPTS} attempts")
        assert ack["ok"] is True, ack
        assert ack["data"]["clientId"] == payload["clientId"] and ack["data"]["message"] == payload["message"], ack
        if delivered:  # it was stored before a drop: the retry finds it
            assert ack["data"]["duplicate"] is True, ack
        acks[payload["clientId"]] = ack["data"]

    # Stored once each: the ids the acks named, and nothing else.
    stored = whole_history(api, room.owner, room.task_id, max_pages=MAX_PAGES)
    assert Counter(m["clientId"] for m in stored) == Counter({p["clientId"]: 1 for p in payloads}), stored
    assert sorted(m["id"] for m in stored) == sorted(a["id"] for a in acks.values())

    # Announced once each to the member who stayed.
    def announced() -> Counter:
        return Counter(e["message"]["clientId"] for e in observer.events("new_message"))

    deadline = time.monotonic() + WAIT
    while len(announced()) < len(payloads) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(SETTLE)
    assert announced() == Counter({p["clientId"]: 1 for p in payloads}), observer.events("new_message")
    assert observer.events("error") == []
