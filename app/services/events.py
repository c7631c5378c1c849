"""What the services tell the world once it is stored.

Each service records one of these with `app.aftercommit.record` in the transaction
that makes it true; `app/realtime/notify.py` subscribes and turns each into the
Socket.IO events the clients hear. They carry rows (read by the subscriber just
before the commit, see aftercommit.py) or plain values, never a payload: the wire
format is the doors' business.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..actor import Actor
from ..models import ChatMessage, Notification, Task, TaskMember


@dataclass(frozen=True)
class MessageCreated:
    """A chat message was stored; its author has stopped typing."""

    message: Any  # a ChatMessage, or a chat_fast.StoredMessage (the same attributes)
    author: Actor


@dataclass(frozen=True)
class MessageUpdated:
    """An edit, or a reply whose quoted preview changed with its parent."""

    message: ChatMessage


@dataclass(frozen=True)
class MessageDeleted:
    message: ChatMessage


@dataclass(frozen=True)
class ReactionUpdated:
    message: ChatMessage
    emoji: str
    actor: Actor
    action: str  # "added" or "removed"


@dataclass(frozen=True)
class ReadUpdated:
    """The user's read mark in a task moved."""

    user_id: int
    task_id: int
    last_read_id: int
    unread_count: int


@dataclass(frozen=True)
class NotificationCreated:
    notification: Notification


@dataclass(frozen=True)
class TaskUpdated:
    task: Task
    changed: list[str]
    actor: Actor


@dataclass(frozen=True)
class TaskDeleted:
    task_id: int
    title: str
    actor: Actor


@dataclass(frozen=True)
class MemberChanged:
    """A member was added, or their role changed."""

    action: str  # "added" or "updated"
    member: TaskMember


@dataclass(frozen=True)
class MemberRemoved:
    """Recorded before the row is deleted: `member` is read as it was."""

    member: TaskMember
    removed: Actor


@dataclass(frozen=True)
class TokensRevoked:
    jtis: list[str]
