"""Task membership and roles.

A task keeps at least one owner. Every change takes the task's write lock first
(`lock_for_members`), so the owner count and both memberships read after it stay
what they are until the commit: of two owners demoting or removing each other at
the same moment, one commits and the other then finds the last owner.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import aftercommit
from ..actor import Actor
from ..errors import NO_TASK_ACCESS, Conflict, Forbidden, NotFound
from ..extensions import db
from ..models import ActivityLog, ChatMessage, TaskMember
from . import accounts, activity, directory, notifications
from .access import membership, require_member, require_permission
from .events import MemberChanged, MemberRemoved
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


def _owner_count(task_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(TaskMember).where(TaskMember.task_id == task_id, TaskMember.role == "owner")
    ).scalar_one()  # a count is one row


def _was_removed(task_id: int, user_id: int) -> bool:
    """Whether the user was removed from the task (or left it): `remove_member`
    logs every removal in the task's activity log, which outlives the membership."""
    return db.session.scalar(
        select(ActivityLog.id).where(
            ActivityLog.task_id == task_id, ActivityLog.action == "member_removed",
            ActivityLog.entity_type == "task_member", ActivityLog.entity_id == user_id,
        ).limit(1)
    ) is not None


def _changeable(actor: Actor, task_id: int, user_id: int, *, ends_ownership: bool,
                may_change_self: bool = False) -> TaskMember:
    """The member the actor changes, once every rule allows it. Called under the lock.

    The last owner comes first: demoting or removing them is a conflict whoever
    asks, provided the asker knows the task (is a member, or was removed from it).
    Two owners who demote or remove each other at the same moment are serialized
    by the lock, and the second then is a viewer, or no longer a member, facing
    the last owner: it is answered 409 `conflict`, whatever the timing. (With the
    permission checked first it would get 403, which does not say why a request
    made as an owner failed.)
    A member learns nothing from it that the member list does not show; someone
    who was never a member gets the 403 of a task that does not exist.
    """
    acting = membership(task_id, actor.id)
    target = membership(task_id, user_id)
    if (
        ends_ownership and target is not None and target.role == "owner" and _owner_count(task_id) <= 1
        and (acting is not None or _was_removed(task_id, actor.id))
    ):
        raise Conflict(_LAST_OWNER)
    if acting is None:
        raise Forbidden(NO_TASK_ACCESS)
    if not acting.can_manage_members and not (may_change_self and user_id == actor.id):
        raise Forbidden(_MANAGE)
    if target is None:
        raise NotFound("Member not found")
    return target


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
    aftercommit.record(MemberChanged("added", member))
    notifications.record_added(actor, member)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This user is already a member of the task") from None
    return member


def update_member(actor: Actor, task_id: int, user_id: int, *, role: str) -> TaskMember:
    lock_for_members(task_id)
    member = _changeable(actor, task_id, user_id, ends_ownership=role != "owner")
    if member.role == role:
        return member
    old_role, member.role = member.role, role
    activity.record(
        user_id=actor.id, action="member_updated", entity_type="task_member", entity_id=user_id, task_id=task_id,
        old_values={"role": old_role}, new_values={"role": role},
        description=f"Changed {member.user.display_name} from {old_role} to {role}",
    )
    aftercommit.record(MemberChanged("updated", member))
    db.session.commit()
    return member


def remove_member(actor: Actor, task_id: int, user_id: int) -> None:
    """The owner removes anyone; any member may remove themself (leave the task)."""
    lock_for_members(task_id)
    member = _changeable(actor, task_id, user_id, ends_ownership=True, may_change_self=True)
    aftercommit.record(MemberRemoved(member, accounts.actor_of(member.user)))
    activity.record(
        user_id=actor.id, action="member_removed", entity_type="task_member", entity_id=user_id, task_id=task_id,
        old_values={"userId": user_id, "role": member.role},
        description=f"Removed {member.user.display_name}",
    )
    db.session.delete(member)
    db.session.commit()
