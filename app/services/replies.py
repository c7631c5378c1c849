"""A reply quotes its parent, and the quote is part of the reply.

A reply's `replyPreview` is its parent's author, first characters (`excerpt`)
and whether it was deleted. Clients keep, of two copies of a message, the one
with the higher `version` (docs/realtime.md). So when an edit or a deletion of
the parent changes what its replies quote, each reply has changed too, and must
say so like any other change:

- in the parent's transaction, each reply takes the change's number as its
  `version`, which also puts it in the catch-up's `updated` (history.catch_up
  finds changes by version);
- once that commits, the room hears each reply's new state as `message_updated`.

Otherwise a copy of a reply held by a client would keep the parent's old words,
or a deleted message's words, at a version that nothing ever outbids.
"""
from __future__ import annotations

from sqlalchemy import select, update

from .. import aftercommit
from ..extensions import db
from ..models import ChatMessage
from .events import MessageUpdated


def restamp(parent: ChatMessage, seq: int, quoted_before: str | None) -> list[int]:
    """When the parent's excerpt is no longer `quoted_before` (an edit that changed
    its first characters, or a deletion), give each of its replies, tombstones
    included (they show the quote too), version `seq`. Their ids, oldest first."""
    if not parent.deleted and parent.excerpt == quoted_before:
        return []
    changed = db.session.scalars(
        update(ChatMessage).where(ChatMessage.reply_to == parent.id).values(version=seq)
        .returning(ChatMessage.id)
    )
    return sorted(changed)


def announce(reply_ids: list[int]) -> None:
    """In the parent's transaction, after its own event: once it commits, the room
    gets each reply's new state, oldest first."""
    if not reply_ids:
        return
    replies = db.session.scalars(select(ChatMessage).where(ChatMessage.id.in_(reply_ids)).order_by(ChatMessage.id))
    for reply in replies:
        aftercommit.record(MessageUpdated(reply))
