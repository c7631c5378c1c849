"""Reading the chat: history pages, the catch-up after a reconnect, and a
message's earlier versions. Ids are keyset cursors, so pages are stable while
others send."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select

from ..actor import Actor
from ..errors import MessageDeleted
from ..extensions import db
from ..models import ChatMessage, MessageEdit
from .access import require_member
from .chat import locate

CATCH_UP_LIMIT = 200


@dataclass
class MessagePage:
    items: list[ChatMessage]
    has_more: bool
    has_more_before: bool | None = None
    has_more_after: bool | None = None


def _in_task(task_id: int) -> Select[ChatMessage]:
    return select(ChatMessage).where(ChatMessage.task_id == task_id)


def _take(query: Select[ChatMessage], limit: int) -> tuple[list[ChatMessage], bool]:
    rows = list(db.session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def history(
    actor: Actor, task_id: int, *, before: int | None = None, after: int | None = None,
    around: int | None = None, limit: int = 50,
) -> MessagePage:
    """No cursor or `before`: newest first, paging back. `after`: oldest first,
    paging forward. `around`: the message and its neighbours, oldest first."""
    require_member(task_id, actor.id)
    if around is not None:
        return _around(task_id, around, limit)
    if after is not None:
        items, more = _take(_in_task(task_id).where(ChatMessage.id > after).order_by(ChatMessage.id), limit)
        return MessagePage(items, more)
    query = _in_task(task_id).order_by(ChatMessage.id.desc())
    if before is not None:
        query = query.where(ChatMessage.id < before)
    items, more = _take(query, limit)
    return MessagePage(items, more)


def _around(task_id: int, anchor: int, limit: int) -> MessagePage:
    """The anchor in the middle; near either end of the chat the other side fills the page."""
    older = list(db.session.scalars(
        _in_task(task_id).where(ChatMessage.id < anchor).order_by(ChatMessage.id.desc()).limit(limit + 1)
    ))
    newer = list(db.session.scalars(
        _in_task(task_id).where(ChatMessage.id >= anchor).order_by(ChatMessage.id).limit(limit + 1)
    ))
    take_older = min(len(older), max((limit - 1) // 2, limit - len(newer)))
    take_newer = min(len(newer), limit - take_older)
    more_before, more_after = len(older) > take_older, len(newer) > take_newer
    items = older[:take_older][::-1] + newer[:take_newer]
    return MessagePage(items, more_before or more_after, more_before, more_after)


@dataclass
class CatchUp:
    """What a client missed since `lastMessageId`: newer messages, and the
    current state of older ones that changed (edited, deleted, reacted to)."""

    missed: list[ChatMessage] = field(default_factory=list)
    has_more: bool = False
    updated: list[ChatMessage] = field(default_factory=list)
    updated_has_more: bool = False


def catch_up(task_id: int, last_message_id: int | None) -> CatchUp:
    """The anchor is the task's newest message at or below `lastMessageId`: every
    change made after it was stored has a higher version than its seq."""
    if last_message_id is None:
        return CatchUp()
    missed, has_more = _take(
        _in_task(task_id).where(ChatMessage.id > last_message_id).order_by(ChatMessage.id), CATCH_UP_LIMIT
    )
    anchor_seq = db.session.scalar(
        select(ChatMessage.seq).where(ChatMessage.task_id == task_id, ChatMessage.id <= last_message_id)
        .order_by(ChatMessage.id.desc()).limit(1)
    ) or 0
    updated, updated_more = _take(
        _in_task(task_id)
        .where(ChatMessage.id <= last_message_id, ChatMessage.version > anchor_seq)
        .order_by(ChatMessage.id),
        CATCH_UP_LIMIT,
    )
    return CatchUp(missed, has_more, updated, updated_more)


def versions(actor: Actor, message_id: int, task_id: int | None = None) -> dict[str, Any]:
    """Every version of a message, oldest first; the last is the current text."""
    message, _member = locate(actor, message_id, task_id)
    if message.deleted:
        raise MessageDeleted()
    earlier = db.session.scalars(
        select(MessageEdit).where(MessageEdit.message_id == message.id).order_by(MessageEdit.id)
    )
    items: list[dict[str, Any]] = [
        {"message": e.message, "written_at": e.written_at, "replaced_at": e.replaced_at} for e in earlier
    ]
    items.append({"message": message.message, "written_at": message.edited_at or message.created_at,
                  "replaced_at": None})
    return {"message_id": message.id, "versions": items}
