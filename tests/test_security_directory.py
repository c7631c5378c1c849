"""The server is no user directory: nobody is found, nor added, by guessing.

- An owner adds someone by email (they must know it) or by the id of someone they already
  share a task with. A stranger's id, an id nobody has and an email nobody registered get
  one answer, 404 `not_found` "User not found": walking the ids 1, 2, 3... finds nobody
  new, adds nobody, tells nobody.
- The added user hears of it at once, in their own room (on both namespaces), and finds it
  in their notifications.
- An email reaches only its user and people who share a task with them: not the people
  they used to share one with, nor those who came after them, wherever a user appears
  (member list, history, replies, notifications, activity log, the join ack).
"""
from __future__ import annotations

import pytest

from toolkit.rest import assert_error, members_url
from toolkit.sockets import drain, emit, join, send
from toolkit.users import User

NOBODY = {"error": {"code": "not_found", "message": "User not found"}}


def member_ids(client, task: dict, as_user) -> set[int]:
    response = client.get(members_url(task), headers=as_user.headers)
    assert response.status_code == 200, response.get_json()
    return {m["userId"] for m in response.get_json()["items"]}


def add(client, owner, task: dict, **who):
    return client.post(members_url(task), json={"role": "viewer", **who}, headers=owner.headers)


# ---- finding someone --------------------------------------------------------------------------
def test_walking_the_ids_finds_nobody_new(client, socket, alice, bob, carol, register, task, make_task, chat):
    """Alice tries every id on a new task of hers. Bob, who shares her other task, is added;
    she herself is already a member; Carol and Dan, who share nothing with her, are answered
    exactly as the ids nobody has: nobody is added, nobody is told, no email is shown."""
    dan = register("Dan", "Stranger")
    strangers = (carol, dan)
    listening = {user.id: socket(user) for user in strangers}
    fresh = make_task(alice, "Fresh")
    last = max(user.id for user in (alice, bob, carol, dan))

    answers = {n: add(client, alice, fresh, userId=n) for n in range(1, last + 3)}

    assert answers[bob.id].status_code == 201
    assert_error(answers[alice.id], 409, "conflict")
    refused = {n: a for n, a in answers.items() if n not in (alice.id, bob.id)}
    assert {carol.id, dan.id, last + 1, last + 2} <= set(refused)
    for n, answer in refused.items():
        assert (answer.status_code, answer.get_json()) == (404, NOBODY), n
    everything = "".join(a.get_data(as_text=True) for a in answers.values())
    assert all(user.email not in everything for user in strangers)
    assert member_ids(client, fresh, alice) == {alice.id, bob.id}
    for user in strangers:
        assert chat.notifications(user) == {"items": [], "hasMore": False, "unreadCount": 0}
        assert listening[user.id].get_received("/tasks") == []


def test_a_strangers_id_an_unknown_id_and_an_unknown_email_get_one_answer(
        client, socket, alice, bob, carol, task, chat):
    listener = socket(bob)
    join(listener, task["id"])
    carols = socket(carol)
    drain(listener, carols)

    answers = [add(client, alice, task, userId=carol.id), add(client, alice, task, userId=987654),
               add(client, alice, task, email="nobody@example.com")]

    for answer in answers:
        assert_error(answer, 404, "not_found")
        assert answer.get_json() == NOBODY
    assert member_ids(client, task, alice) == {alice.id, bob.id}
    assert chat.notifications(carol)["items"] == []
    assert listener.get_received("/tasks") == [] and carols.get_received("/tasks") == []


@pytest.mark.parametrize("spelled", [str, str.upper, lambda e: f"  {e.title()} "], ids=["as is", "upper", "spaced"])
def test_an_owner_adds_someone_by_their_email(client, alice, carol, make_task, spelled):
    """Compared as login compares it: case and surrounding spaces aside."""
    task = make_task(alice)

    response = add(client, alice, task, email=spelled(carol.email))

    assert response.status_code == 201, response.get_json()
    member = response.get_json()
    assert (member["userId"], member["role"]) == (carol.id, "viewer")
    assert member["user"]["email"] == carol.email  # she knew it: the answer may say it
    assert member_ids(client, task, alice) == {alice.id, carol.id}


def test_an_id_finds_anyone_who_shares_any_task(client, alice, bob, carol, make_task, add_member):
    """Carol and Alice share Bob's task (neither owns it, Alice is only a viewer there):
    Alice may add Carol by id to her own."""
    bobs = make_task(bob, "Bob's")
    add_member(bob, bobs, alice, "viewer")
    add_member(bob, bobs, carol, "commenter")
    mine = make_task(alice, "Alice's")

    response = add(client, alice, mine, userId=carol.id)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["user"]["email"] == carol.email
    assert member_ids(client, mine, alice) == {alice.id, carol.id}


def test_sharing_counts_now_not_once(client, alice, bob, task, make_task):
    """Once Bob is out of the only task they shared, his id is a stranger's again; his email still works."""
    assert client.delete(f"{members_url(task)}/{bob.id}", headers=alice.headers).status_code == 204
    fresh = make_task(alice, "Fresh")

    assert add(client, alice, fresh, userId=bob.id).get_json() == NOBODY
    assert add(client, alice, fresh, email=bob.email).status_code == 201


# ---- being told -------------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", ["/tasks", "/"])
def test_the_added_user_hears_it_at_once_and_finds_it_in_their_notifications(
        client, socket, alice, bob, carol, task, namespace, chat):
    """Carol's socket has joined no task: her own room is where she hears of it. The task's
    room hears `member_changed`, not Carol's notification."""
    carols = socket(carol, namespace)
    room = socket(bob, namespace)
    join(room, task["id"], ns=namespace)
    drain(carols, room, ns=namespace)

    assert add(client, alice, task, email=carol.email).status_code == 201

    [(name, told)] = [(e["name"], e["args"][0]) for e in carols.get_received(namespace)]
    assert name == "task_notification"
    assert told == {
        "type": "added_to_task", "id": told["id"], "notificationId": told["id"], "taskId": task["id"],
        "messageId": None, "from": {"userId": alice.id, "userName": "Alice Owner"},
        "createdAt": told["createdAt"], "timestamp": told["createdAt"], "read": False, "readAt": None,
    }
    page = chat.notifications(carol)
    assert page["unreadCount"] == 1
    assert page["items"] == [{k: v for k, v in told.items() if k not in ("notificationId", "timestamp")}]
    assert [e["name"] for e in room.get_received(namespace)] == ["member_changed"]


def test_a_refused_add_stores_no_notification(client, alice, bob, task, chat):
    """Adding a member twice is refused whole: Bob is told nothing new."""
    before = chat.notifications(bob)

    assert_error(add(client, alice, task, email=bob.email), 409, "conflict")

    assert chat.notifications(bob) == before


# ---- who sees an email ------------------------------------------------------------------------
def nameless(app, client) -> User:
    """A user made by `flask create-user` without a name, as an operator may."""
    email, password = "nameless@example.com", "a long passphrase"
    result = app.test_cli_runner().invoke(args=["create-user", "--email", email, "--password", password])
    assert result.exit_code == 0, result.output
    body = client.post("/api/auth/login", json={"email": email, "password": password}).get_json()
    return User(id=body["user"]["id"], email=email, first_name="", last_name="", token=body["accessToken"],
                refresh_token=body["refreshToken"], password=password)


def everything_read_by(client, socket, user, task_id: int) -> list[str]:
    """Every answer the user gets about the task and about themself, as text."""
    base = f"/api/tasks/{task_id}"
    texts = [client.get(path, headers=user.headers).get_data(as_text=True) for path in (
        "/api/auth/me", "/api/tasks", base, f"{base}/members", f"{base}/messages", f"{base}/activity",
        "/api/notifications",
    )]
    sock = socket(user)
    texts.append(repr(join(sock, task_id)))
    return texts


def test_an_email_reaches_only_its_user_and_people_sharing_a_task_with_them(app, client, socket, alice, bob,
                                                                            register, task, add_member):
    """Carol, who has no name, joins Alice's task, types, mentions Alice, reacts, is replied
    to, and leaves. Alice shared the task with her and saw her email then; afterwards
    neither Alice nor Dan, who came later, finds it anywhere."""
    carol = nameless(app, client)
    add_member(alice, task, carol, "commenter")
    T = task["id"]
    assert carol.email in client.get(members_url(task), headers=alice.headers).get_data(as_text=True)
    sock = socket(carol)
    join(sock, T)
    emit(sock, "typing_start", {"taskId": T})
    said = send(sock, T, "@Alice look", mentions=[alice.id])["data"]
    emit(sock, "add_reaction", {"messageId": said["id"], "emoji": "👍"})
    client.post(f"/api/tasks/{T}/messages", json={"message": "seen", "replyTo": said["id"]}, headers=alice.headers)
    assert client.delete(f"{members_url(task)}/{carol.id}", headers=carol.headers).status_code == 204
    dan = register("Dan", "Later")
    add_member(alice, task, dan, "viewer")

    for reader in (alice, dan):
        seen = everything_read_by(client, socket, reader, T)
        assert [text for text in seen if carol.email in text] == [], reader.first_name
    assert any(f"User {carol.id}" in text for text in everything_read_by(client, socket, alice, T))
    # Her own account still shows it to her.
    assert client.get("/api/auth/me", headers=carol.headers).get_json()["email"] == carol.email
