"""The official JavaScript client (socket.io-client 4, pinned in js/package.json) against live gunicorn.

js/chat-client.js is the original test-websocket.js driven by the environment:
it connects with {auth: {token}, transports: ['websocket', 'polling']}, joins
the task, sends a message, and prints one JSON line per event it receives. A
python-socketio client of another member sits in the same room on the other
namespace, so each run also checks that the two namespaces share the room.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from e2e.live import Api, LiveServer, forge_token, make_room

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).resolve().parent / "js"
NPM_TIMEOUT = 180
CLIENT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def node() -> str:
    """node, with the pinned socket.io-client installed from the lock file (once per run)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        pytest.skip(f"{missing} not found on PATH: the official socket.io JavaScript client cannot be run")
    locked = (JS_DIR / "package-lock.json").exists()
    cmd = [npm, "ci" if locked else "install", "--no-audit", "--no-fund", "--prefer-offline"]
    try:
        result = subprocess.run(cmd, cwd=JS_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} took more than {NPM_TIMEOUT}s\n{exc.stdout or ''}\n{exc.stderr or ''}")
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"

    pinned = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["socket.io-client"]
    installed = json.loads((JS_DIR / "node_modules" / "socket.io-client" / "package.json").read_text())["version"]
    assert installed == pinned and installed.startswith("4."), (pinned, installed)
    return node


def run_client(node: str, server: LiveServer, token: str, task_id: object, namespace: str,
               message: str) -> tuple[int, list[dict], str]:
    """Run chat-client.js; its exit status, the events it printed, and its whole output."""
    env = dict(os.environ)
    env.update({
        "URL": server.url, "TOKEN": token, "TASK_ID": str(task_id), "NAMESPACE": namespace,
        "MESSAGE": message, "TIMEOUT_MS": str(CLIENT_TIMEOUT_MS),
    })
    result = subprocess.run(
        [node, "chat-client.js"], cwd=JS_DIR, env=env, capture_output=True, text=True,
        timeout=CLIENT_TIMEOUT_MS / 1000 + 10,
    )
    output = f"exit status {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    events = []
    for line in result.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"chat-client.js printed a line that is not JSON: {line!r}\n{output}")
    return result.returncode, events, output


def only(events: list[dict], name: str, output: str) -> dict | None:
    found = [e["data"] for e in events if e["event"] == name]
    assert len(found) == 1, f"expected one {name!r} event, got {len(found)}\n{output}"
    return found[0]


@pytest.mark.parametrize(
    "js_namespace, py_namespace", [("", "/tasks"), ("/tasks", "/")], ids=["js-on-root", "js-on-tasks"]
)
def test_official_client_chats_with_a_python_client(node, gunicorn_server, live_socket, js_namespace, py_namespace):
    api = Api(gunicorn_server.url)
    try:
        room = make_room(api)
        owner = live_socket(gunicorn_server, py_namespace).connect(room.owner.token)
        assert owner.call("join_task", room.task_id)["ok"] is True
        text = f"Hello from test client! {uuid.uuid4().hex[:8]}"

        status, events, output = run_client(node, gunicorn_server, room.member.token, room.task_id, js_namespace, text)

        assert status == 0, output
        names = [e["event"] for e in events]
        assert names[0] == "connect", output
        assert "error" not in names and "connect_error" not in names, output
        # Sending a plain message changes nothing else: no edits, reactions, read state or removals.
        assert not set(names) & {"message_updated", "message_deleted", "reaction_updated", "read_updated",
                                 "removed_from_task", "task_notification"}, output
        assert only(events, "connect", output)["transport"] == "websocket", output
        join = only(events, "join_task_ack", output)
        assert join["ok"] is True and join["data"]["taskId"] == room.task_id, output
        assert join["data"]["role"] == "commenter", output

        received = only(events, "new_message", output)
        message = received["message"]
        assert received["taskId"] == room.task_id, output
        assert message["message"] == text and message["taskId"] == room.task_id, output
        assert message["userId"] == room.member.id, output
        assert (message["clientId"], message["deleted"], message["attachments"]) == (None, False, []), output
        assert message["user"] == {
            "id": room.member.id, "firstName": room.member.first_name, "lastName": room.member.last_name,
        }, output
        # The ack is the broadcast message, plus `duplicate` (false: sent once).
        assert only(events, "send_message_ack", output) == {"ok": True, "data": {**message, "duplicate": False}}, output

        # The other member, on the other namespace, saw the JS client join and write.
        joined = owner.wait_for("user_joined", lambda d: d["userId"] == room.member.id)
        assert joined["taskId"] == room.task_id and joined["userName"] == room.member.name, joined
        heard = owner.wait_for("new_message", lambda d: d["message"]["id"] == message["id"])
        assert heard == received, (heard, received)
        # The JS client's exit closed its socket: the room is told it left.
        owner.wait_for("user_left", lambda d: d["userId"] == room.member.id)

        stored = [m for m in api.messages(room.owner, room.task_id) if m["message"] == text]
        assert [m["id"] for m in stored] == [message["id"]], stored
    finally:
        api.close()


@pytest.mark.parametrize(
    "case, namespace, code",
    [("garbage", "", "token_invalid"), ("expired", "/tasks", "token_expired")],
)
def test_official_client_is_refused_a_bad_token(node, gunicorn_server, case, namespace, code):
    api = Api(gunicorn_server.url)
    try:
        user = api.register("Frank", "Refused")
    finally:
        api.close()
    token = "garbage" if case == "garbage" else forge_token(user.id, expires_in=-timedelta(minutes=5))

    status, events, output = run_client(node, gunicorn_server, token, 1, namespace, "never sent")

    assert status == 2, output
    names = [e["event"] for e in events]
    assert "connect" not in names and "new_message" not in names, output
    error = only(events, "connect_error", output)
    assert error["message"].startswith("Authentication error"), output
    assert error["data"] == {"code": code}, output
