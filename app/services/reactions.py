"""Reactions: one per message, user and emoji."""
from __future__ import annotations

from sqlalchemy import delete

from .. import aftercommit
from ..actor import Actor
from ..errors import NO_SEND_PERMISSION, Forbidden, ValidationError
from ..extensions import db
from ..models import ChatMessage, Reaction
from .chat import changing, locate
from .events import ReactionUpdated


# A reaction is removed over REST by naming its emoji in the URL path. A path segment
# "." or ".." (or "%2E", "%2e%2E", ...) is a dot segment, which clients resolve away
# before sending (RFC 3986 5.2.4; browsers, requests): such an emoji could be added
# but never removed over REST, so it is not accepted, on either door.
_NOT_IN_A_URL = frozenset({".", ".."})


def add_reaction(actor: Actor, message_id: int, emoji: str, task_id: int | None = None) -> ChatMessage:
    if emoji in _NOT_IN_A_URL:
        raise ValidationError(details={"emoji": ['Must not be "." or "..": a URL cannot name it.']})
    return _change(actor, message_id, emoji, task_id, add=True)


def remove_reaction(actor: Actor, message_id: int, emoji: str, task_id: int | None = None) -> ChatMessage:
    return _change(actor, message_id, emoji, task_id, add=False)


def _change(actor: Actor, message_id: int, emoji: str, task_id: int | None, *, add: bool) -> ChatMessage:
    """Reacting is commenting: it needs `can_comment`. Adding a reaction that is
    there, or removing one that is not, changes and announces nothing."""
    message, member = locate(actor, message_id, task_id)
    if not member.can_comment:
        raise Forbidden(NO_SEND_PERMISSION)
    with changing(message, actor) as (message, seq, member):
        if not member.can_comment:  # demoted meanwhile
            raise Forbidden(NO_SEND_PERMISSION)
        key = (message.id, actor.id, emoji)
        exists = db.session.get(Reaction, key) is not None
        if exists == add:
            db.session.rollback()
            return message
        if add:
            db.session.add(Reaction(message_id=message.id, user_id=actor.id, emoji=emoji))
        else:
            db.session.execute(delete(Reaction).where(
                Reaction.message_id == message.id, Reaction.user_id == actor.id, Reaction.emoji == emoji
            ))
        message.version = seq
        # The rows changed underneath the loaded collection: its event reads them anew.
        db.session.expire(message, ["reactions"])
        aftercommit.record(ReactionUpdated(message, emoji, actor, "added" if add else "removed"))
        db.session.commit()
    return message
