"""The common send in one statement: a plain text message, on PostgreSQL.

A chat message is the hot path of the whole server, and most messages are plain
text with no reply, mention or attachment. For those, one statement, run in
autocommit on one of the hot connections (app/hotdb.py) when the event has not
opened a transaction yet (one round trip, no BEGIN or COMMIT of its own), keeps
every rule of `chat.send_message`:

- it takes the task's row lock (`FOR UPDATE`) and reads, from the row it locked,
  the change's number (`chat_seq` + 1), the newest message's id (the new one's
  `previous_id`) and the membership version; it allocates the message's id under
  that lock and bumps `chat_seq` only if the message was stored, so ids and
  versions follow commit order;
- it stores only if the sender's membership, read in the statement's snapshot,
  allows commenting, and the membership version it read in that snapshot is
  still the locked row's: every membership change bumps that version under the
  same lock, so a removal or a demotion that committed while this statement
  waited for the lock makes it store nothing;
- it stores only if no message of the sender already has this clientId (the
  insert's ON CONFLICT on the unique index; a concurrent insert of the same
  clientId is waited for, then stores nothing);
- it inserts the message and its activity row, and returns what the ack and the
  broadcast need, so nothing is read back afterwards.

Sends that arrive while the database is busy with earlier ones go together, as
one statement for the lot (group commit, app/batches.py): each is checked and
stored as above, on its own task's row. A task has at most one send in flight
in this process (its `chat_write` lock), so a batch holds one send per task.

When it stores nothing (task gone, not allowed, a retried clientId, the same
clientId sent concurrently, a membership change meanwhile), the caller runs the
general path, which finds out why and answers as it always did. SQLite (the
embedded default) always takes the general path: its writers are serialised by
the database's write lock anyway.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy.exc import IntegrityError

from .. import aftercommit, hotdb
from ..actor import Actor
from ..batches import Batcher
from ..extensions import db
from ..models import COMMENTING_ROLES, utcnow
from . import activity
from .events import MessageCreated

_ROLES = ", ".join(f"'{role}'" for role in sorted(COMMENTING_ROLES))

# The sends of one batch (app/batches.py): one JSON array of objects in, one row
# out per message stored. The sends of a batch are of different tasks, and the
# statement locks their rows in id order, so that batches of two processes
# sharing tasks cannot deadlock (every other writer locks one task only).
# A clientId the sender has used before is found by the insert itself, through
# the unique index it checks anyway (ON CONFLICT): no plan can read task_chat
# any other way, whatever the table's size when the statement was prepared.
_SEND = f"""
WITH sends AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%(sends)s::jsonb) AS s(
        n int, task_id bigint, user_id bigint, message text, client_id text, now timestamptz,
        logged jsonb, description text)
), locked AS MATERIALIZED (
    SELECT id, chat_seq, last_message_id, members_version FROM tasks
    WHERE id IN (SELECT task_id FROM sends) ORDER BY id FOR UPDATE
), allowed AS MATERIALIZED (
    SELECT s.*, nextval(pg_get_serial_sequence('task_chat', 'id')) AS id, locked.chat_seq + 1 AS seq,
           locked.last_message_id AS previous_id
    FROM sends AS s JOIN locked ON locked.id = s.task_id
    WHERE locked.members_version = (SELECT v.members_version FROM tasks AS v WHERE v.id = locked.id)
      AND EXISTS (SELECT 1 FROM task_members AS m
                  WHERE m.task_id = s.task_id AND m.user_id = s.user_id AND m.role IN ({_ROLES}))
), message AS (
    INSERT INTO task_chat (id, task_id, user_id, message, attachments, mentions, client_id, previous_id, seq,
                           version, created_at)
    SELECT id, task_id, user_id, message, '[]'::jsonb, '[]'::jsonb, client_id, previous_id, seq, seq, now
    FROM allowed
    ON CONFLICT (user_id, client_id) DO NOTHING
    RETURNING id, task_id
), bumped AS (
    UPDATE tasks AS t SET chat_seq = t.chat_seq + 1, last_message_id = message.id
    FROM message WHERE t.id = message.task_id
), logged AS (
    INSERT INTO activity_logs (user_id, action, entity_type, entity_id, task_id, old_values, new_values,
                               description, created_at)
    SELECT a.user_id, 'created', 'task_chat', a.id, a.task_id, 'null'::jsonb, a.logged, a.description, a.now
    FROM allowed AS a JOIN message ON message.id = a.id
)
SELECT a.n, a.id, a.previous_id, a.seq, u.first_name, u.last_name
FROM allowed AS a JOIN message ON message.id = a.id LEFT JOIN users AS u ON u.id = a.user_id
"""

# A batch waits for nothing but the one before it: while `_IN_FLIGHT` batches
# run, new sends gather for the next (bench/ANALYSIS.md has the measurements).
_IN_FLIGHT = 4
_MAX_BATCH = 100


@dataclass(frozen=True)
class Author:
    id: int
    first_name: str
    last_name: str


@dataclass
class StoredMessage:
    """A message just stored by the one statement: the attributes of a `ChatMessage`
    that the wire format reads, without an ORM row behind it."""

    id: int
    task_id: int
    user_id: int
    message: str
    client_id: str | None
    previous_id: int | None
    version: int
    created_at: datetime
    user: Author | None
    attachments: list[Any] = field(default_factory=list)
    mentions: list[int] = field(default_factory=list)
    reactions: list[Any] = field(default_factory=list)
    reply_to: None = None
    parent: None = None
    edited_at: None = None
    deleted_at: None = None
    deleted: bool = False


def send(actor: Actor, task_id: int, message: str, client_id: str | None) -> StoredMessage | None:
    """The message stored, or None when the general path must decide (see above)."""
    hot = hotdb.connections()
    if hot is None:  # SQLite
        return None
    request = plain_send(actor.id, task_id, message, client_id)
    if hotdb.session_in_transaction():
        # This event or request has already read something (a REST request its
        # user): its session holds a pooled connection, and asking for a second
        # one, with every event doing the same, could wait forever. The statement
        # runs in that transaction, then commits it.
        try:
            rows = db.session.connection().exec_driver_sql(_SEND, _params([request])).all()
            stored = _stored(actor, request, rows[0]) if rows else None
            if stored is not None:
                aftercommit.record(MessageCreated(stored, actor))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return None  # refused by a constraint (its sender deleted meanwhile): the general path answers
        return stored
    row = hot.batcher("chat_send", lambda: _batcher(hot)).submit(request)
    if row is None:
        return None
    stored = _stored(actor, request, row)
    aftercommit.committed(MessageCreated(stored, actor))  # the statement committed on its own
    return stored


def _stored(actor: Actor, request: dict[str, Any], row: tuple[Any, ...]) -> StoredMessage:
    _n, message_id, previous_id, seq, first_name, last_name = row
    author = None if first_name is None else Author(actor.id, first_name, last_name)
    return StoredMessage(
        id=message_id, task_id=request["task_id"], user_id=actor.id, message=request["message"],
        client_id=request["client_id"], previous_id=previous_id, version=seq, created_at=request["now"], user=author,
    )


def plain_send(user_id: int, task_id: int, message: str, client_id: str | None) -> dict[str, Any]:
    """One send of a batch, as the statement reads it."""
    return {
        "task_id": task_id, "user_id": user_id, "message": message, "client_id": client_id, "now": utcnow(),
        "logged": activity.sent_values(message, 0, None), "description": activity.sent_description(task_id),
    }


def _batcher(hot: hotdb.HotConnections) -> Batcher[dict[str, Any], tuple[Any, ...] | None]:
    return Batcher(
        lambda sends: store(hot, sends), key=lambda send: send["task_id"], max_size=_MAX_BATCH, in_flight=_IN_FLIGHT,
    )


def store(hot: hotdb.HotConnections, sends: list[dict[str, Any]]) -> list[tuple[Any, ...] | None | BaseException]:
    """One batch of sends (of different tasks) in one statement: per send, the row
    stored, or None when the general path must decide, or the error to raise."""
    try:
        rows = hot.fetch_all(_SEND, _params(sends))
    except psycopg.Error as error:
        if error.sqlstate is None:
            raise  # the connection failed: whether the batch was stored is unknown
        if len(sends) > 1:
            # The server refused the statement, so it stored nothing: one send of
            # the batch is at fault (a constraint: its sender deleted meanwhile),
            # or the batch met a deadlock. Each alone, then.
            return [_one(hot, send) for send in sends]
        if isinstance(error, psycopg.errors.IntegrityError):
            return [None]  # refused by a constraint: the general path answers
        raise
    found: list[tuple[Any, ...] | None | BaseException] = [None] * len(sends)
    for row in rows:
        found[row[0]] = row
    return found


def _one(hot: hotdb.HotConnections, send: dict[str, Any]) -> tuple[Any, ...] | None | BaseException:
    try:
        return store(hot, [send])[0]
    except psycopg.Error as error:
        return error


def _params(sends: list[dict[str, Any]]) -> dict[str, str]:
    return {"sends": orjson.dumps([dict(send, n=n) for n, send in enumerate(sends)]).decode()}
