"""The common send in one statement: a plain text message, on PostgreSQL.

A chat message is the hot path of the whole server, and most messages are plain
text with no reply, mention or attachment. For those, one statement, run in
autocommit on one of the hot connections (app/hotdb.py) when the event has not
opened a transaction yet (one round trip, no BEGIN or COMMIT of its own), keeps
every rule of `chat.send_message`:

- it takes the task's row lock (`FOR UPDATE`) and reads, from the row it locked,
  the newest message's id (the new one's `previous_id`) and the membership
  version; it bumps `chat_seq` (the change's number) and allocates the message's
  id under that lock, so ids and versions follow commit order;
- it stores only if the sender's membership, read in the statement's snapshot,
  allows commenting, and the membership version it read in that snapshot is
  still the locked row's: every membership change bumps that version under the
  same lock, so a removal or a demotion that committed while this statement
  waited for the lock makes it store nothing;
- it stores only if no message of the sender already has this clientId;
- it inserts the message and its activity row, and returns what the ack and the
  broadcast need, so nothing is read back afterwards.

When it stores nothing (task gone, not allowed, a retried clientId, a membership
change meanwhile) or hits the clientId's unique constraint (the same clientId
sent concurrently), the caller runs the general path, which finds out why and
answers as it always did. SQLite (the embedded default) always takes the general
path: its writers are serialised by the database's write lock anyway.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError

from .. import hotdb
from ..auth import Actor
from ..extensions import db
from ..models import COMMENTING_ROLES, utcnow
from . import activity

_ROLES = ", ".join(f"'{role}'" for role in sorted(COMMENTING_ROLES))

_SEND = f"""
WITH locked AS MATERIALIZED (
    SELECT id, last_message_id, members_version FROM tasks WHERE id = %(task_id)s FOR UPDATE
), bumped AS (
    UPDATE tasks AS t
    SET chat_seq = t.chat_seq + 1, last_message_id = nextval(pg_get_serial_sequence('task_chat', 'id'))
    FROM locked
    WHERE t.id = locked.id
      AND locked.members_version = (SELECT s.members_version FROM tasks AS s WHERE s.id = %(task_id)s)
      AND EXISTS (SELECT 1 FROM task_members AS m
                  WHERE m.task_id = %(task_id)s AND m.user_id = %(user_id)s AND m.role IN ({_ROLES}))
      AND NOT EXISTS (SELECT 1 FROM task_chat AS c WHERE c.user_id = %(user_id)s AND c.client_id = %(client_id)s)
    RETURNING t.id AS task_id, t.chat_seq AS seq, t.last_message_id AS id, locked.last_message_id AS previous_id
), message AS (
    INSERT INTO task_chat (id, task_id, user_id, message, attachments, mentions, client_id, previous_id, seq,
                           version, created_at)
    SELECT id, task_id, %(user_id)s, %(message)s, '[]'::jsonb, '[]'::jsonb, %(client_id)s, previous_id, seq, seq, %(now)s
    FROM bumped
    RETURNING id, task_id, previous_id, seq, created_at
), logged AS (
    INSERT INTO activity_logs (user_id, action, entity_type, entity_id, task_id, old_values, new_values,
                               description, created_at)
    SELECT %(user_id)s, 'created', 'task_chat', id, task_id, 'null'::jsonb, %(logged)s::jsonb, %(description)s, %(now)s
    FROM message
)
SELECT message.id, message.previous_id, message.seq, message.created_at, u.first_name, u.last_name
FROM message LEFT JOIN users AS u ON u.id = %(user_id)s
"""


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
    duplicate: bool = False


def send(actor: Actor, task_id: int, message: str, client_id: str | None) -> StoredMessage | None:
    """The message stored, or None when the general path must decide (see above)."""
    hot = hotdb.connections()
    if hot is None:  # SQLite
        return None
    now = utcnow()
    params = {
        "task_id": task_id, "user_id": actor.id, "message": message, "client_id": client_id, "now": now,
        "logged": json.dumps(activity.sent_values(message, 0, None)), "description": activity.sent_description(task_id),
    }
    try:
        if hotdb.session_in_transaction():
            # This event or request has already read something (a REST request its
            # user): its session holds a pooled connection, and asking for a second
            # one, with every event doing the same, could wait forever. The statement
            # runs in that transaction, then commits it.
            row = db.session.connection().exec_driver_sql(_SEND, params).one_or_none()
            db.session.commit()
        else:
            row = hot.fetch_one(_SEND, params)
    except (IntegrityError, psycopg.errors.IntegrityError):
        db.session.rollback()
        return None  # the same clientId, sent concurrently: the general path finds the first
    if row is None:
        return None
    message_id, previous_id, seq, created_at, first_name, last_name = row
    author = None if first_name is None else Author(actor.id, first_name, last_name)
    return StoredMessage(
        id=message_id, task_id=task_id, user_id=actor.id, message=message, client_id=client_id,
        previous_id=previous_id, version=seq, created_at=created_at, user=author,
    )
