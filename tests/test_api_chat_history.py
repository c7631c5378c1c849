"""REST history paging (before/after/around), idempotent sends with clientId, replies with
their preview, and mentions — GET and POST /api/tasks/<id>/messages."""
from __future__ import annotations

import pytest

from toolkit.chat import messages_url
from toolkit.rest import assert_error
from toolkit.sockets import NS, emit, events, join


# The users that add_member adds have read the notice of it: the notifications here are mentions.
pytestmark = pytest.mark.added_notices_read

PAGE_KEYS = {"items", "hasMore", "hasMoreBefore", "hasMoreAfter"}


# ---- helpers -----------------------------------------------------------------------------------
def page(chat, task: dict, user, **query) -> dict:
    body = chat.history(task, user, **query)
    assert set(body) == PAGE_KEYS
    return body


def ids(body: dict) -> list[int]:
    return [m["id"] for m in body["items"]]


def everything(chat, task: dict, user) -> list[dict]:
    """Every message of the task, oldest first."""
    return page(chat, task, user, after=0, limit=100)["items"]


def send_many(chat, task: dict, users, count: int, prefix: str = "m") -> list[int]:
    """`count` messages, the senders taking turns; their ids in order."""
    return [chat.message(task, users[i % len(users)], f"{prefix}{i}")["id"] for i in range(count)]


# ---- paging ------------------------------------------------------------------------------------
def test_no_cursor_is_the_newest_page_newest_first(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 5)

    body = page(chat, task, bob, limit=3)

    assert ids(body) == all_ids[:-4:-1]
    assert body["hasMore"] is True


def test_before_pages_back_to_the_first_message(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 7)

    seen, cursor, more = [], None, True
    while more:
        query = {"limit": 3} if cursor is None else {"limit": 3, "before": cursor}
        body = page(chat, task, alice, **query)
        seen += ids(body)
        cursor, more = seen[-1], body["hasMore"]

    assert seen == all_ids[::-1]


def test_after_pages_forward_oldest_first(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 7)

    first = page(chat, task, alice, after=0, limit=3)
    second = page(chat, task, alice, after=ids(first)[-1], limit=3)
    third = page(chat, task, alice, after=ids(second)[-1], limit=3)

    assert ids(first) + ids(second) + ids(third) == all_ids
    assert [first["hasMore"], second["hasMore"], third["hasMore"]] == [True, True, False]
    assert page(chat, task, alice, after=all_ids[-1])["items"] == []


def test_after_the_newest_message_is_empty_with_no_more(task, alice, chat):
    newest = send_many(chat, task, [alice], 2)[-1]
    body = page(chat, task, alice, after=newest)
    assert (body["items"], body["hasMore"]) == ([], False)


def test_around_gives_the_message_and_its_neighbours_oldest_first(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 9)
    anchor = all_ids[4]

    body = page(chat, task, bob, around=anchor, limit=5)

    assert ids(body) == all_ids[2:7]
    assert anchor in ids(body)
    assert (body["hasMoreBefore"], body["hasMoreAfter"], body["hasMore"]) == (True, True, True)


def test_around_the_first_message_fills_the_page_with_newer_ones(task, alice, chat):
    all_ids = send_many(chat, task, [alice], 6)

    body = page(chat, task, alice, around=all_ids[0], limit=4)

    assert ids(body) == all_ids[:4]
    assert (body["hasMoreBefore"], body["hasMoreAfter"]) == (False, True)


def test_around_the_newest_message_reports_nothing_after(task, alice, chat):
    all_ids = send_many(chat, task, [alice], 6)

    body = page(chat, task, alice, around=all_ids[-1], limit=3)

    assert ids(body)[-1] == all_ids[-1]
    assert ids(body) == all_ids[-len(ids(body)):]
    assert (body["hasMoreBefore"], body["hasMoreAfter"], body["hasMore"]) == (True, False, True)


def test_around_in_a_short_chat_has_nothing_more_either_way(task, alice, chat):
    all_ids = send_many(chat, task, [alice], 3)
    body = page(chat, task, alice, around=all_ids[1], limit=10)
    assert ids(body) == all_ids
    assert (body["hasMoreBefore"], body["hasMoreAfter"], body["hasMore"]) == (False, False, False)


def test_around_then_paging_outwards_covers_the_chat_once(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 11)

    middle = page(chat, task, alice, around=all_ids[5], limit=3)
    older = page(chat, task, alice, before=ids(middle)[0], limit=100)
    newer = page(chat, task, alice, after=ids(middle)[-1], limit=100)

    assert ids(older)[::-1] + ids(middle) + ids(newer) == all_ids


def test_pages_hold_only_this_tasks_messages(task, make_task, alice, chat):
    other = make_task(alice, "Other")
    mine = []
    for i in range(3):
        mine.append(chat.message(task, alice, f"here {i}")["id"])
        chat.message(other, alice, f"there {i}")

    assert ids(page(chat, task, alice, after=0)) == mine
    assert ids(page(chat, task, alice, around=mine[1])) == mine
    assert ids(page(chat, task, alice)) == mine[::-1]


def test_paging_back_is_stable_while_others_send(task, alice, bob, chat):
    old_ids = send_many(chat, task, [alice, bob], 9, "old")

    seen = ids(page(chat, task, alice, limit=4))
    more = True
    while more:
        send_many(chat, task, [bob], 2, "new")  # arrives between two page requests
        body = page(chat, task, alice, limit=4, before=seen[-1])
        seen += ids(body)
        more = body["hasMore"]

    assert seen == old_ids[::-1], "no message twice, none skipped, none of the new ones"


def test_paging_forward_while_others_send_ends_with_every_message_once(task, alice, bob, chat):
    send_many(chat, task, [alice, bob], 5, "old")

    seen, more, rounds = [], True, 0
    while more:
        body = page(chat, task, alice, limit=2, after=seen[-1] if seen else 0)
        seen += ids(body)
        more = body["hasMore"]
        if rounds < 3:
            send_many(chat, task, [bob], 3, f"new{rounds}-")
        rounds += 1
        assert rounds < 50

    assert seen == [m["id"] for m in everything(chat, task, alice)]
    assert len(seen) == 5 + 3 * 3
    assert len(set(seen)) == len(seen)


def test_tombstones_keep_their_place_in_every_direction(client, task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 5)
    for gone in (all_ids[1], all_ids[3]):
        assert client.delete(f"{messages_url(task)}/{gone}", headers=alice.headers).status_code == 200

    forward = page(chat, task, bob, after=0)
    backward = page(chat, task, bob)
    around = page(chat, task, bob, around=all_ids[1], limit=3)

    assert ids(forward) == all_ids
    assert ids(backward) == all_ids[::-1]
    assert ids(around) == all_ids[:3]
    assert [m["deleted"] for m in forward["items"]] == [False, True, False, True, False]
    assert [m["message"] for m in forward["items"]] == ["m0", None, "m2", None, "m4"]


def test_previous_id_chains_the_tasks_messages(task, make_task, alice, bob, chat):
    other = make_task(alice, "Other")
    first = chat.message(task, alice, "one")
    chat.message(other, alice, "elsewhere")
    second = chat.message(task, bob, "two")

    assert first["previousId"] is None
    assert second["previousId"] == first["id"]


@pytest.mark.parametrize(
    "query",
    [
        {"before": 5, "after": 1},
        {"before": 5, "around": 3},
        {"after": 1, "around": 3},
        {"before": 5, "after": 1, "around": 3},
    ],
)
def test_two_cursors_at_once_are_422(client, task, alice, query, chat):
    send_many(chat, task, [alice], 6)
    response = client.get(messages_url(task), query_string=query, headers=alice.headers)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("cursor", [{}, {"after": 0}, {"before": 3}, {"around": 2}])
@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
def test_limit_outside_1_to_100_is_422_with_any_cursor(client, task, alice, cursor, limit):
    response = client.get(messages_url(task), query_string={**cursor, "limit": limit}, headers=alice.headers)
    assert "limit" in assert_error(response, 422, "validation_error")["details"]


@pytest.mark.parametrize("query", [{"after": -1}, {"after": "x"}, {"around": 0}, {"around": "x"}])
def test_bad_cursor_values_are_422(client, task, alice, query):
    response = client.get(messages_url(task), query_string=query, headers=alice.headers)
    assert set(query) <= set(assert_error(response, 422, "validation_error")["details"])


@pytest.mark.parametrize("cursor", [{"after": 0}, {"around": 1}])
def test_limits_1_and_100_are_accepted(task, alice, cursor, chat):
    send_many(chat, task, [alice], 3)
    assert len(page(chat, task, alice, limit=1, **cursor)["items"]) == 1
    assert len(page(chat, task, alice, limit=100, **cursor)["items"]) == 3


@pytest.mark.parametrize("cursor", [{"after": 0}, {"around": 1}, {"before": 5}])
def test_non_member_cannot_page(client, task, carol, cursor):
    assert_error(client.get(messages_url(task), query_string=cursor, headers=carol.headers), 403, "forbidden")


# ---- idempotent send ---------------------------------------------------------------------------
def test_retry_with_the_same_client_id_stores_and_broadcasts_once(socket, task, alice, bob, chat):
    sock = socket(alice)
    join(sock, task["id"])
    sock.get_received(NS)

    first = chat.send(task, bob, "exactly once", clientId="c-1")
    retry = chat.send(task, bob, "exactly once", clientId="c-1")

    assert first.status_code == 201 and first.get_json()["duplicate"] is False
    assert retry.status_code == 200 and retry.get_json()["duplicate"] is True
    assert {**retry.get_json(), "duplicate": False} == first.get_json()
    assert first.get_json()["clientId"] == "c-1"
    assert [m["id"] for m in everything(chat, task, alice)] == [first.get_json()["id"]]
    assert [e["message"]["id"] for e in events(sock, "new_message")] == [first.get_json()["id"]]


def test_a_retry_with_other_text_still_answers_the_first_message(task, bob, chat):
    first = chat.message(task, bob, "original", clientId="same")

    retry = chat.send(task, bob, "edited before retrying", clientId="same")

    assert retry.status_code == 200
    assert retry.get_json()["message"] == "original"
    assert [m["message"] for m in everything(chat, task, bob)] == ["original"]
    assert retry.get_json()["id"] == first["id"]


def test_a_retry_answers_the_current_state_of_the_first_message(client, task, bob, chat):
    first = chat.message(task, bob, "typo", clientId="late-retry")
    client.patch(f"{messages_url(task)}/{first['id']}", json={"message": "fixed"}, headers=bob.headers)

    retry = chat.send(task, bob, "typo", clientId="late-retry")

    assert retry.status_code == 200
    assert (retry.get_json()["id"], retry.get_json()["message"]) == (first["id"], "fixed")


def test_a_socket_send_retried_over_rest_is_a_duplicate(socket, task, alice, bob, chat):
    sock = socket(bob)
    join(sock, task["id"])
    ack = emit(sock, "send_message", {"taskId": task["id"], "message": "via socket", "clientId": "x-door"})
    assert ack["ok"] is True
    sock.get_received(NS)

    retry = chat.send(task, bob, "via socket", clientId="x-door")

    assert retry.status_code == 200 and retry.get_json()["duplicate"] is True
    assert retry.get_json()["id"] == ack["data"]["id"]
    assert events(sock, "new_message") == []
    assert len(everything(chat, task, alice)) == 1


def test_sends_without_client_id_are_never_merged(task, bob, chat):
    chat.message(task, bob, "same words")
    chat.message(task, bob, "same words")
    assert [m["clientId"] for m in everything(chat, task, bob)] == [None, None]


def test_different_users_may_use_the_same_client_id(task, alice, bob, chat):
    mine = chat.message(task, alice, "alice's", clientId="msg-1")
    theirs = chat.message(task, bob, "bob's", clientId="msg-1")

    assert mine["id"] != theirs["id"]
    assert [(m["userId"], m["clientId"]) for m in everything(chat, task, alice)] == [
        (alice.id, "msg-1"), (bob.id, "msg-1")
    ]


def test_client_id_reused_for_another_task_is_409(socket, task, make_task, alice, bob, chat):
    other = make_task(alice, "Other")
    first = chat.message(task, alice, "here", clientId="reused")
    sock = socket(alice)
    join(sock, other["id"])
    sock.get_received(NS)

    response = chat.send(other, alice, "there", clientId="reused")

    assert "clientId" in assert_error(response, 409, "client_id_reused")["details"]
    assert everything(chat, other, alice) == []
    assert everything(chat, task, alice) == [first]
    assert events(sock, "new_message") == []


@pytest.mark.parametrize("client_id", ["a" * 65, "tab\there", "new\nline", "nul\x00", "del\x7f", "", "   ", 42])
def test_bad_client_id_is_422_and_stores_nothing(task, alice, client_id, chat):
    response = chat.send(task, alice, "x", clientId=client_id)
    assert "clientId" in assert_error(response, 422, "validation_error")["details"]
    assert everything(chat, task, alice) == []


@pytest.mark.parametrize("client_id", ["a" * 64, "550e8400-e29b-41d4-a716-446655440000", "ünïcødé ✓", " padded "])
def test_client_id_is_kept_as_sent(task, alice, client_id, chat):
    message = chat.message(task, alice, "x", clientId=client_id)
    assert message["clientId"] == client_id
    assert chat.send(task, alice, "x", clientId=client_id).status_code == 200


def test_a_refused_send_does_not_use_up_the_client_id(task, add_member, alice, carol, chat):
    # A refused send stores nothing, so the same clientId sent again is a first send, not a duplicate.
    assert_error(chat.send(task, carol, "x", clientId="try"), 403, "forbidden")
    assert_error(chat.send(task, alice, "x", clientId="bad", mentions=[carol.id]), 422, "validation_error")
    add_member(alice, task, carol, "commenter")

    assert chat.send(task, carol, "x", clientId="try").status_code == 201
    assert chat.send(task, alice, "x", clientId="bad").status_code == 201


# ---- replies -----------------------------------------------------------------------------------
def preview_of(chat, task: dict, user, message_id: int) -> dict | None:
    return next(m for m in everything(chat, task, user) if m["id"] == message_id)["replyPreview"]


def test_reply_carries_a_preview_of_its_parent(task, alice, bob, chat):
    parent = chat.message(task, alice, "p" * 150)

    reply = chat.message(task, bob, "answer", replyTo=parent["id"])

    assert reply["replyTo"] == parent["id"]
    assert reply["replyPreview"] == {
        "messageId": parent["id"], "userId": alice.id, "userName": "Alice Owner", "excerpt": "p" * 100,
        "deleted": False,
    }
    assert preview_of(chat, task, bob, reply["id"]) == reply["replyPreview"]
    assert parent["replyPreview"] is None


def test_short_parent_is_quoted_whole(task, alice, bob, chat):
    parent = chat.message(task, alice, "short one")
    assert chat.message(task, bob, "ok", replyTo=parent["id"])["replyPreview"]["excerpt"] == "short one"


def test_preview_follows_an_edit_of_the_parent(client, task, alice, bob, chat):
    parent = chat.message(task, alice, "before the edit")
    reply = chat.message(task, bob, "answer", replyTo=parent["id"])

    client.patch(f"{messages_url(task)}/{parent['id']}", json={"message": "after the edit"}, headers=alice.headers)

    assert preview_of(chat, task, bob, reply["id"])["excerpt"] == "after the edit"


def test_preview_of_a_deleted_parent_says_so_and_quotes_nothing(client, task, alice, bob, chat):
    parent = chat.message(task, alice, "secret, then deleted")
    reply = chat.message(task, bob, "answer", replyTo=parent["id"])

    client.delete(f"{messages_url(task)}/{parent['id']}", headers=alice.headers)

    assert preview_of(chat, task, bob, reply["id"]) == {
        "messageId": parent["id"], "userId": alice.id, "userName": "Alice Owner", "excerpt": None, "deleted": True,
    }


def test_reply_to_a_message_of_another_task_is_422(task, make_task, alice, chat):
    other = make_task(alice, "Other")
    elsewhere = chat.message(other, alice, "elsewhere")

    response = chat.send(task, alice, "reply", replyTo=elsewhere["id"])

    assert "replyTo" in assert_error(response, 422, "validation_error")["details"]
    assert everything(chat, task, alice) == []


def test_around_jumps_to_a_replied_message(task, alice, bob, chat):
    all_ids = send_many(chat, task, [alice, bob], 30)
    reply = chat.message(task, bob, "about that", replyTo=all_ids[3])

    body = page(chat, task, alice, around=reply["replyTo"], limit=5)

    assert ids(body) == all_ids[1:6]


# ---- mentions ----------------------------------------------------------------------------------
def test_mentioned_member_gets_a_stored_notification(socket, task, alice, bob, chat):
    bobs_socket = socket(bob)  # connected, not joined to the task

    message = chat.message(task, alice, "@Bob please look", mentions=[bob.id])

    assert message["mentions"] == [bob.id]
    stored = chat.mentions(bob)
    assert stored["unreadCount"] == 1
    [item] = stored["items"]
    assert {k: item[k] for k in ("type", "taskId", "messageId", "from", "read", "readAt")} == {
        "type": "mention", "taskId": task["id"], "messageId": message["id"],
        "from": {"userId": alice.id, "userName": "Alice Owner"}, "read": False, "readAt": None,
    }
    [live] = events(bobs_socket, "task_notification")
    assert live["notificationId"] == live["id"] == item["id"]
    assert chat.mentions(alice)["items"] == []


def test_each_mentioned_member_is_notified_once(task, add_member, alice, bob, carol, chat):
    add_member(alice, task, carol, "viewer")  # a viewer may be mentioned, only not send

    message = chat.message(task, alice, "@all", mentions=[bob.id, carol.id, bob.id])

    assert message["mentions"] == [bob.id, carol.id]
    for user in (bob, carol):
        assert [n["messageId"] for n in chat.mentions(user)["items"]] == [message["id"]]


def test_mentioning_yourself_stores_nothing(task, alice, bob, chat):
    message = chat.message(task, alice, "note to self", mentions=[alice.id])

    assert message["mentions"] == [alice.id]
    assert chat.mentions(alice) == {"items": [], "hasMore": False, "unreadCount": 0}
    assert chat.mentions(bob)["items"] == []


@pytest.mark.parametrize("who", ["carol", "unknown", "string id"])
def test_mentioning_a_non_member_is_422_and_stores_nothing(task, alice, bob, carol, who, chat):
    target = {"carol": carol.id, "unknown": 999999, "string id": "nobody"}[who]

    response = chat.send(task, alice, "hey", mentions=[bob.id, target])

    assert "mentions" in assert_error(response, 422, "validation_error")["details"]
    assert everything(chat, task, alice) == []
    assert chat.mentions(bob)["items"] == []
    assert chat.mentions(carol)["items"] == []


def test_mentions_must_be_a_list(task, alice, bob, chat):
    response = chat.send(task, alice, "hey", mentions=bob.id)
    assert "mentions" in assert_error(response, 422, "validation_error")["details"]
