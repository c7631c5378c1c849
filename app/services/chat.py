"""The task chat's writes: send, edit, delete.

Each runs inside `chat_write` (see ordering.py): the task's write lock, checks
under it, then the change, its activity entry and its event in one transaction;
the event is announced once that commits (app/aftercommit.py), still under the lock,
so the rooms hear a task's changes in the order they were stored.
A plain text message on PostgreSQL is all of that in one
statement (chat_fast.py); anything else, or anything unusual, takes the path here.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .. import aftercommit
from ..actor import Actor
from ..errors import NO_SEND_PERMISSION, ClientIdReused, Forbidden, MessageDeleted, NotFound, ValidationError
from ..extensions import db
from ..models import Attachment, ChatMessage, MessageEdit, Reaction, TaskMember, utcnow
from . import activity, chat_fast, events, notifications, replies
from .access import require_member
from .attachments import describe, file_paths, remove_files
from .chat_fast import StoredMessage
from .ordering import chat_write, lock_for_chat, message_added

MESSAGE_NOT_FOUND = "Message not found"


@dataclass(frozen=True)
class Sent:
    """A send's outcome: the message, and whether it was stored by an earlier
    send with the same clientId (a retry), which stores and announces nothing."""

    message: ChatMessage | StoredMessage
    duplicate: bool = False


def send_message(
    actor: Actor, task_id: int, *, message: str, attachments: list[int] | None = None,
    reply_to: int | None = None, client_id: str | None = None, mentions: list[int] | None = None,
) -> Sent:
    """Store a message once. A retry with the same clientId stores and announces
    nothing and returns the message stored first."""
    with chat_write(task_id):
        if not attachments and not mentions and reply_to is None:
            sent = chat_fast.send(actor, task_id, message, client_id)
            if sent is not None:
                return Sent(sent)
        locked = lock_for_chat(task_id, actor.id)
        if not locked.member.can_comment:
            raise Forbidden(NO_SEND_PERMISSION)
        if client_id is not None and (first := _sent_before(actor, client_id, task_id)) is not None:
            db.session.rollback()  # gives the sequence number back
            return Sent(first, duplicate=True)
        if reply_to is not None:
            require_message_in_task(task_id, reply_to, "replyTo", "replyTo must be a message of the same task")
        mentioned = _check_mentions(task_id, mentions or [])
        files = attachments_of(actor, task_id, attachments or [])
        chat = ChatMessage(
            task_id=task_id, user_id=actor.id, message=message, reply_to=reply_to, client_id=client_id,
            mentions=mentioned, attachments=[describe(f) for f in files],
            previous_id=locked.last_message_id, seq=locked.seq, version=locked.seq,
        )
        try:
            db.session.add(chat)
            db.session.flush()
            message_added(task_id, chat.id)
            for file in files:
                file.message_id = chat.id
            activity.record(
                user_id=actor.id, action="created", entity_type="task_chat", entity_id=chat.id, task_id=task_id,
                new_values=activity.sent_values(message, len(files), reply_to),
                description=activity.sent_description(task_id),
            )
            aftercommit.record(events.MessageCreated(chat, actor))
            notifications.record_mentions(actor, chat)
            db.session.commit()
        except IntegrityError:
            # The same clientId was stored meanwhile by another of the user's writers
            # (PostgreSQL reports it at the insert, SQLite at the commit).
            db.session.rollback()
            first = _sent_before(actor, client_id, task_id) if client_id is not None else None
            if first is None:
                raise
            return Sent(first, duplicate=True)
    return Sent(chat)


def _sent_before(actor: Actor, client_id: str, task_id: int) -> ChatMessage | None:
    first = db.session.scalar(
        select(ChatMessage).where(ChatMessage.user_id == actor.id, ChatMessage.client_id == client_id)
    )
    if first is None:
        return None
    if first.task_id != task_id:
        raise ClientIdReused(details={"clientId": ["Already used for a message in another task."]})
    return first


def require_message_in_task(task_id: int, message_id: int, field: str, message: str) -> None:
    """A message id given as input (a reply's parent, a read mark) must be of the task."""
    if db.session.scalar(select(ChatMessage.task_id).where(ChatMessage.id == message_id)) != task_id:
        raise ValidationError(message, details={field: ["No such message in this task."]})


def _check_mentions(task_id: int, user_ids: list[int]) -> list[int]:
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    members = set(db.session.scalars(
        select(TaskMember.user_id).where(TaskMember.task_id == task_id, TaskMember.user_id.in_(wanted))
    ))
    strangers = [u for u in wanted if u not in members]
    if strangers:
        raise ValidationError(
            "Only members of the task can be mentioned",
            details={"mentions": [f"User {u} is not a member of this task." for u in strangers]},
        )
    return wanted


def attachments_of(actor: Actor, task_id: int, ids: list[int]) -> list[Attachment]:
    """The sender's own uploads to this task that no message has taken yet."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {
        a.id: a for a in db.session.scalars(
            select(Attachment).where(
                Attachment.id.in_(wanted), Attachment.task_id == task_id,
                Attachment.uploader_id == actor.id, Attachment.message_id.is_(None),
            )
        )
    }
    unusable = [i for i in wanted if i not in found]
    if unusable:
        raise ValidationError(
            "Attachments must be your own unsent uploads to this task",
            details={"attachments": [f"Attachment {i} cannot be used." for i in unusable]},
        )
    return [found[i] for i in wanted]


def locate(actor: Actor, message_id: int, task_id: int | None = None) -> tuple[ChatMessage, TaskMember]:
    """The message and the actor's membership of its task. With a task id (REST
    paths), a non-member gets that task's 403 and a message of another task 404;
    without (socket events), a message the actor cannot see is simply not found."""
    if task_id is not None:
        member = require_member(task_id, actor.id)
    message = db.session.get(ChatMessage, message_id)
    if message is None or (task_id is not None and message.task_id != task_id):
        raise NotFound(MESSAGE_NOT_FOUND)
    if task_id is None:
        found = db.session.get(TaskMember, (message.task_id, actor.id))
        if found is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        member = found
    return message, member


def reload(message_id: int) -> ChatMessage:
    """The message as committed now, read under the task's write lock."""
    message = db.session.get(ChatMessage, message_id, populate_existing=True)
    assert message is not None, "a message of a locked task stays (its deletion leaves a tombstone)"
    return message


@contextmanager
def changing(message: ChatMessage, actor: Actor) -> Iterator[tuple[ChatMessage, int, TaskMember]]:
    """A change to a message that is still there (an edit, a reaction): inside the
    task's write lock, the message as committed now, the change's number and the
    actor's membership as committed now. A message deleted meanwhile is
    `message_deleted`."""
    with chat_write(message.task_id):
        locked = lock_for_chat(message.task_id, actor.id)
        current = reload(message.id)
        if current.deleted:
            raise MessageDeleted()
        yield current, locked.seq, locked.member


def edit_message(actor: Actor, message_id: int, text: str, task_id: int | None = None) -> ChatMessage:
    """Only the author, while they may still send; the replaced text is kept."""
    message, member = locate(actor, message_id, task_id)
    if message.user_id != actor.id:
        raise Forbidden("Only the author can edit this message")
    if not member.can_comment:
        raise Forbidden(NO_SEND_PERMISSION)
    with changing(message, actor) as (message, seq, member):
        if not member.can_comment:  # demoted meanwhile
            raise Forbidden(NO_SEND_PERMISSION)
        if message.message == text:  # a retried edit changes nothing
            db.session.rollback()
            return message
        db.session.add(MessageEdit(
            message_id=message.id, message=message.message, written_at=message.edited_at or message.created_at,
        ))
        quoted_before = message.excerpt
        message.message, message.edited_at, message.version = text, utcnow(), seq
        restamped = replies.restamp(message, seq, quoted_before)
        activity.record(
            user_id=actor.id, action="updated", entity_type="task_chat", entity_id=message.id,
            task_id=message.task_id, new_values={"message": text[:100]},
            description=f"Chat message edited in task {message.task_id}",
        )
        aftercommit.record(events.MessageUpdated(message))
        replies.announce(restamped)
        db.session.commit()
    return message


def _may_delete(actor: Actor, message: ChatMessage, member: TaskMember) -> None:
    if message.user_id != actor.id and member.role != "owner":
        raise Forbidden("Only the author or the task owner can delete this message")


def delete_message(actor: Actor, message_id: int, task_id: int | None = None) -> ChatMessage:
    """The author or a task owner. Soft: the row stays as a tombstone; its text,
    files, reactions and earlier versions go. Deleting twice is not an error."""
    message, member = locate(actor, message_id, task_id)
    _may_delete(actor, message, member)
    with chat_write(message.task_id):
        locked = lock_for_chat(message.task_id, actor.id)
        _may_delete(actor, message, locked.member)  # the role as committed now
        seq = locked.seq
        message = reload(message_id)
        if message.deleted:
            db.session.rollback()
            return message
        files = list(db.session.scalars(select(Attachment).where(Attachment.message_id == message.id)))
        paths = file_paths(files)
        for file in files:
            db.session.delete(file)
        db.session.execute(delete(MessageEdit).where(MessageEdit.message_id == message.id))
        db.session.execute(delete(Reaction).where(Reaction.message_id == message.id))
        db.session.expire(message, ["reactions"])  # the tombstone's event reads them anew: none
        message.message, message.attachments, message.mentions = "", [], []
        message.deleted_at, message.deleted_by, message.version = utcnow(), actor.id, seq
        restamped = replies.restamp(message, seq, None)
        activity.forget_message_text(message.id)
        activity.record(
            user_id=actor.id, action="deleted", entity_type="task_chat", entity_id=message.id,
            task_id=message.task_id, description=f"Chat message deleted in task {message.task_id}",
        )
        aftercommit.record(events.MessageDeleted(message))
        replies.announce(restamped)
        db.session.commit()
        remove_files(paths)
    return message
