"""Socket.IO rooms: join_task, leave_task, typing_start/typing_stop, and disconnect.

Each test drives two or three clients and checks the ack, the `error` event, and
what every other client in (and out of) the room received.
"""
from __future__ import annotations

import pytest

from toolkit.sockets import NS, assert_refused, drain, emit, events, join
from toolkit.wire import PERMISSIONS, assert_recent

NO_ACCESS = {"code": "forbidden", "message": "No access to this task"}


def join_ack_data(task_id, user, role, permissions, online=None) -> dict:
    """A join's ack data for a client without a `lastMessageId`: nothing to catch up on,
    nothing unread in a task without messages, and `online` holding at least the joiner."""
    return {
        "taskId": task_id, "role": role, "permissions": permissions,
        "online": online if online is not None else [{"userId": user.id, "userName": user.name}],
        "unreadCount": 0, "missed": [], "hasMore": False, "updated": [], "updatedHasMore": False,
    }


@pytest.fixture
def carol_in(task, alice, carol, add_member):
    """Carol joins Alice's task as a commenter: a third member for three-client tests."""
    add_member(alice, task, carol, "commenter")
    return carol


# ---- join_task -------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["bare", "object", "digit string"])
def test_join_acks_with_the_role_and_permissions(socket, bob, task, payload):
    sent = {"bare": task["id"], "object": {"taskId": task["id"]}, "digit string": str(task["id"])}[payload]
    sock = socket(bob)

    ack = emit(sock, "join_task", sent)

    assert ack == {"ok": True, "data": join_ack_data(task["id"], bob, "editor", PERMISSIONS["editor"])}


@pytest.mark.parametrize("role, permissions", [
    ("viewer", {"canRead": True, "canComment": False, "canEdit": False, "canManageMembers": False}),
    ("commenter", {"canRead": True, "canComment": True, "canEdit": False, "canManageMembers": False}),
])
def test_every_role_may_join(socket, alice, carol, task, add_member, role, permissions):
    add_member(alice, task, carol, role)
    ack = join(socket(carol), task["id"])
    assert ack["data"] == join_ack_data(task["id"], carol, role, permissions)


def test_the_owner_joins_as_owner(socket, alice, task):
    data = join(socket(alice), task["id"])["data"]
    assert data["role"] == "owner"
    assert data["permissions"] == {"canRead": True, "canComment": True, "canEdit": True, "canManageMembers": True}


def test_the_join_ack_lists_who_is_online_each_user_once(socket, alice, bob, task):
    first_tab, second_tab = socket(alice), socket(alice, namespace="/")
    join(first_tab, task["id"])
    join(second_tab, task["id"], ns="/")

    data = join(socket(bob), task["id"])["data"]

    assert sorted(data["online"], key=lambda u: u["userId"]) == [
        {"userId": alice.id, "userName": "Alice Owner"}, {"userId": bob.id, "userName": "Bob Editor"}]


def test_the_others_in_the_room_get_user_joined(socket, alice, bob, carol_in, task):
    first, third = socket(alice), socket(carol_in)
    join(first, task["id"])
    join(third, task["id"])
    drain(first, third)
    joiner = socket(bob)

    join(joiner, {"taskId": str(task["id"])})

    for sock in (first, third):
        [joined] = events(sock, "user_joined")
        assert set(joined) == {"taskId", "userId", "userName", "timestamp"}
        assert (joined["taskId"], joined["userId"], joined["userName"]) == (task["id"], bob.id, "Bob Editor")
        assert_recent(joined["timestamp"])
    assert joiner.get_received(NS) == [], "the joiner must not hear its own user_joined"


def test_user_joined_stays_in_its_room(socket, alice, bob, make_task, add_member, task):
    """A socket that is connected but not in the room, or in another room, hears nothing."""
    other_task = make_task(alice, "Another task")
    add_member(alice, other_task, bob, "viewer")
    elsewhere, idle = socket(alice), socket(alice)
    join(elsewhere, other_task["id"])
    drain(elsewhere)

    join(socket(bob), task["id"])

    assert elsewhere.get_received(NS) == []
    assert idle.get_received(NS) == []


@pytest.mark.parametrize("which", ["not a member", "no such task"])
def test_join_is_refused_without_access(socket, alice, carol, task, which):
    task_id = task["id"] if which == "not a member" else task["id"] + 1000
    member = socket(alice)
    join(member, task["id"])
    drain(member)
    outsider = socket(carol)

    ack = emit(outsider, "join_task", task_id)

    assert_refused(outsider, ack, **NO_ACCESS)
    assert outsider.get_received(NS) == []
    assert member.get_received(NS) == [], "the room hears neither a join nor the error"


def test_a_refused_joiner_is_not_in_the_room(socket, client, alice, carol, task):
    outsider = socket(carol)
    emit(outsider, "join_task", task["id"])
    drain(outsider)

    client.post(f"/api/tasks/{task['id']}/messages", json={"message": "secret"}, headers=alice.headers)

    assert outsider.get_received(NS) == []


def test_joining_without_an_ack_still_tells_the_room(socket, alice, bob, task):
    first = socket(alice)
    join(first, task["id"])
    drain(first)

    assert socket(bob).emit("join_task", task["id"], namespace=NS) is None

    assert [e["userId"] for e in events(first, "user_joined")] == [bob.id]


def test_a_refused_join_without_an_ack_still_gets_the_error_event(socket, carol, task):
    outsider = socket(carol)
    outsider.emit("join_task", task["id"], namespace=NS)
    [error] = events(outsider, "error")
    assert {k: error[k] for k in ("code", "message")} == NO_ACCESS


def test_unknown_keys_cannot_impersonate(socket, alice, bob, task):
    first = socket(alice)
    join(first, task["id"])
    drain(first)

    join(socket(bob), {"taskId": task["id"], "userId": alice.id, "userName": "Mallory", "role": "owner", "x": [1]})

    [joined] = events(first, "user_joined")
    assert (joined["userId"], joined["userName"]) == (bob.id, "Bob Editor")


# ---- leave_task ------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["bare", "object", "digit string"])
def test_leave_tells_the_others(socket, alice, bob, carol_in, task, payload):
    first, third, leaver = socket(alice), socket(carol_in), socket(bob)
    for sock in (first, third, leaver):
        join(sock, task["id"])
    drain(first, third, leaver)
    sent = {"bare": task["id"], "object": {"taskId": task["id"], "userId": alice.id, "junk": [1]},
            "digit string": str(task["id"])}[payload]

    ack = emit(leaver, "leave_task", sent)

    assert ack == {"ok": True, "data": {"taskId": task["id"]}}
    for sock in (first, third):
        [left] = events(sock, "user_left")
        assert set(left) == {"taskId", "userId", "userName", "timestamp"}
        assert (left["taskId"], left["userId"], left["userName"]) == (task["id"], bob.id, "Bob Editor")
        assert_recent(left["timestamp"])
    assert leaver.get_received(NS) == []


def test_after_leaving_the_room_is_silent(socket, alice, bob, task):
    stayer, leaver = socket(alice), socket(bob)
    join(stayer, task["id"])
    join(leaver, task["id"])
    emit(leaver, "leave_task", task["id"])
    drain(stayer, leaver)

    emit(stayer, "send_message", {"taskId": task["id"], "message": "anyone?"})
    emit(stayer, "typing_start", {"taskId": task["id"]})

    assert leaver.get_received(NS) == []
    assert [e["name"] for e in stayer.get_received(NS)] == ["new_message"]


def test_leaving_a_room_never_joined_tells_nobody(socket, alice, bob, task):
    member, idle = socket(alice), socket(bob)
    join(member, task["id"])
    drain(member)

    assert emit(idle, "leave_task", task["id"]) == {"ok": True, "data": {"taskId": task["id"]}}

    assert member.get_received(NS) == []
    assert idle.get_received(NS) == []


def test_leave_then_join_again(socket, alice, bob, task):
    first, second = socket(alice), socket(bob)
    join(first, task["id"])
    join(second, task["id"])
    emit(second, "leave_task", task["id"])
    drain(first)

    join(second, task["id"])
    emit(second, "typing_start", {"taskId": task["id"]})

    assert [e["name"] for e in first.get_received(NS)] == ["user_joined", "user_typing"]


def test_leaving_without_an_ack_still_tells_the_room(socket, alice, bob, task):
    first, second = socket(alice), socket(bob)
    join(first, task["id"])
    join(second, task["id"])
    drain(first)

    assert second.emit("leave_task", task["id"], namespace=NS) is None

    assert [e["userId"] for e in events(first, "user_left")] == [bob.id]


# ---- disconnect ------------------------------------------------------------------------------
def test_disconnect_tells_each_room_of_the_socket(socket, alice, bob, carol_in, make_task, add_member, task):
    other_task = make_task(alice, "Second task")
    add_member(alice, other_task, bob, "commenter")
    first, third, leaver = socket(alice), socket(carol_in), socket(bob)
    join(first, task["id"])
    join(first, other_task["id"])
    join(third, task["id"])
    join(leaver, task["id"])
    join(leaver, other_task["id"])
    drain(first, third)

    leaver.disconnect(namespace=NS)

    left = events(first, "user_left")
    assert sorted(e["taskId"] for e in left) == sorted([task["id"], other_task["id"]])
    assert {(e["userId"], e["userName"]) for e in left} == {(bob.id, "Bob Editor")}
    [left_third] = events(third, "user_left")
    assert (left_third["taskId"], left_third["userId"]) == (task["id"], bob.id)
    assert_recent(left_third["timestamp"])


def test_disconnect_of_a_socket_that_never_joined_tells_nobody(socket, alice, bob, task):
    member, idle = socket(alice), socket(bob)
    join(member, task["id"])
    drain(member)

    idle.disconnect(namespace=NS)

    assert member.get_received(NS) == []


def test_disconnect_after_leaving_tells_nobody_again(socket, alice, bob, task):
    member, leaver = socket(alice), socket(bob)
    join(member, task["id"])
    join(leaver, task["id"])
    emit(leaver, "leave_task", task["id"])
    drain(member)

    leaver.disconnect(namespace=NS)

    assert member.get_received(NS) == []


def test_one_of_two_sockets_disconnecting_leaves_the_other_in_the_room(socket, alice, bob, task):
    member, tab_one, tab_two = socket(alice), socket(bob), socket(bob)
    for sock in (member, tab_one, tab_two):
        join(sock, task["id"])
    drain(member, tab_one, tab_two)

    tab_one.disconnect(namespace=NS)
    emit(member, "send_message", {"taskId": task["id"], "message": "still there?"})

    assert [e["message"]["message"] for e in events(tab_two, "new_message")] == ["still there?"]


def test_a_disconnected_socket_is_in_no_room_and_the_others_keep_theirs(app, socket, alice, bob, make_task,
                                                                           add_member, task):
    """The server finds a socket's rooms from its own index (app/patches.py), not by
    scanning every room: what it answers must be what the rooms hold, before and after."""
    from app.extensions import socketio as sio

    manager = sio.server.manager
    other_task = make_task(alice, "Second task")
    add_member(alice, other_task, bob, "commenter")
    stayer, leaver = socket(alice), socket(bob)
    for sock in (stayer, leaver):
        join(sock, task["id"])
        join(sock, other_task["id"])
    sid_of = {sock: manager.sid_from_eio_sid(sock.eio_sid, NS) for sock in (stayer, leaver)}

    def held(sid):  # what the rooms themselves hold, by a full scan
        return sorted(str(name) for name, room in manager.rooms[NS].items() if name is not None and sid in room)

    for sid in sid_of.values():
        assert sorted(str(r) for r in manager.get_rooms(sid, NS)) == held(sid)
        assert {f"task_{task['id']}", f"task_{other_task['id']}", sid} <= set(held(sid))
    stayer_rooms = held(sid_of[stayer])

    leaver.disconnect(namespace=NS)

    assert held(sid_of[leaver]) == [] and manager.get_rooms(sid_of[leaver], NS) == []
    assert sid_of[leaver] not in manager.rooms[NS][None]
    assert held(sid_of[stayer]) == stayer_rooms == sorted(str(r) for r in manager.get_rooms(sid_of[stayer], NS))


# ---- typing ----------------------------------------------------------------------------------
def test_typing_start_and_stop_reach_the_others(socket, alice, bob, carol_in, task):
    typer, first, third = socket(bob), socket(alice), socket(carol_in)
    for sock in (typer, first, third):
        join(sock, task["id"])
    drain(typer, first, third)

    assert emit(typer, "typing_start", {"taskId": task["id"]}) == {"ok": True, "data": {"taskId": task["id"]}}
    assert emit(typer, "typing_stop", {"taskId": str(task["id"])}) == {"ok": True, "data": {"taskId": task["id"]}}

    for sock in (first, third):
        assert sock.get_received(NS) == [
            {"name": "user_typing", "args": [{"taskId": task["id"], "userId": bob.id, "userName": "Bob Editor"}],
             "namespace": NS},
            {"name": "user_stopped_typing", "args": [{"taskId": task["id"], "userId": bob.id}], "namespace": NS},
        ]
    assert typer.get_received(NS) == [], "the typer does not hear itself"


def test_sending_ends_the_typing_for_the_others_and_the_sender_does_not_hear_it(socket, alice, bob, task):
    member, typer = socket(alice), socket(bob)
    join(member, task["id"])
    join(typer, task["id"])
    emit(typer, "typing_start", {"taskId": task["id"]})
    drain(member, typer)

    emit(typer, "send_message", {"taskId": task["id"], "message": "done typing"})

    assert [e["name"] for e in member.get_received(NS)] == ["new_message", "user_stopped_typing"]
    assert [e["name"] for e in typer.get_received(NS)] == ["new_message"], "the typer does not hear itself"


def test_a_viewer_in_the_room_may_type(socket, alice, carol, task, add_member):
    add_member(alice, task, carol, "viewer")
    member, viewer = socket(alice), socket(carol)
    join(member, task["id"])
    join(viewer, task["id"])
    drain(member)

    assert emit(viewer, "typing_start", {"taskId": task["id"]})["ok"] is True
    assert [e["userId"] for e in events(member, "user_typing")] == [carol.id]


@pytest.mark.parametrize("event", ["typing_start", "typing_stop"])
def test_typing_from_a_member_not_in_the_room_is_refused(socket, alice, bob, task, event):
    member, idle = socket(alice), socket(bob)
    join(member, task["id"])
    drain(member)

    ack = emit(idle, event, {"taskId": task["id"]})

    assert ack["ok"] is False
    assert ack["error"]["code"] == "forbidden"
    [error] = events(idle, "error")
    assert error["code"] == "forbidden"
    assert member.get_received(NS) == [], "nobody hears typing from outside the room"


@pytest.mark.parametrize("event", ["typing_start", "typing_stop"])
def test_typing_from_a_non_member_is_refused(socket, alice, carol, task, event):
    member, outsider = socket(alice), socket(carol)
    join(member, task["id"])
    drain(member)

    ack = emit(outsider, event, {"taskId": task["id"]})

    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert member.get_received(NS) == []


def test_typing_is_per_socket_not_per_user(socket, alice, bob, task):
    """Bob's joined tab does not let his other tab type into the room."""
    member, joined_tab, other_tab = socket(alice), socket(bob), socket(bob, namespace="/")
    join(member, task["id"])
    join(joined_tab, task["id"])
    drain(member)

    ack = emit(other_tab, "typing_start", {"taskId": task["id"]}, ns="/")

    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert member.get_received(NS) == []


def test_typing_after_leaving_is_refused(socket, alice, bob, task):
    member, typer = socket(alice), socket(bob)
    join(member, task["id"])
    join(typer, task["id"])
    emit(typer, "leave_task", task["id"])
    drain(member)

    assert emit(typer, "typing_start", {"taskId": task["id"]})["error"]["code"] == "forbidden"
    assert member.get_received(NS) == []


def test_typing_without_an_ack_still_reaches_the_room(socket, alice, bob, task):
    member, typer = socket(alice), socket(bob)
    join(member, task["id"])
    join(typer, task["id"])
    drain(member)

    assert typer.emit("typing_start", {"taskId": task["id"]}, namespace=NS) is None
    assert typer.emit("typing_stop", {"taskId": task["id"]}, namespace=NS) is None

    assert [e["name"] for e in member.get_received(NS)] == ["user_typing", "user_stopped_typing"]


def test_typing_ignores_unknown_keys(socket, alice, bob, task):
    member, typer = socket(alice), socket(bob)
    join(member, task["id"])
    join(typer, task["id"])
    drain(member)

    emit(typer, "typing_start", {"taskId": task["id"], "userId": alice.id, "userName": "Mallory"})

    [typing] = events(member, "user_typing")
    assert typing == {"taskId": task["id"], "userId": bob.id, "userName": "Bob Editor"}


def test_typing_stays_in_its_room(socket, alice, bob, make_task, task):
    other_task = make_task(alice, "Alice alone")
    elsewhere, member, typer = socket(alice), socket(alice), socket(bob)
    join(elsewhere, other_task["id"])
    join(member, task["id"])
    join(typer, task["id"])
    drain(elsewhere, member)

    emit(typer, "typing_start", {"taskId": task["id"]})

    assert elsewhere.get_received(NS) == []
    assert len(events(member, "user_typing")) == 1


# ---- both namespaces share the rooms ----------------------------------------------------------
def test_root_and_tasks_clients_see_each_others_join_typing_and_leave(socket, alice, bob, task):
    root, tasks = socket(alice, namespace="/"), socket(bob, namespace="/tasks")
    join(root, task["id"], ns="/")
    join(tasks, task["id"], ns="/tasks")
    emit(tasks, "typing_start", {"taskId": task["id"]}, ns="/tasks")
    emit(tasks, "typing_stop", {"taskId": task["id"]}, ns="/tasks")
    emit(root, "typing_start", {"taskId": task["id"]}, ns="/")

    assert [(e["name"], e["args"][0]["userId"]) for e in root.get_received("/")] == [
        ("user_joined", bob.id), ("user_typing", bob.id), ("user_stopped_typing", bob.id),
    ]
    assert [(e["name"], e["args"][0]["userId"]) for e in tasks.get_received("/tasks")] == [("user_typing", alice.id)]

    emit(root, "leave_task", task["id"], ns="/")
    assert [(e["taskId"], e["userId"]) for e in events(tasks, "user_left", "/tasks")] == [(task["id"], alice.id)]


def test_a_root_client_disconnecting_tells_a_tasks_client(socket, alice, bob, task):
    root, tasks = socket(alice, namespace="/"), socket(bob)
    join(root, task["id"], ns="/")
    join(tasks, task["id"])
    drain(tasks)

    root.disconnect()

    assert [e["userId"] for e in events(tasks, "user_left")] == [alice.id]


# ---- malformed payloads ----------------------------------------------------------------------
MALFORMED = {
    "no args": (),
    "None": (None,),
    "a list": ([1],),
    "a string": ("abc",),
    "an empty string": ("",),
    "a float id": (1.5,),
    "a whole float": (1.0,),
    "True": (True,),
    "False": (False,),
    "a huge id": (10**20,),
    "just past the integer column": (2**31,),
    "a negative id": (-1,),
    "zero": (0,),
    "an empty dict": ({},),
    "a null taskId": ({"taskId": None},),
    "a wrongly named key": ({"task_id": 1},),
    "a float taskId": ({"taskId": 1.5},),
    "a boolean taskId": ({"taskId": True},),
    "a huge taskId": ({"taskId": 10**20},),
    "a huge digit string": ({"taskId": "9" * 40},),
    "a negative taskId": ({"taskId": -3},),
    "a list taskId": ({"taskId": [1]},),
    "a dict taskId": ({"taskId": {"id": 1}},),
    "a signed digit string": ({"taskId": "-1"},),
}


@pytest.mark.parametrize("event", ["join_task", "leave_task", "typing_start", "typing_stop"])
@pytest.mark.parametrize("args", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_payloads_get_a_validation_error_and_the_socket_keeps_working(
    socket, alice, bob, task, event, args
):
    member, sender = socket(alice), socket(bob)
    join(member, task["id"])
    if event.startswith("typing"):
        join(sender, task["id"])
    drain(member, sender)

    ack = emit(sender, event, *args)

    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == "validation_error"
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
    [error] = events(sender, "error")
    assert error["code"] == "validation_error"
    assert member.get_received(NS) == [], "a refused event reaches nobody"
    # Still connected, still useful.
    assert sender.is_connected(NS)
    emit(sender, "typing_start", {"taskId": task["id"]}) if event.startswith("typing") else join(sender, task["id"])
    assert len(member.get_received(NS)) == 1


@pytest.mark.parametrize("event", ["join_task", "leave_task"])
def test_a_second_argument_is_ignored(socket, alice, bob, task, event):
    member, sender = socket(alice), socket(bob)
    join(member, task["id"])
    if event == "leave_task":
        join(sender, task["id"])
    drain(member)

    assert emit(sender, event, task["id"], {"extra": True})["ok"] is True
    assert len(member.get_received(NS)) == 1
