"""Finding a user to add to a task, without turning the server into a user directory.

A user id is a small counter: anyone can try 1, 2, 3, and so on. So an id finds only
someone the actor already shares a task with (they see each other in a member list
anyway); an email finds its account, since knowing it is what makes the addition
deliberate. Everything else (an id nobody has, a stranger's id, an email nobody
registered) gets one answer, 404 `not_found` "User not found", so a refusal says
nothing about who exists.
"""
from __future__ import annotations

from sqlalchemy import Exists, exists, select
from sqlalchemy.orm import aliased

from ..actor import Actor
from ..errors import NotFound
from ..extensions import db
from ..models import TaskMember, User
from .accounts import normalize_email

USER_NOT_FOUND = "User not found"


def shares_a_task(user_id: int, other_id: int) -> Exists:
    """SQL condition: the two users are members of one task, now. (A user shares
    a task with themself as soon as they are a member of any.)"""
    mine, theirs = aliased(TaskMember), aliased(TaskMember)
    return exists(
        select(theirs.task_id).join(mine, mine.task_id == theirs.task_id)
        .where(mine.user_id == user_id, theirs.user_id == other_id)
    )


def find_invitee(actor: Actor, *, email: str | None = None, user_id: int | None = None) -> User:
    """The user the actor names by `email` (compared as login compares it) or by the
    `user_id` of someone they share a task with; exactly one is given."""
    if email is not None:
        query = select(User).where(User.email == normalize_email(email))
    elif user_id is not None:
        # An unknown id and a stranger's: one query, one answer.
        query = select(User).where(User.id == user_id, shares_a_task(actor.id, user_id))
    else:  # neither: no one is named (an id of None matches no row either)
        raise NotFound(USER_NOT_FOUND)
    user = db.session.scalar(query)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    return user
