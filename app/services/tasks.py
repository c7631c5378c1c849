"""Tasks: create, read, update, delete. The creator becomes the owner."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from .. import aftercommit
from ..actor import Actor
from ..extensions import db
from ..models import Attachment, Task, TaskMember
from . import activity, reads
from .access import require_member, require_permission
from .attachments import file_paths, remove_files
from .events import TaskDeleted, TaskUpdated
from .ordering import lock_for_members

_EDITABLE = ("title", "description", "status")


def task_values(task: Task) -> dict[str, Any]:
    return {field: getattr(task, field) for field in _EDITABLE}


@dataclass(frozen=True)
class MyTask:
    """A task as one member sees it: the task, their role, and what they have not
    read (counted for the list and a task's own page; None for the answers of a
    create and an update)."""

    task: Task
    role: str
    unread_count: int | None = None


def create_task(actor: Actor, *, title: str, description: str = "", status: str = "todo") -> MyTask:
    task = Task(title=title, description=description, status=status, created_by=actor.id)
    owner = TaskMember(task=task, user_id=actor.id, role="owner")
    db.session.add_all([task, owner])
    db.session.flush()
    activity.record(
        user_id=actor.id, action="created", entity_type="task", entity_id=task.id, task_id=task.id,
        new_values=task_values(task), description=f'Created task "{title}"',
    )
    db.session.commit()
    return MyTask(task, owner.role)


def my_tasks(actor: Actor) -> list[MyTask]:
    """The tasks the actor is a member of, newest first."""
    rows = db.session.execute(
        select(TaskMember, reads.unread_column())
        .join(TaskMember.task)
        .options(contains_eager(TaskMember.task))
        .where(TaskMember.user_id == actor.id)
        .order_by(Task.id.desc())
    )
    return [MyTask(member.task, member.role, unread) for member, unread in rows]


def get_task(actor: Actor, task_id: int) -> MyTask:
    member = require_member(task_id, actor.id)
    return MyTask(member.task, member.role, reads.unread_count(member))


def update_task(actor: Actor, task_id: int, changes: dict[str, Any]) -> MyTask:
    member = require_permission(task_id, actor.id, "can_edit", "You do not have permission to edit this task")
    task = member.task
    old = task_values(task)
    changed = {k: v for k, v in changes.items() if k in _EDITABLE and old[k] != v}
    if changed:
        for field, value in changed.items():
            setattr(task, field, value)
        activity.record(
            user_id=actor.id, action="updated", entity_type="task", entity_id=task.id, task_id=task.id,
            old_values={k: old[k] for k in changed}, new_values=changed,
            description=f"Updated {', '.join(sorted(changed))}",
        )
        aftercommit.record(TaskUpdated(task, sorted(changed), actor))
        db.session.commit()
    return MyTask(task, member.role)


def delete_task(actor: Actor, task_id: int) -> None:
    # Deleting the task ends every membership, so it takes the task's write lock
    # first, as every membership change does: an owner demoted or removed at the
    # same moment is seen as such here, and cannot delete the task after the fact.
    lock_for_members(task_id)
    member = require_permission(task_id, actor.id, "can_manage_members", "Only the task owner can delete it")
    task = member.task
    title = task.title
    activity.record(
        user_id=actor.id, action="deleted", entity_type="task", entity_id=task.id, task_id=task.id,
        old_values=task_values(task), description=f'Deleted task "{title}"',
    )
    # The files go with the task; their paths are read before the rows are gone.
    paths = file_paths(list(db.session.scalars(select(Attachment).where(Attachment.task_id == task_id))))
    db.session.delete(task)
    aftercommit.record(TaskDeleted(task_id, title, actor))
    db.session.commit()
    remove_files(paths)
