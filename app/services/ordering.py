"""One writer at a time per task chat, so ids and versions follow commit order.

Every chat change (send, edit, delete, reaction) runs inside `chat_write`:
- `next_seq` bumps `tasks.chat_seq` as the transaction's first write. That
  takes the row's lock (PostgreSQL) or the database's write lock (SQLite) until
  the commit, so two changes of one task never interleave: a message's id is
  allocated under the lock, and ids increase in commit order.
- A process-local lock, held from before that bump until after the broadcast,
  keeps this process's broadcasts in commit order too. (Processes sharing a
  message queue can still interleave; `previousId` lets a client see a gap.)
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update

from ..errors import NO_TASK_ACCESS, Forbidden
from ..extensions import db
from ..models import Task

# Striped rather than one lock per task: bounded memory, and a task only ever
# waits for writers of tasks that share its stripe.
_STRIPES = tuple(threading.Lock() for _ in range(64))


@contextmanager
def chat_write(task_id: int) -> Iterator[None]:
    with _STRIPES[task_id % len(_STRIPES)]:
        try:
            yield
        except BaseException:
            db.session.rollback()
            raise


def next_seq(task_id: int) -> int:
    """The task's next change number; holds the task's write lock until commit."""
    # updated_at is named so that its onupdate does not fire: chatting is not editing the task.
    seq = db.session.execute(
        update(Task).where(Task.id == task_id)
        .values(chat_seq=Task.chat_seq + 1, updated_at=Task.updated_at)
        .returning(Task.chat_seq)
    ).scalar_one_or_none()
    if seq is None:  # deleted since the caller's permission check
        raise Forbidden(NO_TASK_ACCESS)
    return seq
