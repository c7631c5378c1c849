"""Task membership and roles."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..auth import Actor
from ..errors import Conflict, Forbidden, NotFound
from ..extensions import db
from ..models import ChatMessage, TaskMember
from ..realtime import notify
from . import activity, directory, notifications
from .access import membership, require_member, require_permission
from .ordering import lock_for_members

_MANAGE = "Only the task owner can manage members"
_LAST_OWNER = "A task must keep at least one owner"


def list_members(actor: Actor, task_id: int) -> list[TaskMember]:
    require_member(task_id, actor.id)
    return list(
        db.session.scalars(
            select(TaskMember).where(TaskMember.task_id == task_id).order_by(TaskMember.created_at, TaskMember.user_id)
        )
    )


def _target(task_id: int, user_id: int) -> TaskMember:
    member = membership(task_id, user_id)
    if member is None:
        raise NotFound("Member not found")
    return member


def _owner_count(task_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(TaskMember).where(TaskMember.task_id == task_id, TaskMember.role == "owner")
    )


def add_member(
    actor: Actor, task_id: int, *, role: str, email: str | None = None, user_id: int | None = None
) -> TaskMember:
    """The owner adds someone they name by email, or by the id of someone they share a
    task with (see directory.py); the added user is told at once, in their notifications."""
    lock_for_members(task_id)
    require_permission(task_id, actor.id, "can_manage_members", _MANAGE)
    user = directory.find_invitee(actor, email=email, user_id=user_id)
    # A new member starts with the chat read: its history is there to scroll, not a backlog.
    last_id = db.session.scalar(select(func.max(ChatMessage.id)).where(ChatMessage.task_id == task_id)) or 0
    member = TaskMember(task_id=task_id, user_id=user.id, role=role, last_read_id=last_id)
    db.session.add(member)
    activity.record(
        user_id=actor.id, action="member_added", entity_type="task_member", entity_id=user.id, task_id=task_id,
        new_values={"userId": user.id, "role": role}, description=f"Added {user.display_name} as {role}",
    )
    told = notifications.record_added(actor, member)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This user is already a member of the task") from None
    notify.member_changed(task_id, "added", member)
    notify.notification_created(told)
    return member


def update_member(actor: Actor, task_id: int, user_id: int, *, role: str) -> TaskMember:
    lock_for_members(task_id)
    require_permission(task_id, actor.id, "can_manage_members", _MANAGE)
    member = _target(task_id, user_id)
    if member.role == role:
        return member
    if member.role == "owner" and _owner_count(task_id) <= 1:
        raise Conflict(_LAST_OWNER)
    old_role, member.role = member.role, role
    activity.record(
        user_id=actor.id, action="member_updated", entity_type="task_member", entity_id=user_id, task_id=task_id,
        old_values={"role": old_role}, new_values={"role": role},
        description=f"Changed {member.user.display_name} from {old_role} to {role}",
    )
    db.session.commit()
    notify.member_changed(task_id, "updated", member)
    return member


def remove_member(actor: Actor, task_id: int, user_id: int) -> None:
    """The owner removes anyone; any member may remove themself (leave the task)."""
    lock_for_members(task_id)
    acting = require_member(task_id, actor.id)
    if user_id != actor.id and not acting.can_manage_members:
        raise Forbidden(_MANAGE)
    member = _target(task_id, user_id)
    if member.role == "owner" and _owner_count(task_id) <= 1:
        raise Conflict(_LAST_OWNER)
    # Read before the delete: the row and its user are gone after the commit.
    removed, gone = Actor.of(member.user), notify.member_payload(member)
    activity.record(
        user_id=actor.id, action="member_removed", entity_type="task_member", entity_id=user_id, task_id=task_id,
        old_values={"userId": user_id, "role": member.role},
        description=f"Removed {member.user.display_name}",
    )
    db.session.delete(member)
    db.session.commit()
    notify.member_removed(task_id, removed, gone)
