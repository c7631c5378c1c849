"""Task members and their roles."""
from __future__ import annotations

from flask_smorest import Blueprint

from ..schemas.inputs import MemberAddIn, MemberUpdateIn
from ..schemas.outputs import MemberOut, page_of
from ..services import members
from ..services.paging import Page
from . import acting
from .openapi import token_required

blp = Blueprint("members", __name__, url_prefix="/api/tasks/<id:task_id>/members", description="Task members")


@blp.get("")
@token_required()
@blp.response(200, page_of(MemberOut))
def list_members(task_id):
    return Page(items=members.list_members(acting(), task_id), has_more=False)


@blp.post("")
@token_required()
@blp.arguments(MemberAddIn)
@blp.response(201, MemberOut)
def add_member(data, task_id):
    """Add a member (owners only)

    Name the user by `email`, or by `userId` if they already share a task with you;
    anyone else, like nobody, is 404 `not_found` "User not found". The room gets
    `member_changed` {action: 'added'}; the added user gets `task_notification`
    {type: 'added_to_task'} in their own room, and the notification is stored."""
    return members.add_member(acting(), task_id, **data)


@blp.patch("/<id:user_id>")
@token_required()
@blp.arguments(MemberUpdateIn)
@blp.response(200, MemberOut)
def update_member(data, task_id, user_id):
    """Owners only; the room gets `member_changed` {action: 'updated'}."""
    return members.update_member(acting(), task_id, user_id, **data)


@blp.delete("/<id:user_id>")
@token_required()
@blp.response(204)
def remove_member(task_id, user_id):
    """Owners remove anyone, members remove themselves; the room gets `member_changed` {action: 'removed'}."""
    members.remove_member(acting(), task_id, user_id)
