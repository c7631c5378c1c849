"""Reactions, read state and notifications over REST:
POST/DELETE /api/tasks/<id>/messages/<mid>/reactions, POST /api/tasks/<id>/read (and the
unreadCount of the task lists), GET /api/notifications and POST /api/notifications/read."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from toolkit.chat import messages_url, ok
from toolkit.rest import assert_error
from toolkit.sockets import NS, events, join


# The users that add_member adds have read the notice of it: the notifications here are mentions.
pytestmark = pytest.mark.added_notices_read

NOTIFICATION_KEYS = {"id", "type", "taskId", "messageId", "from", "createdAt", "readAt", "read"}


# ---- helpers -----------------------------------------------------------------------------------
def as_seen_by(chat, task: dict, user, message_id: int) -> dict:
    return next(m for m in chat.history(task, user, after=0)["items"] if m["id"] == message_id)


def unread_in_list(client, task: dict, user) -> int:
    items = ok(client.get("/api/tasks", headers=user.headers))["items"]
    return next(t for t in items if t["id"] == task["id"])["unreadCount"]


def unread_of_task(client, task: dict, user) -> int:
    return ok(client.get(f"/api/tasks/{task['id']}", headers=user.headers))["unreadCount"]


def assert_unread(client, task: dict, user, count: int) -> None:
    """Both task answers agree on the user's unread count."""
    assert (unread_in_list(client, task, user), unread_of_task(client, task, user)) == (count, count)


def read_notifications(client, user, **body):
    return client.post("/api/notifications/read", json=body, headers=user.headers)


@pytest.fixture
def room(room_of, alice, bob):
    """Alice's socket on /tasks and Bob's on /, both joined, inboxes emptied: (socket, namespace)."""
    return [(peer.sock, peer.ns) for peer in room_of(alice, (bob, "/"))]


# ---- reactions ---------------------------------------------------------------------------------
def test_add_reaction_answers_the_message_with_me_true(task, alice, bob, chat):
    message = chat.sent(task, alice, "ship it?")

    body = ok(chat.react(task, bob, message["id"], "👍"))

    assert body["id"] == message["id"]
    assert body["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [bob.id], "me": True}]
    assert body["version"] > message["version"]


def test_me_is_relative_to_whoever_asks(task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "viewer")
    message = chat.sent(task, alice, "vote")
    chat.react(task, bob, message["id"], "👍")
    chat.react(task, alice, message["id"], "🎉")
    chat.react(task, alice, message["id"], "👍")

    def summary(user):
        reactions = as_seen_by(chat, task, user, message["id"])["reactions"]
        return [(r["emoji"], r["count"], r["userIds"], r["me"]) for r in reactions]

    # Grouped by emoji, in the order each emoji was first used.
    assert summary(alice) == [("👍", 2, [bob.id, alice.id], True), ("🎉", 1, [alice.id], True)]
    assert summary(bob) == [("👍", 2, [bob.id, alice.id], True), ("🎉", 1, [alice.id], False)]
    assert summary(carol) == [("👍", 2, [bob.id, alice.id], False), ("🎉", 1, [alice.id], False)]


def test_adding_twice_is_one_reaction_and_one_broadcast(task, room, alice, bob, chat):
    message = chat.sent(task, alice, "hi")
    for sock, ns in room:
        sock.get_received(ns)

    first = ok(chat.react(task, bob, message["id"], "👍"))
    again = ok(chat.react(task, bob, message["id"], "👍"))

    assert again == first
    for sock, ns in room:
        assert len(events(sock, "reaction_updated", ns)) == 1


def test_remove_reaction(task, alice, bob, chat):
    message = chat.sent(task, alice, "hi")
    chat.react(task, bob, message["id"], "👍")
    chat.react(task, alice, message["id"], "👍")

    body = ok(chat.unreact(task, bob, message["id"], "👍"))

    assert body["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [alice.id], "me": False}]
    ok(chat.unreact(task, alice, message["id"], "👍"))
    assert as_seen_by(chat, task, bob, message["id"])["reactions"] == []


def test_removing_a_reaction_that_is_not_there_changes_nothing(task, room, alice, bob, chat):
    message = chat.sent(task, alice, "hi")
    chat.react(task, alice, message["id"], "👍")
    for sock, ns in room:
        sock.get_received(ns)

    body = ok(chat.unreact(task, bob, message["id"], "👍"))

    assert body["reactions"] == [{"emoji": "👍", "count": 1, "userIds": [alice.id], "me": False}]
    for sock, ns in room:
        assert sock.get_received(ns) == []


@pytest.mark.parametrize("emoji", ["👍🏽", "👨‍👩‍👧", ":+1:", "a b", "100%", "ü", "x" * 32])
def test_any_emoji_round_trips_through_the_url(task, alice, bob, emoji, chat):
    message = chat.sent(task, alice, "hi")

    assert [r["emoji"] for r in ok(chat.react(task, bob, message["id"], emoji))["reactions"]] == [emoji]
    assert ok(chat.unreact(task, bob, message["id"], emoji))["reactions"] == []


# Emojis the body rules accept that a URL treats specially: `/` (even first, last or
# doubled), `%`, `?`, `#`, spaces, and dots next to slashes.
AWKWARD_EMOJIS = ["/", "a/b", "/x", "x/", "a//b", "//", "👍/👎", "%", "%2F", "%25", "100%", "?", "a?b=c", "#",
                  "#tag", " a", "a ", "a b", "../x", "a/../b", "./", "...", "%2e%2e", "+", "\\"]
# The same with their `/` as they are (the rest percent-encoded): a URL carries these raw.
RAW_SLASH_EMOJIS = ["/", "a/b", "/x", "x/", "a//b", "//", "👍/👎", "%/%", "a /b"]


@pytest.mark.parametrize("emoji", AWKWARD_EMOJIS)
def test_every_emoji_that_can_be_added_can_be_removed_percent_encoded(task, alice, bob, emoji, chat):
    message = chat.sent(task, alice, "hi")
    assert [r["emoji"] for r in ok(chat.react(task, bob, message["id"], emoji))["reactions"]] == [emoji]

    assert ok(chat.unreact(task, bob, message["id"], emoji))["reactions"] == []
    assert as_seen_by(chat, task, alice, message["id"])["reactions"] == []


@pytest.mark.parametrize("emoji", RAW_SLASH_EMOJIS)
def test_an_emoji_with_a_slash_can_be_removed_with_the_slash_as_it_is(client, task, alice, bob, emoji, chat):
    message = chat.sent(task, alice, "hi")
    chat.react(task, bob, message["id"], "👍")
    assert [r["emoji"] for r in ok(chat.react(task, bob, message["id"], emoji))["reactions"]] == ["👍", emoji]

    url = f"{messages_url(task, message['id'])}/reactions/{quote(emoji, safe='/')}"
    response = client.delete(url, headers=bob.headers)

    # Only that reaction went: not "👍", nor one named by a part of the path.
    assert [r["emoji"] for r in ok(response)["reactions"]] == ["👍"]


@pytest.mark.parametrize("emoji", [".", ".."])
def test_an_emoji_no_url_can_name_is_refused_when_added(task, alice, bob, emoji, chat):
    """A path segment "." or ".." is resolved away by clients before it is sent, so such a
    reaction could never be removed over REST: it is not accepted."""
    message = chat.sent(task, alice, "hi")

    error = assert_error(chat.react(task, bob, message["id"], emoji), 422, "validation_error")

    assert "emoji" in error["details"]
    assert as_seen_by(chat, task, alice, message["id"])["reactions"] == []
    # Dots among other characters are fine.
    assert ok(chat.react(task, bob, message["id"], emoji + "x"))["reactions"][0]["emoji"] == emoji + "x"


@pytest.mark.parametrize("body", [{}, {"emoji": ""}, {"emoji": "   "}, {"emoji": "x" * 33}, {"emoji": "a\nb"},
                                  {"emoji": 1}, {"emoji": None}])
def test_bad_emoji_is_422(client, task, alice, body, chat):
    message = chat.sent(task, alice, "hi")
    response = client.post(messages_url(task, message["id"]) + "/reactions", json=body, headers=alice.headers)
    assert "emoji" in assert_error(response, 422, "validation_error")["details"]
    assert as_seen_by(chat, task, alice, message["id"])["reactions"] == []


def test_viewer_may_not_react(task, alice, carol, add_member, chat):
    add_member(alice, task, carol, "viewer")
    message = chat.sent(task, alice, "hi")
    chat.react(task, alice, message["id"], "👍")

    assert_error(chat.react(task, carol, message["id"], "👍"), 403, "forbidden")
    assert_error(chat.unreact(task, carol, message["id"], "👍"), 403, "forbidden")
    assert as_seen_by(chat, task, alice, message["id"])["reactions"][0]["userIds"] == [alice.id]


def test_demoted_member_can_no_longer_react(client, task, alice, bob, chat):
    message = chat.sent(task, alice, "hi")
    client.patch(f"/api/tasks/{task['id']}/members/{bob.id}", json={"role": "viewer"}, headers=alice.headers)
    assert_error(chat.react(task, bob, message["id"], "👍"), 403, "forbidden")


def test_reacting_to_a_deleted_message_is_409(client, task, alice, bob, chat):
    message = chat.sent(task, alice, "hi")
    chat.react(task, bob, message["id"], "👍")
    client.delete(f"/api/tasks/{task['id']}/messages/{message['id']}", headers=alice.headers)

    assert_error(chat.react(task, bob, message["id"], "🎉"), 409, "message_deleted")
    assert_error(chat.unreact(task, bob, message["id"], "👍"), 409, "message_deleted")


def test_reactions_of_non_members_and_other_tasks_messages(task, make_task, alice, carol, chat):
    message = chat.sent(task, alice, "hi")
    other = make_task(alice, "Other")
    elsewhere = chat.sent(other, alice, "elsewhere")

    assert_error(chat.react(task, carol, message["id"], "👍"), 403, "forbidden")
    assert_error(chat.react(task, alice, elsewhere["id"], "👍"), 404, "not_found")
    assert_error(chat.react(task, alice, 987654, "👍"), 404, "not_found")
    assert_error(chat.unreact(task, alice, elsewhere["id"], "👍"), 404, "not_found")


def test_reaction_updated_reaches_the_room_without_me(task, room, socket, alice, bob, chat):
    outside = socket(alice)  # connected, not joined
    message = chat.sent(task, alice, "hi")
    chat.react(task, alice, message["id"], "🎉")
    for sock, ns in room:
        sock.get_received(ns)

    added = ok(chat.react(task, bob, message["id"], "👍"))
    removed = ok(chat.unreact(task, bob, message["id"], "👍"))

    after_adding = [
        {"emoji": "🎉", "count": 1, "userIds": [alice.id]}, {"emoji": "👍", "count": 1, "userIds": [bob.id]},
    ]
    after_removing = [{"emoji": "🎉", "count": 1, "userIds": [alice.id]}]
    for sock, ns in room:
        # `message`: the whole message, as broadcasts show it (without `me`).
        assert events(sock, "reaction_updated", ns) == [
            {"taskId": task["id"], "messageId": message["id"], "emoji": "👍", "action": "added", "userId": bob.id,
             "userName": "Bob Editor", "version": added["version"], "reactions": after_adding,
             "message": {**added, "reactions": after_adding}},
            {"taskId": task["id"], "messageId": message["id"], "emoji": "👍", "action": "removed", "userId": bob.id,
             "userName": "Bob Editor", "version": removed["version"], "reactions": after_removing,
             "message": {**removed, "reactions": after_removing}},
        ]
    assert removed["version"] > added["version"]
    assert events(outside, "reaction_updated") == []


# ---- read state --------------------------------------------------------------------------------
def test_mark_read_answers_the_read_state(client, task, alice, bob, chat):
    ids = [chat.sent(task, bob, f"m{i}")["id"] for i in range(3)]

    body = ok(chat.mark_read(task, alice, ids[0]))

    assert body == {"taskId": task["id"], "lastReadId": ids[0], "unreadCount": 2}
    assert_unread(client, task, alice, 2)


def test_mark_read_only_moves_forward(client, task, alice, bob, chat):
    ids = [chat.sent(task, bob, f"m{i}")["id"] for i in range(3)]
    ok(chat.mark_read(task, alice, ids[2]))

    body = ok(chat.mark_read(task, alice, ids[0]))

    assert body == {"taskId": task["id"], "lastReadId": ids[2], "unreadCount": 0}
    assert_unread(client, task, alice, 0)


def test_unread_counts_only_others_non_deleted_messages(client, task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "commenter")
    chat.sent(task, alice, "a1")
    doomed = chat.sent(task, bob, "b1")
    chat.sent(task, bob, "b2")
    chat.sent(task, carol, "c1")
    client.delete(f"/api/tasks/{task['id']}/messages/{doomed['id']}", headers=bob.headers)

    assert_unread(client, task, alice, 2)  # b2, c1
    assert_unread(client, task, bob, 2)  # a1, c1 (his own never count)
    assert_unread(client, task, carol, 2)  # a1, b2


def test_reading_up_to_the_newest_message_clears_the_count(client, task, alice, bob, chat):
    for i in range(4):
        chat.sent(task, bob, f"m{i}")
    newest = chat.sent(task, alice, "mine")

    assert ok(chat.mark_read(task, alice, newest["id"]))["unreadCount"] == 0
    assert_unread(client, task, alice, 0)
    chat.sent(task, bob, "one more")
    assert_unread(client, task, alice, 1)


def test_the_count_is_per_task(client, task, make_task, alice, bob, add_member, chat):
    other = make_task(alice, "Other")
    add_member(alice, other, bob, "editor")
    chat.sent(task, bob, "here")
    for i in range(3):
        chat.sent(other, bob, f"there {i}")

    assert_unread(client, task, alice, 1)
    assert_unread(client, other, alice, 3)


def test_a_new_member_starts_with_everything_read(client, task, alice, bob, carol, add_member, chat):
    for i in range(5):
        chat.sent(task, alice if i % 2 else bob, f"m{i}")

    add_member(alice, task, carol, "commenter")

    assert_unread(client, task, carol, 0)
    chat.sent(task, bob, "welcome")
    assert_unread(client, task, carol, 1)


def test_marking_a_deleted_message_read_is_allowed(client, task, alice, bob, chat):
    first = chat.sent(task, bob, "one")
    chat.sent(task, bob, "two")
    client.delete(f"/api/tasks/{task['id']}/messages/{first['id']}", headers=bob.headers)
    assert ok(chat.mark_read(task, alice, first["id"]))["unreadCount"] == 1


@pytest.mark.parametrize("case", ["another task's", "unknown"])
def test_mark_read_with_a_message_not_in_the_task_is_422(client, task, make_task, alice, bob, case, chat):
    chat.sent(task, bob, "here")
    message_id = chat.sent(make_task(alice, "Other"), alice, "there")["id"] if case == "another task's" else 987654

    response = chat.mark_read(task, alice, message_id)

    assert "messageId" in assert_error(response, 422, "validation_error")["details"]
    assert_unread(client, task, alice, 1)


@pytest.mark.parametrize("message_id", [None, "x", 0, -3, True])
def test_mark_read_with_a_bad_message_id_is_422(task, alice, message_id, chat):
    assert "messageId" in assert_error(chat.mark_read(task, alice, message_id), 422, "validation_error")["details"]


def test_mark_read_by_a_non_member_is_403(task, bob, carol, chat):
    message = chat.sent(task, bob, "hi")
    assert_error(chat.mark_read(task, carol, message["id"]), 403, "forbidden")


def test_a_viewer_may_mark_read(task, alice, carol, add_member, chat):
    add_member(alice, task, carol, "viewer")
    message = chat.sent(task, alice, "hi")
    assert ok(chat.mark_read(task, carol, message["id"]))["unreadCount"] == 0


def test_read_updated_reaches_every_socket_of_the_user_only(socket, task, alice, bob, chat):
    ids = [chat.sent(task, bob, f"m{i}")["id"] for i in range(3)]
    joined = socket(alice)
    join(joined, task["id"])
    idle = socket(alice)  # never joined: the personal room is enough
    legacy = socket(alice, namespace="/")
    bobs = socket(bob)
    join(bobs, task["id"])
    for sock, ns in ((joined, NS), (idle, NS), (legacy, "/"), (bobs, NS)):
        sock.get_received(ns)

    ok(chat.mark_read(task, alice, ids[1]))

    expected = [{"taskId": task["id"], "lastReadId": ids[1], "unreadCount": 1}]
    assert events(joined, "read_updated") == expected
    assert events(idle, "read_updated") == expected
    assert events(legacy, "read_updated", "/") == expected
    assert bobs.get_received(NS) == []


def test_a_mark_that_does_not_move_is_not_announced(socket, task, alice, bob, chat):
    ids = [chat.sent(task, bob, f"m{i}")["id"] for i in range(2)]
    ok(chat.mark_read(task, alice, ids[1]))
    sock = socket(alice)

    ok(chat.mark_read(task, alice, ids[0]))
    ok(chat.mark_read(task, alice, ids[1]))

    assert events(sock, "read_updated") == []


# ---- notifications -----------------------------------------------------------------------------
def mention(chat, task: dict, sender, *users, text: str = "@you") -> dict:
    return chat.sent(task, sender, text, mentions=[u.id for u in users])


def test_a_mention_is_listed_as_an_unread_notification(task, alice, bob, chat):
    message = mention(chat, task, alice, bob)

    body = chat.mentions(bob)

    assert (body["unreadCount"], body["hasMore"]) == (1, False)
    [item] = body["items"]
    assert set(item) == NOTIFICATION_KEYS
    assert item["type"] == "mention"
    assert (item["taskId"], item["messageId"]) == (task["id"], message["id"])
    assert item["from"] == {"userId": alice.id, "userName": "Alice Owner"}
    assert (item["read"], item["readAt"]) == (False, None)
    assert item["createdAt"].endswith("Z")


def test_unread_come_first_then_newest_first(client, task, alice, bob, chat):
    first, second, third = (mention(chat, task, alice, bob, text=f"n{i}") for i in range(3))
    by_message = {n["messageId"]: n["id"] for n in chat.mentions(bob)["items"]}
    ok(read_notifications(client, bob, ids=[by_message[second["id"]]]))

    items = chat.mentions(bob)["items"]

    assert [n["messageId"] for n in items] == [third["id"], first["id"], second["id"]]
    assert [n["read"] for n in items] == [False, False, True]
    assert items[2]["readAt"] is not None


def test_read_with_ids_marks_only_those(client, task, alice, bob, chat):
    for i in range(3):
        mention(chat, task, alice, bob, text=f"n{i}")
    newest, middle, oldest = chat.mentions(bob)["items"]

    body = ok(read_notifications(client, bob, ids=[oldest["id"], newest["id"]]))

    assert body == {"updated": 2, "unreadCount": 1}
    assert chat.mentions(bob)["unreadCount"] == 1
    assert chat.mentions(bob)["items"][0]["id"] == middle["id"]


def test_reading_again_updates_nothing(client, task, alice, bob, chat):
    mention(chat, task, alice, bob)
    [item] = chat.mentions(bob)["items"]
    ok(read_notifications(client, bob, ids=[item["id"]]))

    assert ok(read_notifications(client, bob, ids=[item["id"]])) == {"updated": 0, "unreadCount": 0}
    assert ok(read_notifications(client, bob, all=True)) == {"updated": 0, "unreadCount": 0}


def test_all_true_marks_all(client, task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "commenter")
    for i in range(3):
        mention(chat, task, alice, bob, carol, text=f"n{i}")

    assert ok(read_notifications(client, bob, all=True)) == {"updated": 3, "unreadCount": 0}
    assert all(n["read"] for n in chat.mentions(bob)["items"])
    assert chat.mentions(carol)["unreadCount"] == 3, "Carol's stay unread"


@pytest.mark.parametrize("body", [{}, {"ids": None}, {"all": False}, {"all": "true"}, {"all": 1},
                                  {"ids": [], "all": True}, {"unknown": 1}])
def test_a_read_that_says_neither_ids_nor_all_true_is_refused_and_marks_nothing(client, task, alice, bob, body, chat):
    """An empty body once marked every notification read."""
    for i in range(2):
        mention(chat, task, alice, bob, text=f"n{i}")

    error = assert_error(read_notifications(client, bob, **body), 422, "validation_error")

    assert error["details"]
    assert chat.mentions(bob)["unreadCount"] == 2


def test_other_users_ids_are_ignored(client, task, alice, bob, carol, add_member, chat):
    add_member(alice, task, carol, "commenter")
    mention(chat, task, alice, bob)
    mention(chat, task, alice, carol)
    [bobs] = chat.mentions(bob)["items"]
    [carols] = chat.mentions(carol)["items"]

    body = ok(read_notifications(client, bob, ids=[carols["id"], bobs["id"], 987654]))

    assert body == {"updated": 1, "unreadCount": 0}
    assert chat.mentions(carol)["items"][0]["read"] is False


def test_an_empty_id_list_marks_nothing(client, task, alice, bob, chat):
    mention(chat, task, alice, bob)
    assert ok(read_notifications(client, bob, ids=[])) == {"updated": 0, "unreadCount": 1}


def test_notifications_page_with_limit(task, alice, bob, chat):
    for i in range(4):
        mention(chat, task, alice, bob, text=f"n{i}")

    body = chat.mentions(bob, limit=3)

    assert len(body["items"]) == 3
    assert (body["hasMore"], body["unreadCount"]) == (True, 4)
    assert chat.mentions(bob, limit=4)["hasMore"] is True, "the read notice of being added is fifth"
    assert chat.mentions(bob, limit=5)["hasMore"] is False


@pytest.mark.parametrize("limit", [0, 101, "all"])
def test_notifications_limit_out_of_range_is_422(client, bob, limit):
    response = client.get("/api/notifications", query_string={"limit": limit}, headers=bob.headers)
    assert "limit" in assert_error(response, 422, "validation_error")["details"]


@pytest.mark.parametrize("ids", ["all", [0], ["x"], [True], [1.5]])
def test_read_with_bad_ids_is_422(client, task, alice, bob, ids, chat):
    mention(chat, task, alice, bob)
    assert "ids" in assert_error(read_notifications(client, bob, ids=ids), 422, "validation_error")["details"]
    assert chat.mentions(bob)["unreadCount"] == 1


def test_notifications_need_a_token(client):
    assert client.get("/api/notifications").status_code == 401
    assert client.post("/api/notifications/read", json={}).status_code == 401
