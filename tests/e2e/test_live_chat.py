"""The live server (flask run and gunicorn), driven by python-socketio over WebSocket.

The tests that take `live_server` run against both server kinds; the origin
check runs on gunicorn only (production settings). The two namespaces share
task rooms, so the two clients of a test sit on different namespaces.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
import socketio
import websocket

from e2e.live import JWT_SECRET, SETTLE, WAIT, Api, LiveServer, close_in_background, forge_token, make_room
from toolkit.wire import MESSAGE_KEYS, without_duplicate

pytestmark = pytest.mark.e2e

JOIN_KEYS = {"taskId", "role", "permissions", "online", "unreadCount", "missed", "hasMore", "updated",
             "updatedHasMore"}


def user_info(user) -> dict:
    return {"id": user.id, "firstName": user.first_name, "lastName": user.last_name}


@pytest.mark.parametrize(
    "owner_ns, member_ns", [("/", "/tasks"), ("/tasks", "/")], ids=["owner-on-root", "owner-on-tasks"]
)
def test_two_members_chat_live(live_server: LiveServer, api: Api, live_socket, owner_ns, member_ns):
    room = make_room(api)
    task_id = room.task_id
    alice = live_socket(live_server, owner_ns).connect(room.owner.token)
    bob = live_socket(live_server, member_ns).connect(room.member.token)

    # join: the original sent a bare task id; {taskId} works too.
    ack = alice.call("join_task", task_id)
    assert ack["ok"] is True, ack
    assert set(ack["data"]) == JOIN_KEYS, ack
    assert ack["data"]["taskId"] == task_id and ack["data"]["role"] == "owner", ack
    assert ack["data"]["online"] == [{"userId": room.owner.id, "userName": room.owner.name}], ack
    ack = bob.call("join_task", {"taskId": task_id})
    assert ack["ok"] is True, ack
    assert ack["data"]["taskId"] == task_id and ack["data"]["role"] == "commenter", ack
    assert sorted(ack["data"]["online"], key=lambda u: u["userId"]) == sorted(
        [{"userId": u.id, "userName": u.name} for u in (room.owner, room.member)], key=lambda u: u["userId"]), ack
    assert (ack["data"]["missed"], ack["data"]["hasMore"], ack["data"]["unreadCount"]) == ([], False, 0), ack

    joined = alice.wait_for("user_joined", lambda d: d["userId"] == room.member.id)
    assert joined["taskId"] == task_id and joined["userName"] == room.member.name, joined
    assert isinstance(joined["timestamp"], str) and joined["timestamp"], joined

    # typing
    ack = bob.call("typing_start", {"taskId": task_id})
    assert ack == {"ok": True, "data": {"taskId": task_id}}
    typing = alice.wait_for("user_typing")
    assert typing == {"taskId": task_id, "userId": room.member.id, "userName": room.member.name}

    # send: the whole room gets new_message, the sender included; the ack carries the same message.
    text = f"Hello from e2e {uuid.uuid4().hex[:8]}"
    ack = bob.call("send_message", {"taskId": task_id, "message": f"  {text}  ", "unknownKey": 1})
    assert ack["ok"] is True, ack
    message = without_duplicate(ack["data"])
    assert set(message) == MESSAGE_KEYS, message
    assert message["message"] == text, message
    assert isinstance(message["id"], int) and message["taskId"] == task_id, message
    assert message["userId"] == room.member.id, message
    assert message["user"] == user_info(room.member), message
    assert message["attachments"] == [] and message["replyTo"] is None, message
    assert isinstance(message["createdAt"], str), message
    for sock in (alice, bob):
        received = sock.wait_for("new_message", lambda d: d["message"]["id"] == message["id"])
        assert received == {"message": message, "taskId": task_id}, (sock.namespace, received)

    ack = bob.call("typing_stop", {"taskId": task_id})
    assert ack["ok"] is True, ack
    assert alice.wait_for("user_stopped_typing") == {"taskId": task_id, "userId": room.member.id}

    # leave: the other member is told, and the room no longer reaches the one who left.
    ack = bob.call("leave_task", task_id)
    assert ack == {"ok": True, "data": {"taskId": task_id}}
    left = alice.wait_for("user_left", lambda d: d["userId"] == room.member.id)
    assert left["taskId"] == task_id and left["userName"] == room.member.name, left
    assert isinstance(left["timestamp"], str), left

    reply = f"Bye from e2e {uuid.uuid4().hex[:8]}"
    ack = alice.call("send_message", {"taskId": task_id, "message": reply})
    assert ack["ok"] is True and ack["data"]["user"] == user_info(room.owner), ack
    assert ack["data"]["previousId"] == message["id"], ack
    alice.wait_for("new_message", lambda d: d["message"]["id"] == ack["data"]["id"])
    time.sleep(SETTLE)

    # Nobody heard their own presence or typing events, nobody got an error, and no
    # message arrived twice; Bob, out of the room, did not get Alice's reply.
    assert [e for e in bob.events("user_joined") if e["userId"] == room.member.id] == []
    assert bob.events("user_typing") == [] and bob.events("user_stopped_typing") == []
    assert alice.events("user_left") == [left]
    assert len(alice.events("new_message")) == 2, alice.received
    assert [e["message"]["id"] for e in bob.events("new_message")] == [message["id"]], bob.received
    assert alice.events("error") == [] and bob.events("error") == []

    # REST: each message stored once, readable by both members.
    for user in (room.owner, room.member):
        items = api.messages(user, task_id)
        assert sorted(item["id"] for item in items) == sorted([message["id"], ack["data"]["id"]]), items
        stored = next(item for item in items if item["id"] == message["id"])
        assert stored == message, stored


def test_disconnect_tells_the_room(live_server: LiveServer, api: Api, live_socket):
    room = make_room(api)
    alice = live_socket(live_server, "/").connect(room.owner.token)
    bob = live_socket(live_server, "/tasks").connect(room.member.token)
    assert alice.call("join_task", room.task_id)["ok"] is True
    assert bob.call("join_task", room.task_id)["ok"] is True
    alice.wait_for("user_joined", lambda d: d["userId"] == room.member.id)

    # disconnect() may block in the client's close handshake (flask run); the
    # server hears the Engine.IO close packet first, so the room is told at once.
    started = time.monotonic()
    close_in_background([bob])
    left = alice.wait_for("user_left", lambda d: d["userId"] == room.member.id)
    assert time.monotonic() - started < 2.0, "user_left came only when the client dropped the connection"
    assert left["taskId"] == room.task_id and left["userName"] == room.member.name, left


def test_outsider_cannot_join_or_write(live_server: LiveServer, api: Api, live_socket):
    room = make_room(api)
    outsider = api.register("Carol", "Outsider")
    alice = live_socket(live_server, "/tasks").connect(room.owner.token)
    carol = live_socket(live_server, "/").connect(outsider.token)
    assert alice.call("join_task", room.task_id)["ok"] is True

    ack = carol.call("join_task", room.task_id)
    assert ack == {"ok": False, "error": {"code": "forbidden", "message": "No access to this task"}}
    assert carol.wait_for("error") == ack["error"]
    ack = carol.call("send_message", {"taskId": room.task_id, "message": "let me in"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    ack = carol.call("send_message", {"taskId": room.task_id})
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    assert ack["error"]["message"] == "Task ID and message are required", ack

    time.sleep(SETTLE)
    assert alice.events("user_joined") == [] and alice.events("new_message") == [], alice.received
    assert api.messages(room.owner, room.task_id) == []


def test_bearer_header_instead_of_auth(live_server: LiveServer, api: Api, live_socket):
    room = make_room(api)
    bob = live_socket(live_server, "/").connect(auth=None, headers={"Authorization": f"Bearer {room.member.token}"})
    ack = bob.call("join_task", room.task_id)
    assert ack["ok"] is True and ack["data"]["role"] == "commenter", ack
    ack = bob.call("send_message", {"taskId": room.task_id, "message": "via the header"})
    assert ack["ok"] is True and ack["data"]["user"] == user_info(room.member), ack
    bob.wait_for("new_message", lambda d: d["message"]["id"] == ack["data"]["id"])


def test_forged_token_with_the_server_secret_connects(live_server: LiveServer, api: Api, live_socket):
    """The control for the refusals below: a token forged with the test secret is accepted."""
    user = api.register("Dan", "Forged")
    sock = live_socket(live_server, "/tasks").connect(forge_token(user.id))
    assert sock.connected
    assert sock.call("join_task", 2_000_000_000) == {
        "ok": False, "error": {"code": "forbidden", "message": "No access to this task"},
    }


def refusal_cases(api: Api) -> dict[str, tuple[dict, str]]:
    """case name -> (connect() keyword arguments, expected data.code)."""
    user = api.register("Eve", "Refused")
    return {
        "no auth": ({"auth": None}, "auth_required"),
        "empty token": ({"auth": {"token": ""}}, "auth_required"),
        "garbage token": ({"auth": {"token": "garbage"}}, "token_invalid"),
        "wrong signature": ({"auth": {"token": forge_token(user.id, secret="not-" + JWT_SECRET)}}, "token_invalid"),
        "expired": ({"auth": {"token": forge_token(user.id, expires_in=-timedelta(minutes=5))}}, "token_expired"),
        "refresh token": ({"auth": {"token": user.refresh_token}}, "token_invalid"),
        "forged refresh type": ({"auth": {"token": forge_token(user.id, token_type="refresh")}}, "token_invalid"),
        "unknown user": ({"auth": {"token": forge_token(2_000_000_000)}}, "token_invalid"),
        "garbage bearer header": ({"auth": None, "headers": {"Authorization": "Bearer garbage"}}, "token_invalid"),
    }


def test_connect_refusals(live_server: LiveServer, api: Api, live_socket):
    """Each refused token, on both namespaces."""
    cases = refusal_cases(api)

    def attempt(namespace: str, kwargs: dict):
        sock = live_socket(live_server, namespace)
        try:
            sock.connect(**kwargs)
        except socketio.exceptions.ConnectionError as exc:
            return "refused", str(exc), sock.wait_connect_error()
        return "connected", None, None

    # In parallel: against flask run each refused client waits out a 3 s close handshake.
    attempts = [(namespace, name) for namespace in ("/", "/tasks") for name in cases]
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        futures = {key: pool.submit(attempt, key[0], cases[key[1]][0]) for key in attempts}
        results = {key: future.result(timeout=WAIT + 10) for key, future in futures.items()}

    failures = []
    for (namespace, name), (outcome, error, data) in results.items():
        code = cases[name][1]
        if outcome != "refused":
            failures.append(f"{namespace} {name}: connected")
        elif not (isinstance(data, dict) and str(data.get("message", "")).startswith("Authentication error")
                  and data.get("data") == {"code": code}):
            failures.append(f"{namespace} {name}: connect_error {data!r} ({error}); expected code {code}")
    assert not failures, "\n".join(failures)

    for namespace in ("/", "/tasks"):
        assert results[(namespace, "no auth")][2]["message"] == "Authentication error: No token provided"
        assert results[(namespace, "garbage token")][2]["message"] == "Authentication error: Invalid token"


def test_production_accepts_only_listed_origins(gunicorn_server: LiveServer):
    """gunicorn runs with APP_ENV=production and CORS_ORIGINS listing localhost:3000 (see live.py)."""
    handshake = gunicorn_server.url + "/socket.io/?EIO=4&transport=polling"
    for origin in ("http://localhost:3000", None):
        headers = {"Connection": "close", **({"Origin": origin} if origin else {})}
        with requests.get(handshake, headers=headers, timeout=5) as response:
            assert response.status_code == 200, (origin, response.text)
            assert response.text.startswith("0{"), (origin, response.text)
            assert response.headers.get("Access-Control-Allow-Origin") == origin
    headers = {"Connection": "close", "Origin": "http://evil.example"}
    with requests.get(handshake, headers=headers, timeout=5) as response:
        assert response.status_code == 400, response.text
        assert "Access-Control-Allow-Origin" not in response.headers

    ws_url = gunicorn_server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    accepted = websocket.create_connection(ws_url, origin="http://localhost:3000", timeout=5)
    try:
        assert accepted.recv().startswith("0{")  # the Engine.IO open packet
    finally:
        accepted.close()
    try:
        refused = websocket.create_connection(ws_url, origin="http://evil.example", timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 400
    else:
        # gevent-websocket completes the upgrade before the app runs; the app then
        # refuses the origin and the socket closes without an Engine.IO session.
        try:
            first = refused.recv()
        except websocket.WebSocketConnectionClosedException:
            first = ""
        finally:
            refused.close()
        assert not first.startswith("0"), first


def test_every_emoji_that_can_be_added_is_removed_over_http(live_server: LiveServer, api: Api):
    """Through a real HTTP client and server (requests resolves dot segments, the server
    decodes the path before routing): percent-encoded, and with its `/` as it is."""
    room = make_room(api, "Emojis")
    message = api.request("POST", f"/api/tasks/{room.task_id}/messages", room.member, expect=201,
                          json={"message": "react to me"})
    url = f"/api/tasks/{room.task_id}/messages/{message['id']}/reactions"
    left: list[str] = []
    for emoji, safe in [("/", ""), ("a//b", ""), ("../x", ""), ("%2F", ""), ("100%", ""), ("a?b#c", ""),
                        (" a b ", ""), ("👍/👎", ""), ("/", "/"), ("/x", "/"), ("a//b", "/"), ("x/", "/")]:
        assert api.request("POST", url, room.member, json={"emoji": emoji})["reactions"][0]["emoji"] == emoji
        removed = api.request("DELETE", f"{url}/{quote(emoji, safe=safe)}", room.member)
        if removed["reactions"]:
            left.append(f"{emoji!r} (safe={safe!r}): {removed['reactions']}")
    assert left == []


def test_a_client_that_upgrades_from_long_polling_chats_both_ways(live_server: LiveServer, api: Api, live_socket):
    """Browsers' clients start on long-polling and upgrade to WebSocket. Under gunicorn
    a WebSocket reached by upgrade keeps Engine.IO's writer, while one opened directly
    gets a writer only when something is queued (app/patches.py): both
    kinds must hear everything, in order, and see each other come and go."""
    room = make_room(api)
    task_id = room.task_id
    alice = live_socket(live_server).connect(room.owner.token)
    bob = live_socket(live_server).connect(room.member.token, transports=("polling", "websocket"))
    deadline = time.monotonic() + WAIT
    while bob.client.transport() != "websocket" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bob.client.transport() == "websocket", "the client never upgraded"

    assert alice.call("join_task", task_id)["ok"] is True
    assert bob.call("join_task", task_id)["ok"] is True
    alice.wait_for("user_joined", lambda e: e["userId"] == room.member.id)
    for i in range(5):
        assert bob.call("send_message", {"taskId": task_id, "message": f"bob {i}"})["ok"] is True
        assert alice.call("send_message", {"taskId": task_id, "message": f"alice {i}"})["ok"] is True
    expected = [text for i in range(5) for text in (f"bob {i}", f"alice {i}")]
    for client in (alice, bob):
        client.wait_for("new_message", lambda e: e["message"]["message"] == "alice 4")
        assert [e["message"]["message"] for e in client.events("new_message")] == expected

    bob.client.disconnect()
    alice.wait_for("user_left", lambda e: e["userId"] == room.member.id)
    assert alice.call("send_message", {"taskId": task_id, "message": "still here"})["ok"] is True
