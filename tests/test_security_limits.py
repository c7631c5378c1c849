"""Limits on what one user may send: per-user rate limits on socket events (in memory
and shared through Redis), the disconnect after too many refusals, the cap on open
sockets, packets the server drops unread (unknown and reserved events, binary
packets, packets that do not decode), sizes and JSON nesting.

Raw packets are handed to the server the way Flask-SocketIO's test client hands
its own: `socketio.server._handle_eio_message(eio_sid, encoded_packet)`, the
entry point Engine.IO calls for every message of a live connection. What the
wire does with them (sizes, binary frames, a flood) is in e2e/test_live_flood.py.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from flask_socketio.test_client import SocketIOTestClient

from app import create_app
from app.extensions import db, socketio
from app.realtime import throttle
from toolkit.env import REDIS_URL, app_env, limited
from toolkit.rest import assert_error
from toolkit.sockets import NS, drain, emit, events, join, send


def assert_rate_limited(sock, ack, ns=NS) -> dict:
    """The ack of a refused event, and the original's `error` event with the same error."""
    assert ack["ok"] is False, ack
    error = ack["error"]
    assert error["code"] == "rate_limited", ack
    assert isinstance(error["message"], str) and error["message"], ack
    retry = error["retryAfter"]
    assert isinstance(retry, int) and not isinstance(retry, bool) and 1 <= retry <= 60, ack
    assert error in events(sock, "error", ns), "the socket was not sent the `error` event"
    return error


def raw(sock, encoded, *attachments):
    """Hand one encoded Socket.IO packet (and binary frames) to the server as Engine.IO
    would; answer the ack it sent back, or None."""
    sock.acks = None
    socketio.server._handle_eio_message(sock.eio_sid, encoded)
    for frame in attachments:
        socketio.server._handle_eio_message(sock.eio_sid, frame)
    ack, sock.acks = sock.acks, None
    if ack is None:
        return None
    return ack["args"][0] if len(ack["args"]) == 1 else ack["args"]


def assert_still_serves(sock, client, user, task_id, ns=NS) -> None:
    """The socket is connected and its next event works."""
    assert sock.is_connected(ns)
    ack = send(sock, task_id, f"still here {uuid.uuid4().hex[:6]}", ns=ns)
    assert ack["ok"] is True, ack


# ---- per-user rate limits ------------------------------------------------------------------
def _send(sock, task, _message_id):
    return send(sock, task["id"], "hello")


def _typing(sock, task, _message_id):
    return emit(sock, "typing_start", {"taskId": task["id"]})


def _join(sock, task, _message_id):
    return emit(sock, "join_task", {"taskId": task["id"]})


def _mark_read(sock, task, message_id):
    return emit(sock, "mark_read", {"taskId": task["id"], "messageId": message_id})


# kind: (its setting, how many the test allows, one event of the kind)
KINDS = {
    "messages": ("RATE_LIMIT_MESSAGES", 3, _send),
    "typing": ("RATE_LIMIT_TYPING", 4, _typing),
    "joins": ("RATE_LIMIT_JOINS", 2, _join),
    "other": ("RATE_LIMIT_OTHER", 5, _mark_read),
}


@pytest.mark.parametrize(
    "kind, settings", [(kind, limited(**{setting: f"{n}/minute"})) for kind, (setting, n, _) in KINDS.items()],
    ids=list(KINDS),
)
def test_an_event_over_its_kinds_limit_is_refused_with_retry_after(socket, client, alice, bob, task, kind, settings):
    setting, allowed, event = KINDS[kind]
    a, b = socket(alice), socket(bob)
    # Setup over REST (not counted), or with events of other kinds than the one looked at.
    response = client.post(f"/api/tasks/{task['id']}/messages", json={"message": "to mark read"}, headers=bob.headers)
    message_id = response.get_json()["id"]
    if kind != "joins":
        join(a, task["id"])
        join(b, task["id"])
    drain(a, b)

    for n in range(allowed):  # the setting's number, no fewer
        ack = event(a, task, message_id)
        assert ack["ok"] is True, (n, ack)
    assert_rate_limited(a, event(a, task, message_id))
    assert_rate_limited(a, event(a, task, message_id))  # and again, while the window lasts

    # Another user, and another kind of event of the same user, are unaffected.
    for _ in range(allowed):
        assert event(b, task, message_id)["ok"] is True
    other = "joins" if kind != "joins" else "typing"
    assert KINDS[other][2](a, task, message_id)["ok"] is True


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="3/minute")])
def test_a_rate_limited_send_stores_and_broadcasts_nothing(socket, alice, bob, task, chat):
    a, b = socket(alice), socket(bob)
    join(a, task["id"])
    join(b, task["id"])
    drain(a, b)
    for n in range(3):
        assert send(a, task["id"], f"m{n}", clientId=f"c{n}")["ok"] is True

    assert_rate_limited(a, send(a, task["id"], "one too many", clientId="c-over"))

    assert [e["message"]["message"] for e in events(b, "new_message")] == ["m0", "m1", "m2"]
    assert [m["message"] for m in chat.whole_history(task, alice)] == ["m0", "m1", "m2"]


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="4/minute")])
def test_the_count_is_shared_by_all_of_a_users_sockets_on_both_namespaces(socket, alice, bob, task, chat):
    first, second, root = socket(alice), socket(alice), socket(alice, namespace="/")
    assert send(first, task["id"], "1")["ok"] is True
    assert send(second, task["id"], "2")["ok"] is True
    assert send(root, task["id"], "3", ns="/")["ok"] is True
    assert send(first, task["id"], "4")["ok"] is True

    # The fifth is refused on whichever socket it comes from.
    assert_rate_limited(second, send(second, task["id"], "5"))
    assert_rate_limited(root, send(root, task["id"], "5", ns="/"), ns="/")
    assert_rate_limited(first, send(first, task["id"], "5"))
    # A socket opened now joins the same count.
    late = socket(alice)
    assert_rate_limited(late, send(late, task["id"], "5"))

    bob_socket = socket(bob)
    for n in range(4):
        assert send(bob_socket, task["id"], f"bob {n}")["ok"] is True
    assert [m["message"] for m in chat.whole_history(task, alice)] == [
        "1", "2", "3", "4", "bob 0", "bob 1", "bob 2", "bob 3"]


# ---- shared through Redis ------------------------------------------------------------------
@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"taskchat-test-limits-{uuid.uuid4().hex}"
    yield prefix
    store = redis.Redis.from_url(REDIS_URL)
    keys = list(store.scan_iter(f"{prefix}*"))
    if keys:
        store.delete(*keys)
    store.close()


@pytest.fixture
def second_apps(app, database_url, tmp_path):
    """Make more app instances on the test's database: each is what one server process
    holds (its own socket registry and rate limiter). The Socket.IO server object is the
    process-wide one, as in the real server; handlers run in each client's own app."""
    made = []

    def make(**settings: str):
        other = create_app(
            env=app_env(database_url, ATTACHMENTS_DIR=str(tmp_path / "attachments"), **settings),
            overrides={k: v for k, v in settings.items() if k == "RATE_LIMIT_KEY_PREFIX"},
        )
        made.append(other)
        return other

    clients = []

    def connect(an_app, user, namespace=NS):
        sock = SocketIOTestClient(an_app, socketio, namespace=namespace, auth={"token": user.token})
        assert sock.is_connected(namespace)
        clients.append((sock, namespace))
        return sock

    make.connect = connect
    yield make
    for sock, namespace in clients:
        if sock.is_connected(namespace):
            sock.disconnect(namespace)
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_with_redis_the_count_is_shared_between_server_processes(second_apps, redis_prefix, alice, bob, task, chat):
    settings = limited(REDIS_URL=REDIS_URL, RATE_LIMIT_MESSAGES="3/minute", RATE_LIMIT_KEY_PREFIX=redis_prefix)
    one, two = second_apps(**settings), second_apps(**settings)
    assert one.extensions["taskchat_throttle"] is not two.extensions["taskchat_throttle"]
    on_one, on_two = second_apps.connect(one, alice), second_apps.connect(two, alice)

    assert send(on_one, task["id"], "1")["ok"] is True
    assert send(on_two, task["id"], "2")["ok"] is True
    assert send(on_one, task["id"], "3")["ok"] is True
    assert_rate_limited(on_two, send(on_two, task["id"], "4"))
    assert_rate_limited(on_one, send(on_one, task["id"], "4"))

    bob_on_two = second_apps.connect(two, bob)
    assert send(bob_on_two, task["id"], "bob")["ok"] is True
    assert [m["message"] for m in chat.whole_history(task, alice)] == ["1", "2", "3", "bob"]
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*")), "nothing was counted in Redis"


def test_without_redis_each_process_counts_its_own(second_apps, alice, task):
    """The contrast: the sharing above is Redis's doing, not one limiter in disguise."""
    settings = limited(RATE_LIMIT_MESSAGES="2/minute")
    one, two = second_apps(**settings), second_apps(**settings)
    on_one, on_two = second_apps.connect(one, alice), second_apps.connect(two, alice)
    for n in range(2):
        assert send(on_one, task["id"], f"one {n}")["ok"] is True
        assert send(on_two, task["id"], f"two {n}")["ok"] is True
    assert_rate_limited(on_one, send(on_one, task["id"], "one more"))


# ---- too many refusals: disconnected -------------------------------------------------------
@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="1/minute", RATE_LIMIT_REFUSALS="3")])
def test_a_socket_with_too_many_refusals_is_disconnected_and_the_users_others_stay(socket, alice, bob, task):
    flooder, other = socket(alice), socket(alice, namespace="/")
    watcher = socket(bob)
    join(flooder, task["id"])
    join(other, task["id"], ns="/")
    join(watcher, task["id"])
    drain(watcher)
    drain(other, ns="/")
    assert send(flooder, task["id"], "the one allowed")["ok"] is True

    for _ in range(3):  # up to RATE_LIMIT_REFUSALS refusals are answered...
        assert_rate_limited(flooder, send(flooder, task["id"], "again"))
        assert flooder.is_connected(NS)
    send(flooder, task["id"], "again")  # ...the one past it ends the socket
    assert not flooder.is_connected(NS)

    # The user's other socket stays, refused (its own refusals are few) but connected.
    assert_rate_limited(other, send(other, task["id"], "from the other tab", ns="/"), ns="/")
    assert other.is_connected("/")
    assert emit(other, "typing_start", {"taskId": task["id"]}, ns="/")["ok"] is True
    assert events(watcher, "user_typing") == [{"taskId": task["id"], "userId": alice.id, "userName": alice.name}]
    assert events(watcher, "user_left") == []  # Alice is still in the room with her other socket


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="1/minute", RATE_LIMIT_REFUSALS="2")])
def test_refusals_older_than_the_window_do_not_count(socket, alice, task, monkeypatch):
    monkeypatch.setattr(throttle, "REFUSAL_WINDOW_SECONDS", 2.0)  # the window is 60 s; wait 2 s, not 60
    sock = socket(alice)
    assert send(sock, task["id"], "allowed")["ok"] is True
    for _ in range(2):
        assert_rate_limited(sock, send(sock, task["id"], "early"))
    time.sleep(2.1)
    for _ in range(2):
        assert_rate_limited(sock, send(sock, task["id"], "late"))
        assert sock.is_connected(NS)
    send(sock, task["id"], "one past the allowance within the window")
    assert not sock.is_connected(NS)


# ---- open sockets per user ------------------------------------------------------------------
@pytest.mark.parametrize("settings", [{"MAX_SOCKETS_PER_USER": "3"}])
def test_the_socket_past_the_cap_is_refused_until_one_closes(socket, refused, alice, bob, task):
    first, _second, _root = socket(alice), socket(alice), socket(alice, namespace="/")

    for namespace in (NS, "/"):
        error = refused(namespace, auth={"token": alice.token})
        assert error["data"] == {"code": "too_many_connections"}, error
        assert isinstance(error["message"], str) and error["message"], error
    assert socket(bob).is_connected(NS)  # other users are not counted with Alice

    first.disconnect(NS)
    again = socket(alice)
    assert again.is_connected(NS)
    assert join(again, task["id"])["ok"] is True
    assert refused(auth={"token": alice.token})["data"] == {"code": "too_many_connections"}


@pytest.mark.parametrize("settings", [{"MAX_SOCKETS_PER_USER": "2"}])
def test_a_disconnect_sent_as_an_event_frees_no_slot(socket, refused, alice):
    first, _second = socket(alice), socket(alice)
    assert emit(first, "disconnect", "client namespace disconnect") is None
    assert first.is_connected(NS)
    assert refused(auth={"token": alice.token})["data"] == {"code": "too_many_connections"}


# ---- reserved names sent as events ----------------------------------------------------------
def test_a_connect_event_does_not_re_authenticate_the_socket(socket, alice, bob, task):
    """Before the filter, `on_connect` ran again: with Bob's token, Alice's socket became Bob."""
    sock = socket(alice)
    join(sock, task["id"])
    drain(sock)
    assert emit(sock, "connect", "ignored", {"token": bob.token}) is None
    assert emit(sock, "connect", {"token": bob.token}) is None
    assert emit(sock, "connect") is None

    ack = send(sock, task["id"], "who am I")
    assert ack["ok"] is True and ack["data"]["userId"] == alice.id, ack
    assert [e["name"] for e in sock.get_received(NS)] == ["new_message"]  # its own message, nothing else


def test_a_disconnect_event_leaves_the_socket_registered_and_in_its_rooms(socket, client, alice, bob, task):
    """Before the filter, `on_disconnect` ran while the socket stayed connected: the server
    forgot it, so removing Bob from the task no longer took his socket out of the room,
    and he kept hearing the task's messages."""
    a, b = socket(alice), socket(bob)
    join(a, task["id"])
    join(b, task["id"])
    drain(a, b)

    assert emit(b, "disconnect", "client namespace disconnect") is None
    assert emit(b, "disconnect") is None
    assert b.is_connected(NS)
    assert events(a, "user_left") == []
    assert send(b, task["id"], "still me")["ok"] is True

    response = client.delete(f"/api/tasks/{task['id']}/members/{bob.id}", headers=alice.headers)
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    drain(b)
    assert send(a, task["id"], "not for Bob any more")["ok"] is True
    assert events(b, "new_message") == []


# ---- unknown events, odd names, binary packets, undecodable packets -----------------------
@pytest.mark.parametrize("name", ["no_such_event", "message", "json", "error", "trigger_event", "_actor",
                                  "on_send_message", "", "connect_error", "disconnecting"])
def test_an_unknown_event_gets_no_ack_and_does_nothing(socket, client, alice, bob, task, name, chat):
    a, b = socket(alice), socket(bob)
    join(a, task["id"])
    join(b, task["id"])
    drain(a, b)
    assert emit(a, name, {"taskId": task["id"], "message": "sneaky"}) is None
    assert a.get_received(NS) == [] and b.get_received(NS) == []
    assert chat.whole_history(task, alice) == []
    assert_still_serves(a, client, alice, task["id"])


@pytest.mark.parametrize("encoded", [
    '2/tasks,1[7,{"taskId":1,"message":"x"}]',  # the event name is a number
    '2/tasks,1[null]',
    '2/tasks,1[["send_message"],{"taskId":1,"message":"x"}]',
    '2/tasks,1[{"send_message":1}]',
    '2/tasks,1[]',  # no event name at all
    '2/tasks,1{"0":"send_message"}',  # not a list
    '2/tasks,1"send_message"',
    '2/tasks,1',  # no data
    '2/tasks,1["send_message",',  # not JSON
    '2/tasks,1["send_message",{"taskId":1' + ',"n":' + "9" * 5000 + "}]",  # an integer Python refuses
    "2/tasks," + "1" * 120 + '["send_message"]',  # an ack id too long
    '4/tasks,{"message":"x"}',  # CONNECT_ERROR is the server's to send
    '9/tasks,["send_message"]',  # no such packet type
    "x", "",
], ids=lambda e: e[:24])
def test_a_malformed_packet_is_dropped_and_the_socket_keeps_working(socket, client, alice, task, encoded, chat):
    sock = socket(alice)
    drain(sock)
    assert raw(sock, encoded) is None
    assert sock.get_received(NS) == []
    assert chat.whole_history(task, alice) == []
    assert_still_serves(sock, client, alice, task["id"])


def test_a_binary_payload_is_ignored(socket, client, alice, bob, task, chat):
    a, b = socket(alice), socket(bob)
    join(a, task["id"])
    join(b, task["id"])
    drain(a, b)
    # The test client encodes bytes as a BINARY_EVENT and an attachment frame, as a real client would.
    assert emit(a, "send_message", {"taskId": task["id"], "message": "with a blob", "blob": b"\x00\xff" * 100}) is None
    assert emit(a, "send_message", {"taskId": task["id"], "message": b"bytes as text"}) is None
    assert emit(a, "join_task", b"\x01") is None
    assert a.get_received(NS) == [] and b.get_received(NS) == []
    assert chat.whole_history(task, alice) == []
    assert_still_serves(a, client, alice, task["id"])


def test_binary_frames_alone_and_binary_packets_that_never_complete_are_dropped(socket, client, alice, task, chat):
    """Frames with no binary packet before them, and a packet announcing a million
    attachments: nothing is buffered, nothing answered."""
    sock = socket(alice)
    assert raw(sock, b"\x00" * 1000) is None
    assert raw(sock, '51-/tasks,3["send_message",{"_placeholder":true,"num":0}]', b"x") is None
    assert raw(sock, '51000000-/tasks,4["send_message",{"_placeholder":true,"num":0}]',
               *([b"y" * 1000] * 50)) is None
    assert raw(sock, '61-/tasks,5[{"_placeholder":true,"num":0}]', b"z") is None
    assert socketio.server._binary_packet == {}
    assert chat.whole_history(task, alice) == []
    assert_still_serves(sock, client, alice, task["id"])


# ---- sizes -------------------------------------------------------------------------------
def test_a_message_over_the_length_limit_is_a_validation_error(socket, alice, task, chat):
    sock = socket(alice)
    ack = send(sock, task["id"], "x" * 4001)  # under the 64 KiB packet limit, over MAX_MESSAGE_LENGTH
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    assert "message" in ack["error"]["details"], ack
    assert send(sock, task["id"], "x" * 4000)["ok"] is True
    assert [len(m["message"]) for m in chat.whole_history(task, alice)] == [4000]


def test_too_many_attachments_is_a_validation_error(socket, alice, task, chat):
    sock = socket(alice)
    ack = send(sock, task["id"], "eleven files", attachments=list(range(1, 12)))
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    assert "attachments" in ack["error"]["details"], ack
    assert chat.whole_history(task, alice) == []


def test_a_rest_body_over_max_content_length_is_413(client, alice, task, chat):
    body = json.dumps({"message": "x" * (1024 * 1024)})  # MAX_CONTENT_LENGTH is 1 MiB
    response = client.post(f"/api/tasks/{task['id']}/messages", data=body, content_type="application/json",
                           headers=alice.headers)
    assert_error(response, 413, "payload_too_large")
    assert chat.whole_history(task, alice) == []


# ---- JSON nesting ------------------------------------------------------------------------
DEPTH = 100_000  # 200 kB of brackets: within MAX_CONTENT_LENGTH and far past what json.loads recurses into


@pytest.mark.parametrize("body", [
    "[" * DEPTH + "]" * DEPTH,
    "{\"title\": " + "[" * DEPTH + "]" * DEPTH + "}",
    "{\"a\":" * DEPTH + "1" + "}" * DEPTH,
], ids=["array", "in-a-field", "objects"])
def test_a_deeply_nested_rest_body_is_a_bad_request(client, alice, body):
    for path, headers in (("/api/tasks", alice.headers), ("/api/auth/login", {})):
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert_error(response, 400, "bad_request")
    assert client.get("/api/tasks", headers=alice.headers).status_code == 200


def test_shallow_nested_junk_in_rest_fields_is_a_validation_error(client, alice, task):
    response = client.post(f"/api/tasks/{task['id']}/messages", headers=alice.headers,
                           json={"message": {"a": [1, {"b": 2}]}, "attachments": [[1], {"id": 2}], "replyTo": [3]})
    error = assert_error(response, 422, "validation_error")
    assert {"message", "attachments", "replyTo"} <= set(error["details"]), error


def test_a_deeply_nested_socket_payload_is_dropped(socket, client, alice, task):
    sock = socket(alice)
    deep = "[" * DEPTH + "]" * DEPTH
    encoded = '2/tasks,1["send_message",{"taskId":%d,"message":%s}]' % (task["id"], deep)
    assert len(encoded) < 64 * 1024 * 4  # a packet of this size passes max_http_buffer_size when raised
    assert raw(sock, encoded) is None
    assert sock.get_received(NS) == []
    assert_still_serves(sock, client, alice, task["id"])


@pytest.mark.parametrize("depth", [5, 500])
def test_nested_values_inside_a_socket_payload_are_validation_errors(socket, client, alice, task, depth, chat):
    """Nesting json.loads can read reaches the schema, which takes no structure where it
    wants a scalar or a list of ids."""
    sock = socket(alice)
    nested = "[" * depth + "1" + "]" * depth  # as JSON text: the test client's encoder recurses too
    for n, payload in enumerate((
        '{"taskId":%d,"message":%s}' % (task["id"], nested),
        '{"taskId":%s,"message":"x"}' % nested,
        '{"taskId":%d,"message":"x","attachments":[%s]}' % (task["id"], nested),
        '{"taskId":%d,"message":"x","mentions":%s}' % (task["id"], nested),
        '{"taskId":%d,"message":{"text":{"deeper":[%s]}}}' % (task["id"], nested),
        '{"taskId":%d,"message":"x","clientId":%s,"replyTo":%s}' % (task["id"], nested, nested),
    )):
        ack = raw(sock, '2/tasks,%d["send_message",%s]' % (n, payload))
        assert ack["ok"] is False and ack["error"]["code"] == "validation_error", (n, ack)
    assert chat.whole_history(task, alice) == []
    assert_still_serves(sock, client, alice, task["id"])
