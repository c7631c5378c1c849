"""Property: whatever clients do, no message is lost and none is stored twice.

A hypothesis state machine drives the real app through Flask's test client and
Flask-SocketIO's test client. Three users (Alice, Bob, Carol) have one or two
devices each and share one or two tasks. Steps: join a task's room (with
`lastMessageId` = the device's newest id, i.e. catch-up), leave it, drop the
connection and reconnect (re-joining with catch-up), send (fresh clientId) or
resend (a clientId used before, as a client does when an ack was lost), edit,
delete, react (add or take back an emoji), remove a member and add one back
(maybe as a viewer). A send may reply to a message of its task (a live one or a
tombstone) and mention members; so edits and deletes also hit parents of
replies, whose `replyPreview` then changes. Sends, edits, deletes and reactions
go through a socket or over REST.

The machine keeps a model (who is a member with which role, which socket is in
which room, what was stored) and checks after every step:
- every event each device received in that step is exactly the one the model
  expects (so a device not in a room hears nothing of it, and one in it hears
  each change once), and no device hears of a task its user is not a member of
  at that moment; the one exception is `removed_from_task`, sent to the user
  just removed;
- every acked message is stored exactly once (counted by clientId in the REST
  history), and refused sends store nothing;
- every stored message is what the model says: text, `deleted`, `version`,
  `replyTo` and its `replyPreview` (the parent's current excerpt, or `deleted`
  and no excerpt), mentions, reactions;
- every device in a room shows exactly the server's list for that task, field
  by field (all of each message but `reactions[].me`, which room broadcasts
  leave out). A device builds its list only as docs/realtime.md tells a client
  to: the messages of `new_message`, `message_updated`, `message_deleted` and
  `reaction_updated` events and of the `missed` and `updated` lists of its join
  acks, merged by id keeping the higher `version`; and two copies of one
  version must be equal. Send/edit/delete acks are not merged: a device outside
  the room that took its own ack's id as its newest would catch up from there
  and skip what it missed before it;
- a copy kept only from catch-ups (the task owner reconnecting at each check
  with the newest id it holds, merging `missed` and `updated`) is the server's
  list too, field by field.

How the machine gets its app: hypothesis runs many examples inside one test
function, so a function-scoped fixture lives through all of them. The test
takes conftest's `app` fixture (built on the session's migrated `database_url`)
and hands it to each new machine through the factory given to
`run_state_machine_as_test`. Each example (one machine) then starts from
scratch by hand: it empties the tables with the toolkit's `empty_tables`,
registers its three users over REST, and creates its tasks; its teardown closes
every socket, so the app's presence registry is empty again for the next one.
Building one app per example would isolate no better (the database is the only
shared state) and cost a second of CI time per ten examples. `derandomize=True`
makes every run try the same examples.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from flask_socketio.test_client import SocketIOTestClient
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test,
)

from app.extensions import socketio
from toolkit.database import empty_tables
from toolkit.env import NO_LIMITS
from toolkit.sockets import NS
from toolkit.users import User

NAMES = ("Alice", "Bob", "Carol")
# Few, so edits sometimes repeat the text. The two long ones differ only after the
# excerpt a reply quotes (REPLY_EXCERPT): editing one into the other changes no quote.
REPLY_EXCERPT = 100
TEXTS = ("hi", "ok", "done", "on it", "x" * REPLY_EXCERPT + " first", "x" * REPLY_EXCERPT + " second")
EMOJIS = ("👍", "🎉")
ADDED_ROLES = ("editor", "commenter", "viewer")
PAGE = 3  # small, so reading the server's list pages with `after=`

SETTINGS = settings(
    max_examples=30, stateful_step_count=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def view(message: dict) -> dict:
    """A message as a device keeps it: all of it but `reactions[].me`, which room
    broadcasts leave out (a client computes it from `userIds`), and an ack's `duplicate`."""
    kept = {key: value for key, value in message.items() if key != "duplicate"}
    kept["reactions"] = [{k: v for k, v in r.items() if k != "me"} for r in message["reactions"]]
    return kept


def check_me(message: dict, viewer: int) -> None:
    """Where `me` is given (acks, catch-ups, REST), it is the viewer's."""
    for reaction in message["reactions"]:
        assert reaction["me"] == (viewer in reaction["userIds"]), (viewer, message)


def event_key(event: dict) -> tuple:
    """(name, taskId, what it is about): enough to tell any two expected events apart."""
    name, payload = event["name"], (event["args"] or [None])[0]
    if name == "error":
        return (name, None, payload["code"])
    about = {
        "new_message": lambda p: p["message"]["id"],
        "message_updated": lambda p: p["message"]["id"],
        "message_deleted": lambda p: p["messageId"],
        "reaction_updated": lambda p: p["messageId"],
        "user_joined": lambda p: p["userId"],
        "user_left": lambda p: p["userId"],
        "member_changed": lambda p: (p["action"], p["member"]["userId"]),
        "task_notification": lambda p: p.get("messageId"),
    }.get(name, lambda p: None)
    return (name, payload.get("taskId"), about(payload))


@dataclass
class Outcome:
    """A socket ack or a REST answer, in one shape."""

    ok: bool
    data: Any = None
    code: str | None = None
    status: int | None = None


@dataclass
class Device:
    """One of a user's devices: its socket (None while disconnected) and the chat as it shows it."""

    name: str
    user: str
    sock: SocketIOTestClient | None = None
    joined: set[int] = field(default_factory=set)  # rooms the socket is in
    rejoin: set[int] = field(default_factory=set)  # rooms it was in when it dropped
    shown: dict[int, dict[int, dict]] = field(default_factory=dict)  # task -> message id -> view

    def __repr__(self) -> str:  # how a failing example names it
        return self.name

    def newest(self, task: int) -> int:
        return max(self.shown.get(task, {}), default=0)


@dataclass
class Stored:
    id: int
    task: int
    author: str
    text: str
    version: int
    client_id: str
    reply_to: int | None = None
    mentions: list[int] = field(default_factory=list)
    reactions: set[tuple[int, str]] = field(default_factory=set)  # (user id, emoji)
    deleted: bool = False


class ChatMachine(RuleBasedStateMachine):
    def __init__(self, app: Flask):
        super().__init__()
        self.app = app
        with app.app_context():
            empty_tables()
        self.client: FlaskClient = self.app.test_client()
        self.users = {name: self._register(name) for name in NAMES}
        self.tasks: list[int] = []
        self.owner: dict[int, str] = {}
        self.members: dict[int, dict[str, str]] = {}  # task -> user -> role
        self.devices: list[Device] = []
        self.stored: dict[int, Stored] = {}
        self.acked: dict[tuple[str, str], Stored] = {}  # (user, clientId) -> the message stored
        self.used_client_ids: dict[str, list[str]] = {name: [] for name in NAMES}
        self.version: dict[int, int] = {}  # task -> highest version seen
        # task -> message id -> message: the copy kept only from catch-ups (_a_catch_up_copy_shows)
        self.caught_up: dict[int, dict[int, dict]] = {}
        self._catching_up: SocketIOTestClient | None = None  # its socket, while it catches up
        self._client_ids = itertools.count(1)

    def teardown(self) -> None:
        """Every socket closes, so the next example starts with nobody connected."""
        if self._catching_up is not None:  # a check failed while it was connected
            self._catching_up.disconnect(NS)
        for device in self._connected():
            device.sock.disconnect(NS)

    # ---- setup ------------------------------------------------------------------------
    def _register(self, name: str) -> User:
        email = f"{name.lower()}@example.com"
        response = self.client.post("/api/auth/register", json={
            "email": email, "password": User.password, "firstName": name, "lastName": "Prop",
        })
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return User(id=body["user"]["id"], email=email, first_name=name, last_name="Prop",
                    token=body["accessToken"], refresh_token=body["refreshToken"])

    @initialize(
        devices=st.tuples(*[st.integers(1, 2)] * len(NAMES)),
        task_count=st.integers(1, 2),
        roles=st.tuples(*[st.sampled_from(("editor", "commenter"))] * len(NAMES)),
        data=st.data(),
    )
    def start(self, devices, task_count, roles, data):
        """Alice owns the first task, Bob the second; everybody is a member of
        each; every device connects, and joins some of the tasks."""
        for owner in NAMES[:task_count]:
            response = self.client.post("/api/tasks", json={"title": f"{owner}'s task"},
                                        headers=self.users[owner].headers)
            assert response.status_code == 201, response.get_json()
            task = response.get_json()["id"]
            self.tasks.append(task)
            self.owner[task], self.members[task], self.version[task] = owner, {owner: "owner"}, 0
            for name, role in zip(NAMES, roles, strict=False):
                if name != owner:
                    self._add(task, name, role)
        for name, count in zip(NAMES, devices, strict=False):
            for number in range(1, count + 1):
                device = Device(f"{name}/{number}", name)
                self.devices.append(device)
                self._connect(device)
                for task in self.tasks:
                    if data.draw(st.booleans(), label=f"{device.name} joins {task}"):
                        self._join(device, task)

    # ---- the model's questions ------------------------------------------------------------
    def _connected(self) -> list[Device]:
        return [d for d in self.devices if d.sock is not None]

    def _room(self, task: int) -> list[Device]:
        return [d for d in self._connected() if task in d.joined]

    def _present(self, user: str, task: int) -> bool:
        return any(d.user == user for d in self._room(task))

    def _devices_of(self, user: str) -> list[Device]:
        return [d for d in self._connected() if d.user == user]

    def _uid(self, user: str) -> int:
        return self.users[user].id

    def _draw_actor(self, data, user: str | None = None) -> tuple[str, Device | None]:
        """A connected device (socket door), or a user over REST (device None)."""
        users = [user] if user else list(NAMES)
        choices = [(d.user, d) for d in self._connected() if d.user in users] + [(u, None) for u in users]
        return data.draw(st.sampled_from(choices), label="actor")

    # ---- doing, and checking what everybody heard ---------------------------------------------
    def _emit(self, device: Device, name: str, payload: dict) -> Outcome:
        ack = device.sock.emit(name, payload, namespace=NS, callback=True)
        if ack["ok"]:
            return Outcome(True, ack["data"])
        return Outcome(False, code=ack["error"]["code"])

    def _rest(self, method: str, url: str, user: str, body: dict | None = None) -> Outcome:
        response = self.client.open(url, method=method, json=body, headers=self.users[user].headers)
        answer = response.get_json(silent=True)
        if response.status_code < 400:
            return Outcome(True, answer, status=response.status_code)
        return Outcome(False, code=answer["error"]["code"], status=response.status_code)

    @staticmethod
    def _to(devices: list[Device], *keys: tuple) -> dict[str, Counter]:
        return {d.name: Counter(keys) for d in devices}

    @staticmethod
    def _merge(*expectations: dict[str, Counter]) -> dict[str, Counter]:
        merged: dict[str, Counter] = {}
        for expected in expectations:
            for name, keys in expected.items():
                merged[name] = merged.get(name, Counter()) + keys
        return merged

    def _refused(self, device: Device | None, out: Outcome, code: str) -> dict[str, Counter]:
        """The failure, and the `error` event the failing socket gets."""
        assert not out.ok and out.code == code, (out, code)
        return self._to([device], ("error", None, code)) if device else {}

    def _settle(self, expected: dict[str, Counter], removed: tuple[str, int] | None = None) -> None:
        """Every connected device heard exactly what was expected in this step; then
        each merges what it heard into what it shows."""
        for device in self._connected():
            heard = device.sock.get_received(NS)
            for event in heard:
                payload = (event["args"] or [None])[0]
                task = payload.get("taskId") if isinstance(payload, dict) else None
                if task is not None:
                    allowed = device.user in self.members[task] or (
                        event["name"] == "removed_from_task" and removed == (device.user, task))
                    assert allowed, f"{device.name} heard {event['name']} of task {task}, not being a member"
            got = Counter(event_key(e) for e in heard)
            assert got == expected.get(device.name, Counter()), (device.name, heard)
            for event in heard:
                self._merge_event(device, event)

    @staticmethod
    def _keep(copy: dict[int, dict], message: dict, who: str) -> None:
        """The client's one merge rule (docs/realtime.md): by id, the higher version
        wins. One version is one state: two copies of it must be equal."""
        item = view(message)
        known = copy.get(item["id"])
        if known is None or item["version"] > known["version"]:
            copy[item["id"]] = item
        elif item["version"] == known["version"]:
            assert item == known, (who, "same version, different state", known, item)

    def _show(self, device: Device, task: int, message: dict) -> None:
        self._keep(device.shown.setdefault(task, {}), message, device.name)

    def _merge_event(self, device: Device, event: dict) -> None:
        """Each of these events carries the message's whole new state (`message`)."""
        name, payload = event["name"], event["args"][0]
        if name in ("new_message", "message_updated", "message_deleted", "reaction_updated"):
            assert payload["message"]["taskId"] == payload["taskId"], payload
            self._show(device, payload["taskId"], payload["message"])

    def _connect(self, device: Device) -> None:
        device.sock = socketio.test_client(self.app, namespace=NS, auth={"token": self.users[device.user].token},
                                           flask_test_client=self.client)
        assert device.sock.is_connected(NS)
        self._settle({})  # connecting tells nobody anything

    def _join(self, device: Device, task: int) -> None:
        user, newest = device.user, device.newest(task)
        member = user in self.members[task]
        announced = member and not self._present(user, task)
        out = self._emit(device, "join_task", {"taskId": task, "lastMessageId": newest})
        if not member:
            self._settle(self._refused(device, out, "forbidden"))
            return
        assert out.ok, out
        others = [d for d in self._room(task) if d is not device]
        device.joined.add(task)
        data = out.data
        assert not data["hasMore"] and not data["updatedHasMore"], "this run stays far below the catch-up limit"
        missed, updated = [m["id"] for m in data["missed"]], [m["id"] for m in data["updated"]]
        assert missed == sorted(missed) and all(i > newest for i in missed), (newest, missed)
        assert updated == sorted(updated) and all(i <= newest for i in updated), (newest, updated)
        present = {self._uid(d.user) for d in self._room(task)}
        assert sorted(o["userId"] for o in data["online"]) == sorted(present), data["online"]
        for message in data["missed"] + data["updated"]:
            check_me(message, self._uid(user))
            self._show(device, task, message)
        self._settle(self._to(others, ("user_joined", task, self._uid(user))) if announced else {})

    def _left(self, device: Device, task: int) -> dict[str, Counter]:
        """The device is out of the room: `user_left` when it was its user's last one there."""
        device.joined.discard(task)
        if self._present(device.user, task):
            return {}
        return self._to(self._room(task), ("user_left", task, self._uid(device.user)))

    def _add(self, task: int, user: str, role: str) -> None:
        """By email; the added user's devices hear it in their own room (`task_notification`)."""
        room = self._room(task)
        out = self._rest("POST", f"/api/tasks/{task}/members", self.owner[task],
                         {"email": self.users[user].email, "role": role})
        assert out.ok, out
        self.members[task][user] = role
        self._settle(self._merge(
            self._to(room, ("member_changed", task, ("added", self._uid(user)))),
            self._to(self._devices_of(user), ("task_notification", task, None)),
        ))

    def _check_change(self, task: int, message: dict) -> None:
        """Each change gets a version above every earlier one of its task."""
        assert message["version"] > self.version[task], (message, self.version[task])
        self.version[task] = message["version"]

    # ---- rules: rooms and connections ----------------------------------------------------
    @precondition(lambda self: self._connected())
    @rule(data=st.data())
    def join(self, data):
        """Mostly a room the device is not in (so it catches up); sometimes one it
        is in already (nothing happens but the catch-up)."""
        rooms = [(d, t) for d in self._connected() for t in self.tasks]
        outside = [(d, t) for d, t in rooms if t not in d.joined]
        again = data.draw(st.booleans(), label="a room it is in") if outside else True
        device, task = data.draw(st.sampled_from(rooms if again else outside), label="device, task")
        self._join(device, task)

    @precondition(lambda self: self._connected())
    @rule(data=st.data())
    def leave(self, data):
        device = data.draw(st.sampled_from(self._connected()), label="device")
        task = data.draw(st.sampled_from(self.tasks), label="task")
        out = self._emit(device, "leave_task", {"taskId": task})
        assert out.ok and out.data == {"taskId": task}, out
        self._settle(self._left(device, task) if task in device.joined else {})

    @precondition(lambda self: self._connected())
    @rule(data=st.data())
    def disconnect(self, data):
        device = data.draw(st.sampled_from(self._connected()), label="device")
        device.sock.disconnect(NS)
        sock, device.sock = device.sock, None
        assert not sock.is_connected(NS)
        device.rejoin = set(device.joined)
        self._settle(self._merge(*[self._left(device, task) for task in sorted(device.rejoin)]))

    @precondition(lambda self: any(d.sock is None for d in self.devices))
    @rule(data=st.data())
    def reconnect(self, data):
        """A new socket, which re-joins the rooms the old one was in, catching up."""
        device = data.draw(st.sampled_from([d for d in self.devices if d.sock is None]), label="device")
        self._connect(device)
        for task in sorted(device.rejoin):
            self._join(device, task)
        device.rejoin = set()

    # ---- rules: membership -------------------------------------------------------------------
    def _removable(self) -> list[tuple[int, str]]:
        return [(t, u) for t in self.tasks for u, role in self.members[t].items() if role != "owner"]

    @precondition(lambda self: self._removable())
    @rule(data=st.data())
    def remove_member(self, data):
        """By the owner, or the member leaving the task themself."""
        task, user = data.draw(st.sampled_from(self._removable()), label="removed")
        actor = data.draw(st.sampled_from((self.owner[task], user)), label="by")
        was_present, uid = self._present(user, task), self._uid(user)
        out = self._rest("DELETE", f"/api/tasks/{task}/members/{uid}", actor)
        assert out.ok and out.status == 204, out
        del self.members[task][user]
        for device in self.devices:
            if device.user == user:
                device.joined.discard(task)
        room = self._room(task)
        expected = self._merge(
            self._to(self._devices_of(user), ("removed_from_task", task, None)),
            self._to(room, ("member_changed", task, ("removed", uid))),
            self._to(room, ("user_left", task, uid)) if was_present else {},
        )
        self._settle(expected, removed=(user, task))

    def _addable(self) -> list[tuple[int, str]]:
        return [(t, u) for t in self.tasks for u in NAMES if u not in self.members[t]]

    @precondition(lambda self: self._addable())
    @rule(data=st.data())
    def add_member(self, data):
        task, user = data.draw(st.sampled_from(self._addable()), label="added")
        self._add(task, user, data.draw(st.sampled_from(ADDED_ROLES), label="role"))

    # ---- rules: messages ------------------------------------------------------------------------
    def _send_outcome(self, user: str, task: int, client_id: str, mentions: list[str]) -> str:
        """What the server must answer, in the order it checks."""
        role = self.members[task].get(user)
        if role is None or role == "viewer":
            return "forbidden"
        first = self.acked.get((user, client_id))
        if first is not None:
            return "duplicate" if first.task == task else "client_id_reused"
        if any(m not in self.members[task] for m in mentions):
            return "validation_error"
        return "new"

    def _send(self, data, user: str, device: Device | None, client_id: str) -> None:
        task = data.draw(st.sampled_from(self.tasks), label="task")
        text = data.draw(st.sampled_from(TEXTS), label="text")
        mentions = data.draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True), label="mentions")
        parents = [m.id for m in self.stored.values() if m.task == task]
        reply_to = data.draw(st.none() | st.sampled_from(parents), label="replyTo") if parents else None
        body = {"message": text, "clientId": client_id, "mentions": [self._uid(m) for m in mentions],
                "replyTo": reply_to}
        if client_id not in self.used_client_ids[user]:
            self.used_client_ids[user].append(client_id)
        expect = self._send_outcome(user, task, client_id, mentions)
        room = self._room(task)
        if device:
            out = self._emit(device, "send_message", {"taskId": task, **body})
        else:
            out = self._rest("POST", f"/api/tasks/{task}/messages", user, body)

        if expect == "duplicate":
            first = self.acked[(user, client_id)]
            assert out.ok and out.data["duplicate"] is True and out.status in (None, 200), out
            assert (out.data["id"], out.data["version"]) == (first.id, first.version), (out, first)
            assert out.data["message"] == (None if first.deleted else first.text)
            self._settle({})  # a retry announces nothing
            return
        if expect != "new":
            self._settle(self._refused(device, out, expect))
            return
        message = out.data
        assert out.ok and message["duplicate"] is False and out.status in (None, 201), out
        assert (message["taskId"], message["userId"], message["message"], message["clientId"]) == (
            task, self._uid(user), text, client_id)
        assert message["previousId"] == max((s.id for s in self.stored.values() if s.task == task), default=None)
        self._check_change(task, message)
        stored = Stored(message["id"], task, user, text, message["version"], client_id, reply_to,
                        [self._uid(m) for m in mentions])
        self.stored[stored.id] = self.acked[(user, client_id)] = stored
        notified = [d for m in mentions if m != user for d in self._devices_of(m)]
        self._settle(self._merge(
            self._to(room, ("new_message", task, stored.id)),
            self._to(notified, ("task_notification", task, stored.id)),
        ))

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def send(self, data):
        """A new message with a fresh clientId."""
        user, device = self._draw_actor(data)
        self._send(data, user, device, f"c{next(self._client_ids)}")

    @precondition(lambda self: any(self.used_client_ids.values()))
    @rule(data=st.data())
    def resend(self, data):
        """A clientId this user sent before, as after a lost ack: maybe to the same
        task (stored once), maybe to another (refused); after a refused send, the
        retry is the first store."""
        user = data.draw(st.sampled_from([u for u in NAMES if self.used_client_ids[u]]), label="user")
        user, device = self._draw_actor(data, user)
        self._send(data, user, device, data.draw(st.sampled_from(self.used_client_ids[user]), label="clientId"))

    def _draw_message_and_actor(self, data, favoured: str) -> tuple[Stored, str, Device | None]:
        """A stored message, and who acts on it: often the favoured user (the author, or the owner)."""
        live = [m for m in self.stored.values() if not m.deleted]
        gone = [m for m in self.stored.values() if m.deleted]
        # Mostly a live message: acting on a tombstone is one case, not the common one.
        deleted = not live or (gone and data.draw(st.integers(0, 3), label="a deleted one") == 0)
        message = data.draw(st.sampled_from(gone if deleted else live), label="message")
        favourite = message.author if favoured == "author" else self.owner[message.task]
        user = favourite if data.draw(st.booleans(), label=f"by the {favoured}") else None
        user, device = self._draw_actor(data, user)
        return message, user, device

    def _refusal(self, message: Stored, user: str, device: Device | None) -> str | None:
        if user not in self.members[message.task]:
            # A socket cannot tell a message it may not see from one that does not exist.
            return "not_found" if device else "forbidden"
        return None

    @precondition(lambda self: self.stored)
    @rule(data=st.data())
    def edit(self, data):
        message, user, device = self._draw_message_and_actor(data, "author")
        text = data.draw(st.sampled_from(TEXTS), label="text")
        task, role = message.task, self.members[message.task].get(user)
        expect = self._refusal(message, user, device) or (
            "forbidden" if user != message.author or role == "viewer"
            else "message_deleted" if message.deleted
            else "unchanged" if text == message.text
            else "edited")
        room = self._room(task)
        if device:
            out = self._emit(device, "edit_message", {"messageId": message.id, "message": text})
        else:
            out = self._rest("PATCH", f"/api/tasks/{task}/messages/{message.id}", user, {"message": text})

        if expect not in ("edited", "unchanged"):
            self._settle(self._refused(device, out, expect))
            return
        assert out.ok and out.data["message"] == text, out
        if expect == "unchanged":
            assert out.data["version"] == message.version, "the same text again changes nothing"
            self._settle({})
            return
        assert out.data["editedAt"] is not None
        self._check_change(task, out.data)
        quote_changed = text[:REPLY_EXCERPT] != message.text[:REPLY_EXCERPT]
        message.text, message.version = text, out.data["version"]
        replies = self._restamp_replies(message) if quote_changed else []
        self._settle(self._to(room, ("message_updated", task, message.id),
                              *[("message_updated", task, reply.id) for reply in replies]))

    @precondition(lambda self: self.stored)
    @rule(data=st.data())
    def delete(self, data):
        message, user, device = self._draw_message_and_actor(data, "owner")
        task, role = message.task, self.members[message.task].get(user)
        expect = self._refusal(message, user, device) or (
            "forbidden" if user != message.author and role != "owner"
            else "again" if message.deleted
            else "deleted")
        room = self._room(task)
        if device:
            out = self._emit(device, "delete_message", {"messageId": message.id})
        else:
            out = self._rest("DELETE", f"/api/tasks/{task}/messages/{message.id}", user)

        if expect not in ("deleted", "again"):
            self._settle(self._refused(device, out, expect))
            return
        tombstone = out.data
        assert out.ok and tombstone["deleted"] is True and tombstone["message"] is None, out
        if expect == "again":
            assert tombstone["version"] == message.version, "deleting twice changes nothing"
            self._settle({})
            return
        self._check_change(task, tombstone)
        message.deleted, message.version = True, tombstone["version"]
        message.mentions, message.reactions = [], set()
        replies = self._restamp_replies(message)
        self._settle(self._to(room, ("message_deleted", task, message.id),
                              *[("message_updated", task, reply.id) for reply in replies]))

    def _restamp_replies(self, parent: Stored) -> list[Stored]:
        """What the parent's replies quote changed: each (tombstones too) has changed
        with it, at the parent's new version, and the room hears it."""
        replies = sorted((m for m in self.stored.values() if m.reply_to == parent.id), key=lambda m: m.id)
        for reply in replies:
            reply.version = parent.version
        return replies

    @precondition(lambda self: self.stored)
    @rule(data=st.data())
    def react(self, data):
        """Add an emoji, or take one back (maybe one that is not there: nothing happens)."""
        message, user, device = self._draw_message_and_actor(data, "author")
        emoji = data.draw(st.sampled_from(EMOJIS), label="emoji")
        key = (self._uid(user), emoji)
        add = data.draw(st.booleans(), label="add") if key in message.reactions else True
        if not add and data.draw(st.booleans(), label="one that is not there"):
            key = (self._uid(user), "🙈")
        task, role = message.task, self.members[message.task].get(user)
        expect = self._refusal(message, user, device) or (
            "forbidden" if role == "viewer"
            else "message_deleted" if message.deleted
            else "unchanged" if (key in message.reactions) == add
            else "changed")
        room = self._room(task)
        if device:
            out = self._emit(device, "add_reaction" if add else "remove_reaction",
                             {"messageId": message.id, "emoji": key[1]})
        elif add:
            out = self._rest("POST", f"/api/tasks/{task}/messages/{message.id}/reactions", user, {"emoji": key[1]})
        else:
            out = self._rest("DELETE", f"/api/tasks/{task}/messages/{message.id}/reactions/{quote(key[1])}", user)

        if expect not in ("changed", "unchanged"):
            self._settle(self._refused(device, out, expect))
            return
        assert out.ok, out
        check_me(out.data, self._uid(user))
        if expect == "unchanged":
            assert out.data["version"] == message.version, "a reaction that is there (or is not) changes nothing"
            self._settle({})
            return
        self._check_change(task, out.data)
        (message.reactions.add if add else message.reactions.discard)(key)
        message.version = out.data["version"]
        self._settle(self._to(room, ("reaction_updated", task, message.id)))

    # ---- invariants ---------------------------------------------------------------------------
    def _server_list(self, task: int) -> list[dict]:
        """The task's whole chat, oldest first, read forward a page at a time with `after`."""
        items, after = [], 0
        while True:
            response = self.client.get(f"/api/tasks/{task}/messages", query_string={"after": after, "limit": PAGE},
                                       headers=self.users[self.owner[task]].headers)
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            items += page["items"]
            if not page["hasMore"]:
                return items
            assert len(page["items"]) == PAGE
            after = page["items"][-1]["id"]

    @invariant()
    def the_server_list_is_whole_and_every_copy_is_the_servers(self):
        for task in self.tasks:
            server = self._server_list(task)
            self._each_acked_message_is_stored_exactly_once(task, server)
            self._every_device_in_the_room_shows(task, server)
            self._a_catch_up_copy_shows(task, server)

    def _each_acked_message_is_stored_exactly_once(self, task: int, server: list[dict]) -> None:
        ids = [m["id"] for m in server]
        assert ids == sorted(set(ids)), ids
        assert [m["previousId"] for m in server] == ([None] + ids[:-1] if ids else []), "previousId links the list"
        by_client_id = Counter((m["userId"], m["clientId"]) for m in server)
        acked = {(self._uid(user), cid): s for (user, cid), s in self.acked.items() if s.task == task}
        assert set(by_client_id) == set(acked), "refused sends store nothing"
        assert all(count == 1 for count in by_client_id.values()), by_client_id
        for m in server:
            stored = acked[(m["userId"], m["clientId"])]
            assert (m["id"], m["deleted"], m["version"]) == (stored.id, stored.deleted, stored.version)
            assert m["message"] == (None if stored.deleted else stored.text)
            assert (m["deletedAt"] is not None) == stored.deleted
            assert (m["replyTo"], m["replyPreview"]) == (stored.reply_to, self._preview(stored.reply_to)), m
            assert m["mentions"] == stored.mentions
            assert {(user, r["emoji"]) for r in m["reactions"] for user in r["userIds"]} == stored.reactions
            check_me(m, self._uid(self.owner[task]))

    def _preview(self, parent_id: int | None) -> dict | None:
        """What a reply quotes: the parent's author and current excerpt, or that it is gone."""
        if parent_id is None:
            return None
        parent = self.stored[parent_id]
        return {"messageId": parent.id, "userId": self._uid(parent.author), "userName": f"{parent.author} Prop",
                "excerpt": None if parent.deleted else parent.text[:REPLY_EXCERPT], "deleted": parent.deleted}

    def _every_device_in_the_room_shows(self, task: int, server: list[dict]) -> None:
        for device in self._room(task):
            assert_same_list(device.shown.get(task, {}), server, device.name)

    def _a_catch_up_copy_shows(self, task: int, server: list[dict]) -> None:
        """A copy kept only from catch-ups: the task's owner connects, joins with the
        newest id the copy holds, merges `missed` and `updated`, and goes again (the
        room hears the owner come and go when no other socket of theirs is there)."""
        owner, uid = self.owner[task], self._uid(self.owner[task])
        copy = self.caught_up.setdefault(task, {})
        announced = not self._present(owner, task)
        room = self._room(task)
        self._catching_up = sock = socketio.test_client(
            self.app, namespace=NS, auth={"token": self.users[owner].token}, flask_test_client=self.client)
        ack = sock.emit("join_task", {"taskId": task, "lastMessageId": max(copy, default=0)}, namespace=NS,
                        callback=True)
        self._settle(self._to(room, ("user_joined", task, uid)) if announced else {})
        sock.disconnect(NS)
        self._catching_up = None
        self._settle(self._to(room, ("user_left", task, uid)) if announced else {})
        assert ack["ok"], ack
        assert not ack["data"]["hasMore"] and not ack["data"]["updatedHasMore"]
        for message in ack["data"]["missed"] + ack["data"]["updated"]:
            check_me(message, uid)
            self._keep(copy, message, f"the catch-up copy of task {task}")
        assert_same_list(copy, server, f"the catch-up copy of task {task}")


def assert_same_list(copy: dict[int, dict], server: list[dict], who: str) -> None:
    """The copy is the server's list, field by field; a failure names each difference."""
    assert sorted(copy) == [m["id"] for m in server], (who, "ids", sorted(copy))
    differences = []
    for message in server:
        held, wanted = copy[message["id"]], view(message)
        differences += [
            (message["id"], key, held.get(key, "<absent>"), wanted.get(key, "<absent>"))
            for key in sorted(set(held) | set(wanted)) if held.get(key, "<absent>") != wanted.get(key, "<absent>")
        ]
    assert not differences, (who, "(id, field, the copy's, the server's)", differences)


# Thousands of events by the same few users in one app: rate limits are not under test here.
@pytest.mark.settings(**NO_LIMITS)
def test_no_message_is_lost_or_stored_twice(app):
    """One app (conftest's fixture) for the whole run; each example empties its tables."""
    run_state_machine_as_test(lambda: ChatMachine(app), settings=SETTINGS)
