"""Plain sends stored together (services/chat_fast.py `store`): one statement for
a batch of sends of different tasks, with every rule of a send applied to each.

PostgreSQL only: SQLite takes the general path for every send.
"""
from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select, text

from app import hotdb
from app.extensions import db
from app.models import ActivityLog, ChatMessage, Task
from app.services import chat_fast


@pytest.fixture
def hot(app):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the one-statement send is PostgreSQL's")
    with app.app_context():
        yield hotdb.connections()
        db.session.remove()


@pytest.fixture
def tasks(alice, bob, make_task, add_member) -> list[dict]:
    """Three of Alice's tasks; Bob comments on the second."""
    made = [make_task(alice, f"Task {i}") for i in range(3)]
    add_member(alice, made[1], bob, "commenter")
    return made


def stored() -> dict[str, ChatMessage]:
    db.session.remove()
    return {m.client_id: m for m in db.session.scalars(select(ChatMessage))}


def test_a_batch_stores_each_send_on_its_own_task_in_one_statement(hot, tasks, alice, bob):
    one, two, three = (t["id"] for t in tasks)
    first = chat_fast.store(hot, [
        chat_fast.plain_send(alice.id, one, "to one", "a1"),
        chat_fast.plain_send(bob.id, two, "to two", "b1"),
        chat_fast.plain_send(alice.id, three, "to three", "a2"),
    ])
    assert [row[0] for row in first] == [0, 1, 2]
    second = chat_fast.store(hot, [
        chat_fast.plain_send(alice.id, two, "two again", "a3"),
        chat_fast.plain_send(alice.id, one, "one again", "a4"),
    ])
    rows = stored()
    assert {key: (m.task_id, m.user_id, m.message, m.seq, m.version) for key, m in rows.items()} == {
        "a1": (one, alice.id, "to one", 1, 1), "b1": (two, bob.id, "to two", 1, 1),
        "a2": (three, alice.id, "to three", 1, 1),
        "a3": (two, alice.id, "two again", 2, 2), "a4": (one, alice.id, "one again", 2, 2),
    }
    assert [rows[key].previous_id for key in ("a1", "b1", "a2")] == [None, None, None]
    assert (rows["a3"].previous_id, rows["a4"].previous_id) == (rows["b1"].id, rows["a1"].id)
    # Each row answers its own send: the id, previous id and seq the ack and broadcast carry.
    _n, message_id, previous_id, seq, first_name, last_name = second[0]
    assert (message_id, previous_id, seq) == (rows["a3"].id, rows["b1"].id, 2)
    assert (first_name, last_name) == ("Alice", "Owner")
    assert [(t.chat_seq, t.last_message_id) for t in (db.session.get(Task, i) for i in (one, two, three))] == [
        (2, rows["a4"].id), (2, rows["a3"].id), (1, rows["a2"].id),
    ]
    logged = db.session.scalars(select(ActivityLog.entity_id).where(ActivityLog.entity_type == "task_chat"))
    assert sorted(logged) == sorted(m.id for m in rows.values())


def test_a_send_that_may_not_be_stored_leaves_the_others_of_its_batch_stored(hot, tasks, alice, carol):
    one, two, _three = (t["id"] for t in tasks)
    answers = chat_fast.store(hot, [
        chat_fast.plain_send(alice.id, one, "allowed", "a1"),
        chat_fast.plain_send(carol.id, two, "not a member", "c1"),
    ])
    assert answers[0] is not None and answers[1] is None, "Carol's send goes to the general path, which refuses it"
    assert set(stored()) == {"a1"}


def test_one_clientid_twice_in_a_batch_stores_it_once_and_the_rest_of_the_batch(hot, tasks, alice):
    """Two tasks, one clientId: the first is stored, the second is left to the
    general path (which answers client_id_reused), the rest of the batch is stored."""
    one, two, three = (t["id"] for t in tasks)
    answers = chat_fast.store(hot, [
        chat_fast.plain_send(alice.id, one, "first", "same"),
        chat_fast.plain_send(alice.id, two, "second", "same"),
        chat_fast.plain_send(alice.id, three, "unrelated", "other"),
    ])
    assert answers[0] is not None and answers[1] is None and answers[2] is not None
    rows = stored()
    assert (rows["same"].task_id, rows["same"].message) == (one, "first")
    assert (rows["other"].task_id, len(rows)) == (three, 2)
    task_two = db.session.get(Task, two)
    assert (task_two.chat_seq, task_two.last_message_id) == (0, None), "a send not stored leaves its task as it was"


def test_a_retried_clientid_in_a_batch_is_left_to_the_general_path(hot, tasks, alice, bob):
    one, two, _three = (t["id"] for t in tasks)
    chat_fast.store(hot, [chat_fast.plain_send(alice.id, one, "once", "k")])
    answers = chat_fast.store(hot, [
        chat_fast.plain_send(alice.id, one, "once", "k"),
        chat_fast.plain_send(bob.id, two, "new", "b"),
    ])
    assert answers[0] is None and answers[1] is not None
    assert sorted(stored()) == ["b", "k"]


def test_the_send_reads_no_whole_table_once_task_chat_has_grown(hot, tasks, alice):
    """A prepared statement run a few times while task_chat was nearly empty (a new
    deployment, a freshly seeded benchmark) keeps the plan PostgreSQL settles on
    then. Made on an empty table, a plan that looks for the sender's clientId by
    scanning task_chat would scan all of it once it has grown: the statement finds
    a used clientId through the unique index its insert checks anyway."""
    one = tasks[0]["id"]
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM task_chat"))  # now empty on disk too, as in a new database
    for n in range(8):  # past the five runs after which PostgreSQL may settle on a generic plan
        chat_fast.store(hot, [chat_fast.plain_send(alice.id, one, f"early {n}", f"early-{n}")])
    db.session.execute(text(
        "INSERT INTO task_chat (task_id, user_id, message, attachments, mentions, client_id, seq, version,"
        " created_at) SELECT :task, :user, 'filler', '[]', '[]', 'filler-' || n, 0, 0, now()"
        " FROM generate_series(1, 50000) AS n"), {"task": one, "user": alice.id})
    db.session.commit()
    conn = hot._checkout()  # the connection the sends above ran on: the pool hands out the last one back
    try:
        name = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                            ["%jsonb_to_recordset%"]).fetchone()[0]
        sends = chat_fast._params([chat_fast.plain_send(alice.id, one, "late", "filler-7")])["sends"]
        explain = sql.SQL("EXPLAIN EXECUTE {}({})").format(sql.Identifier(name), sql.Literal(sends))
        plan = "\n".join(row[0] for row in conn.execute(explain))
    finally:
        hot._checkin(conn)
    assert "Seq Scan on task_chat" not in plan, plan
    assert chat_fast.store(hot, [chat_fast.plain_send(alice.id, one, "late", "filler-7")]) == [None], \
        "a clientId used before is found among them all"


def test_a_removal_that_commits_while_a_batch_waits_stops_that_send_and_no_other(app, hot, tasks, alice, bob,
                                                                               add_member):
    """Bob sends to three tasks in one batch while the owner removes him from the
    second. The removal holds the second task's lock (as `members.remove_member`
    does: `lock_for_members` first) and commits while the batch waits for it: the
    batch stores his messages to the first and the third task, and nothing to the
    second."""
    one, two, three = (t["id"] for t in tasks)
    add_member(alice, tasks[0], bob, "commenter")
    add_member(alice, tasks[2], bob, "commenter")
    conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    removal = psycopg.connect(conninfo)
    removal.execute("UPDATE tasks SET members_version = members_version + 1 WHERE id = %s", (two,))
    removal.execute("DELETE FROM task_members WHERE task_id = %s AND user_id = %s", (two, bob.id))
    answers: list = []
    batch = threading.Thread(target=lambda: answers.extend(chat_fast.store(hot, [
        chat_fast.plain_send(bob.id, task_id, "while removed", f"b{task_id}") for task_id in (one, two, three)
    ])))
    batch.start()
    try:
        with psycopg.connect(conninfo, autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while not watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                ["%jsonb_to_recordset%"],
            ).fetchone():
                assert time.monotonic() < deadline, "the batch never waited for the task's lock"
                time.sleep(0.01)
        removal.commit()
        batch.join(10)
    finally:
        removal.close()
    assert not batch.is_alive()
    assert answers[0] is not None and answers[1] is None and answers[2] is not None, answers
    assert sorted(m.task_id for m in stored().values()) == [one, three]
    task_two = db.session.get(Task, two)
    assert (task_two.chat_seq, task_two.last_message_id) == (0, None)
