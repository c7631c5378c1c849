"""Nobody sees or changes a task they are not a member of, at either door.

Most single refusals are proven where each feature is tested (see the table in
docs/security.md). This module adds the cases that cut across them:
- a member removed while their sockets are joined: every further event for the task is
  refused, the room hears nothing from them, nothing is stored, and their socket goes on
  working for their other tasks;
- what the removed member can still read over REST: nothing of the task (task, history,
  versions, activity, members, read marks, files, the task list), not even the mention
  notifications they got while a member;
- an outsider who knows every id: the same, event by event and route by route, with the
  database unchanged.
"""
from __future__ import annotations

import io

import pytest

from toolkit.database import snapshot
from toolkit.env import NO_LIMITS
from toolkit.notices import mentions_only
from toolkit.sockets import emit, events, join

# Rate limits out of the way; the users that add_member adds have read the notice of it.
pytestmark = [pytest.mark.settings(**NO_LIMITS), pytest.mark.added_notices_read]


@pytest.fixture
def scene(app, client, alice, bob, carol, task, make_task, add_member, room_of, chat):
    """Alice's task with Bob (editor) and Carol (commenter). Bob has said things, reacted,
    uploaded a file, been mentioned, and read the chat; Carol's socket listens in the room."""
    add_member(alice, task, carol, "commenter")
    T = task["id"]
    base = f"/api/tasks/{T}"
    file = chat.uploaded(T, bob, b"secret")
    bobs = client.post(f"{base}/messages", json={"message": "Bob's words", "attachments": [file["id"]]},
                       headers=bob.headers).get_json()
    client.post(f"{base}/messages/{bobs['id']}/reactions", json={"emoji": "👍"}, headers=bob.headers)
    mention = client.post(f"{base}/messages", json={"message": "@Bob look", "mentions": [bob.id]},
                          headers=alice.headers).get_json()
    assert client.get("/api/notifications", headers=bob.headers).get_json()["unreadCount"] == 1
    elsewhere = make_task(bob, "Bob's other task")
    listener = room_of(carol)[0].sock
    return {"app": app, "client": client, "T": T, "bobs": bobs, "mention": mention, "file": file,
            "elsewhere": elsewhere, "listener": listener}


def socket_attempts(T: int, bobs: dict, mention: dict) -> list[tuple[str, object, str]]:
    """(event, payload, expected code) for everything a (former) member might try on task T.
    Message events answer `not_found` (a message of a task you are not in is not there for
    you); task events `forbidden` ("No access to this task", also for tasks that do not exist)."""
    return [
        ("join_task", T, "forbidden"),
        ("join_task", {"taskId": T, "lastMessageId": 0}, "forbidden"),  # the catch-up
        ("send_message", {"taskId": T, "message": "still here?"}, "forbidden"),
        ("send_message", {"taskId": T, "message": "retry", "clientId": "c-9"}, "forbidden"),
        ("edit_message", {"messageId": bobs["id"], "message": "changed"}, "not_found"),
        ("delete_message", {"messageId": bobs["id"]}, "not_found"),
        ("add_reaction", {"messageId": mention["id"], "emoji": "🎉"}, "not_found"),
        ("remove_reaction", {"messageId": bobs["id"], "emoji": "👍"}, "not_found"),
        ("mark_read", {"taskId": T, "messageId": mention["id"]}, "forbidden"),
        ("typing_start", {"taskId": T}, "forbidden"),
        ("typing_stop", {"taskId": T}, "forbidden"),
    ]


@pytest.mark.parametrize("ns", ["/tasks", "/"])
def test_a_member_removed_mid_session_is_refused_every_further_event(scene, socket, client, alice, bob, ns):
    T = scene["T"]
    sock = socket(bob, namespace=ns)
    joined = emit(sock, "join_task", {"taskId": T, "lastMessageId": 0}, ns=ns)
    assert joined["ok"] is True and len(joined["data"]["missed"]) == 2
    emit(sock, "typing_start", {"taskId": T}, ns=ns)
    scene["listener"].get_received("/tasks")

    assert client.delete(f"/api/tasks/{T}/members/{bob.id}", headers=alice.headers).status_code == 204
    assert [e["name"] for e in sock.get_received(ns)] == ["removed_from_task"]
    scene["listener"].get_received("/tasks")  # member_changed, user_stopped_typing, user_left
    before = snapshot(scene["app"])

    for event, payload, code in socket_attempts(T, scene["bobs"], scene["mention"]):
        ack = emit(sock, event, payload, ns=ns)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, ack)
        assert "data" not in ack, "a refusal carries no catch-up or message"
        assert [e["code"] for e in events(sock, "error", ns)] == [code], event

    # leave_task is harmless: the socket already left the room, and nobody is told again.
    assert emit(sock, "leave_task", {"taskId": T}, ns=ns)["ok"] is True
    assert scene["listener"].get_received("/tasks") == [], "the room heard nothing from Bob"
    assert snapshot(scene["app"]) == before, "nothing was stored"
    # The room goes on, and Bob hears none of it.
    emit(scene["listener"], "send_message", {"taskId": T, "message": "after Bob"})
    assert sock.get_received(ns) == []
    # Bob's socket still works, for the tasks he is still in.
    other = scene["elsewhere"]["id"]
    assert emit(sock, "join_task", other, ns=ns)["ok"] is True
    assert emit(sock, "send_message", {"taskId": other, "message": "mine"}, ns=ns)["ok"] is True


def test_a_removed_member_reads_nothing_of_the_task_over_rest(scene, client, alice, bob):
    T, bobs = scene["T"], scene["bobs"]
    assert client.delete(f"/api/tasks/{T}/members/{bob.id}", headers=alice.headers).status_code == 204
    base = f"/api/tasks/{T}"

    for path, status in [
        (base, 403), (f"{base}/messages", 403), (f"{base}/messages?after=0", 403),
        (f"{base}/messages?around={bobs['id']}", 403), (f"{base}/messages/{bobs['id']}/history", 403),
        (f"{base}/activity", 403), (f"{base}/members", 403), (scene["file"]["url"], 404),
    ]:
        response = client.get(path, headers=bob.headers)
        assert response.status_code == status, (path, response.get_json())
        assert "Bob's words" not in response.get_data(as_text=True)
    assert client.post(f"{base}/read", json={"messageId": bobs["id"]}, headers=bob.headers).status_code == 403
    assert [t["id"] for t in client.get("/api/tasks", headers=bob.headers).get_json()["items"]] == [
        scene["elsewhere"]["id"]
    ]


def test_a_removed_member_no_longer_sees_the_tasks_notifications(scene, client, alice, bob, add_member, task):
    """A mention notification names the task, the message and who wrote it: once Bob is out
    of the task he no longer sees it, nor counts it, nor marks it. Re-added, it is back."""
    T = scene["T"]
    [notification] = mentions_only(client.get("/api/notifications", headers=bob.headers).get_json())["items"]
    assert notification["taskId"] == T

    client.delete(f"/api/tasks/{T}/members/{bob.id}", headers=alice.headers)

    page = client.get("/api/notifications", headers=bob.headers).get_json()
    assert page["items"] == [] and page["unreadCount"] == 0
    marked = client.post("/api/notifications/read", json={"ids": [notification["id"]]}, headers=bob.headers)
    assert marked.get_json() == {"updated": 0, "unreadCount": 0}
    assert client.post("/api/notifications/read", json={"all": True}, headers=bob.headers).get_json()["updated"] == 0

    add_member(alice, task, bob, "editor")
    back = client.get("/api/notifications", headers=bob.headers).get_json()
    assert [n["id"] for n in mentions_only(back)["items"]] == [notification["id"]] and back["unreadCount"] == 1


def test_an_outsider_who_knows_every_id_gets_nothing_at_either_door(scene, socket, client, register):
    """Eve was never a member: with the task's, message's, file's and notification's ids she
    is refused every event and every route, learns nothing, and changes nothing."""
    eve = register("Eve", "Outsider")
    T, bobs, mention = scene["T"], scene["bobs"], scene["mention"]
    sock = socket(eve)
    before = snapshot(scene["app"])

    for event, payload, code in socket_attempts(T, bobs, mention):
        ack = emit(sock, event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, ack)
    base = f"/api/tasks/{T}"
    routes = [
        ("get", base, None, 403), ("patch", base, {"title": "mine"}, 403), ("delete", base, None, 403),
        ("get", f"{base}/messages", None, 403), ("post", f"{base}/messages", {"message": "hi"}, 403),
        ("patch", f"{base}/messages/{bobs['id']}", {"message": "x"}, 403),
        ("delete", f"{base}/messages/{bobs['id']}", None, 403),
        ("get", f"{base}/messages/{bobs['id']}/history", None, 403),
        ("post", f"{base}/messages/{bobs['id']}/reactions", {"emoji": "👍"}, 403),
        ("delete", f"{base}/messages/{bobs['id']}/reactions/%F0%9F%91%8D", None, 403),
        ("post", f"{base}/read", {"messageId": bobs["id"]}, 403), ("get", f"{base}/activity", None, 403),
        ("get", f"{base}/members", None, 403), ("post", f"{base}/members", {"userId": eve.id, "role": "owner"}, 403),
        ("delete", f"{base}/members/{eve.id}", None, 403), ("get", scene["file"]["url"], None, 404),
    ]
    for method, path, body, status in routes:
        response = getattr(client, method)(path, json=body, headers=eve.headers)
        assert response.status_code == status, (method, path, response.get_json())
        assert "Bob's words" not in response.get_data(as_text=True)
    upload_attempt = client.post(f"{base}/attachments", data={"file": (io.BytesIO(b"x"), "x.txt")},
                                 headers=eve.headers, content_type="multipart/form-data")
    assert upload_attempt.status_code == 403
    assert client.get("/api/tasks", headers=eve.headers).get_json()["items"] == []
    assert client.get("/api/notifications", headers=eve.headers).get_json()["items"] == []
    assert client.post("/api/notifications/read", json={"ids": [1, 2, 3]}, headers=eve.headers
                       ).get_json()["updated"] == 0
    assert scene["listener"].get_received("/tasks") == []
    assert snapshot(scene["app"]) == before


def test_a_viewer_may_read_and_mark_read_but_not_send_react_edit_or_upload(scene, socket, client, alice, register,
                                                                           add_member, task):
    """One sweep over a viewer's writes, at both doors (each is also tested on its own)."""
    dan = register("Dan", "Viewer")
    add_member(alice, task, dan, "viewer")
    T, mention = scene["T"], scene["mention"]
    sock = socket(dan)
    assert join(sock, T)["data"]["permissions"]["canComment"] is False
    sock.get_received("/tasks")
    scene["listener"].get_received("/tasks")
    before = snapshot(scene["app"])

    for event, payload in [("send_message", {"taskId": T, "message": "hi"}),
                           ("add_reaction", {"messageId": mention["id"], "emoji": "👍"}),
                           ("remove_reaction", {"messageId": mention["id"], "emoji": "👍"})]:
        ack = emit(sock, event, payload)
        assert (ack["ok"], ack["error"]["code"]) == (False, "forbidden"), event
    base = f"/api/tasks/{T}"
    for method, path, body in [("post", f"{base}/messages", {"message": "hi"}),
                               ("post", f"{base}/messages/{mention['id']}/reactions", {"emoji": "👍"}),
                               ("patch", f"{base}/messages/{mention['id']}", {"message": "mine"}),
                               ("patch", base, {"title": "mine"})]:
        assert getattr(client, method)(path, json=body, headers=dan.headers).status_code == 403, path
    assert client.post(f"{base}/attachments", data={"file": (io.BytesIO(b"x"), "x.txt")}, headers=dan.headers,
                       content_type="multipart/form-data").status_code == 403
    assert scene["listener"].get_received("/tasks") == []
    assert snapshot(scene["app"]) == before
    # What a viewer may do.
    assert client.get(f"{base}/messages", headers=dan.headers).status_code == 200
    assert emit(sock, "mark_read", {"taskId": T, "messageId": mention["id"]})["ok"] is True
    assert emit(sock, "typing_start", {"taskId": T})["ok"] is True
