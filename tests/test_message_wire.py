"""The socket events' message format (`schemas.outputs.message_wire`) is REST's `MessageOut`,
and the one-statement send (PostgreSQL) stores exactly what the general path stores."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.actor import Actor
from app.extensions import db
from app.models import ActivityLog, ChatMessage, Task
from app.schemas.outputs import MessageOut, message_wire, seen_by
from app.services import chat, chat_fast
from toolkit.sockets import send


@pytest.fixture
def room(room_of, alice, bob):
    """Alice's and Bob's sockets, joined to the task in that order; nothing drained."""
    a, b = (peer.sock for peer in room_of(alice, bob, drain=False))
    return a, b


def _every_kind_of_message(room, client, alice, bob, task) -> None:
    a, b = room
    first = send(a, task["id"], "the first, soon a parent")["data"]
    send(b, task["id"], "a reply", replyTo=first["id"])
    send(a, task["id"], "mentioning Bob", mentions=[bob.id])
    edited = send(b, task["id"], "before the edit")["data"]
    b.emit("edit_message", {"messageId": edited["id"], "message": "after the edit"}, namespace="/tasks",
           callback=True)
    reacted = send(a, task["id"], "with reactions")["data"]
    for who, emoji in ((a, "👍"), (b, "👍"), (b, "🎉")):
        who.emit("add_reaction", {"messageId": reacted["id"], "emoji": emoji}, namespace="/tasks", callback=True)
    deleted = send(b, task["id"], "to be deleted", clientId="c-1")["data"]
    b.emit("delete_message", {"messageId": deleted["id"]}, namespace="/tasks", callback=True)
    send(a, task["id"], "a reply to a deleted message", replyTo=deleted["id"])


@pytest.mark.parametrize("viewer", ["alice", "bob", None])
def test_message_wire_equals_the_rest_schema_for_every_kind_of_message(
        app, room, client, alice, bob, task, viewer):
    _every_kind_of_message(room, client, alice, bob, task)
    viewer_id = {"alice": alice.id, "bob": bob.id, None: None}[viewer]
    schema = MessageOut()
    with app.app_context(), seen_by(viewer_id):
        messages = db.session.scalars(select(ChatMessage).order_by(ChatMessage.id)).all()
        assert len(messages) == 7
        for message in messages:
            assert message_wire(message, viewer_id) == schema.dump(message)
            assert list(message_wire(message, viewer_id)) == list(schema.dump(message))  # same key order


def test_a_message_dump_that_names_no_viewer_fails(app, room, task):
    """Whose reactions are `me` is the caller's to say, even when it is nobody's."""
    send(room[0], task["id"], "hello")
    with app.app_context():
        message = db.session.scalars(select(ChatMessage)).one()
        with pytest.raises(RuntimeError, match="seen_by"):
            MessageOut().dump(message)
        with seen_by(None):
            assert MessageOut().dump(message) == message_wire(message)


def test_acks_and_broadcasts_equal_the_rest_history(room, client, alice, bob, task):
    a, b = room
    b.get_received("/tasks")
    acks = [send(a, task["id"], f"message {i}", clientId=f"k{i}")["data"] for i in range(3)]
    heard = [e["args"][0]["message"] for e in b.get_received("/tasks") if e["name"] == "new_message"]
    history = client.get(f"/api/tasks/{task['id']}/messages", headers=alice.headers).get_json()["items"]
    history.sort(key=lambda m: m["id"])
    assert [dict(ack, duplicate=None) for ack in acks] == [dict(m, duplicate=None) for m in history]
    assert heard == history
    assert [m["previousId"] for m in history] == [None, history[0]["id"], history[1]["id"]]


def test_one_statement_send_stores_what_the_general_path_stores(app, room, client, alice, task):
    """On PostgreSQL a plain message takes the one-statement path; its rows, and
    the task's bookkeeping, are those of the general path (which a mention forces)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the one-statement send is PostgreSQL's")
    a, _b = room
    with app.app_context():
        actor = Actor(alice.id, alice.name)
        with chat.chat_write(task["id"]):
            fast = chat_fast.send(actor, task["id"], "plain and fast", "fast-1")
        assert fast is not None, "a plain message on PostgreSQL takes the one-statement path"
        db.session.remove()
    general = send(a, task["id"], "plain and fast", clientId="general-1", mentions=[alice.id])["data"]
    with app.app_context():
        rows = {m.client_id: m for m in db.session.scalars(select(ChatMessage))}
        one, two = rows["fast-1"], rows["general-1"]
        assert (one.previous_id, one.seq, one.version) == (None, 1, 1)
        assert (two.previous_id, two.seq, two.version) == (one.id, 2, 2)
        assert (one.attachments, one.mentions, one.reply_to, one.deleted_at) == ([], [], None, None)
        logs = {log.entity_id: log for log in db.session.scalars(select(ActivityLog).where(
            ActivityLog.entity_type == "task_chat"))}
        for column in ("user_id", "action", "entity_type", "task_id", "old_values", "new_values", "description"):
            assert getattr(logs[one.id], column) == getattr(logs[two.id], column), column
        stored = db.session.get(Task, task["id"])
        assert (stored.chat_seq, stored.last_message_id) == (2, two.id)
    assert general["previousId"] == fast.id


def test_a_retried_client_id_takes_the_general_path_and_is_a_duplicate(app, room, client, alice, task):
    a, b = room
    first = send(a, task["id"], "once", clientId="same")["data"]
    b.get_received("/tasks")
    again = send(a, task["id"], "once", clientId="same")["data"]
    assert again == dict(first, duplicate=True)
    assert [e for e in b.get_received("/tasks") if e["name"] == "new_message"] == []
    history = client.get(f"/api/tasks/{task['id']}/messages", headers=alice.headers).get_json()["items"]
    assert [m["id"] for m in history] == [first["id"]]
