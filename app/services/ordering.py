"""One writer at a time per task, so ids and versions follow commit order, and
nothing is written by someone whose membership changed meanwhile.

Every chat change (send, edit, delete, reaction) runs inside `chat_write`:
- `lock_for_chat` bumps `tasks.chat_seq` as the transaction's first write. That
  takes the row's lock (PostgreSQL) or the database's write lock (SQLite) until
  the commit, so two changes of one task never interleave: a message's id is
  allocated under the lock, and ids increase in commit order.
- Every membership change takes the same lock first (`lock_for_members`), so the
  writer's membership, read after the lock, stays what it read until the commit:
  nothing is stored after a removal or a demotion has committed.
- A process-local lock, held from before that bump until after the broadcast,
  keeps this process's broadcasts in commit order too. (Processes sharing a
  message queue can still interleave; `previousId` lets a client see a gap.)

`chat_fast.py` does the common send in one statement under the same rules.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import update

from .. import cooperative
from ..errors import NO_TASK_ACCESS, Forbidden
from ..extensions import db
from ..models import Task, TaskMember

# Striped rather than one lock per task: bounded memory, and a task only ever
# waits for writers of tasks that share its stripe.
_STRIPES = tuple(cooperative.lock() for _ in range(64))


@contextmanager
def chat_write(task_id: int) -> Iterator[None]:
    with _STRIPES[task_id % len(_STRIPES)]:
        try:
            yield
        except BaseException:
            db.session.rollback()
            raise


@dataclass(frozen=True)
class Locked:
    """What a chat writer knows once it holds the task's lock."""

    seq: int  # this change's number
    last_message_id: int | None  # the task's newest message: a new message's previous_id
    member: TaskMember  # the writer's membership as committed now


def lock_for_chat(task_id: int, user_id: int) -> Locked:
    """Take the task's write lock with the change's number, then read the writer's
    membership: a member removed before this point is refused here."""
    # updated_at is named so that its onupdate does not fire: chatting is not editing the task.
    row = db.session.execute(
        update(Task).where(Task.id == task_id)
        .values(chat_seq=Task.chat_seq + 1, updated_at=Task.updated_at)
        .returning(Task.chat_seq, Task.last_message_id)
    ).one_or_none()
    if row is None:  # deleted since the caller looked
        raise Forbidden(NO_TASK_ACCESS)
    # A new statement after the lock: on PostgreSQL it sees every membership
    # change committed before the lock was granted (they all take this lock).
    member = db.session.get(TaskMember, (task_id, user_id), populate_existing=True)
    if member is None:
        raise Forbidden(NO_TASK_ACCESS)
    return Locked(seq=row.chat_seq, last_message_id=row.last_message_id, member=member)


def message_added(task_id: int, message_id: int) -> None:
    """The task's newest message is now this one (under the lock `lock_for_chat` took)."""
    db.session.execute(
        update(Task).where(Task.id == task_id).values(last_message_id=message_id, updated_at=Task.updated_at)
    )


def lock_for_members(task_id: int) -> None:
    """A membership change takes the task's write lock first, so that it commits
    either before a chat write reads the membership or after it has committed."""
    db.session.execute(
        update(Task).where(Task.id == task_id)
        .values(members_version=Task.members_version + 1, updated_at=Task.updated_at)
    )
