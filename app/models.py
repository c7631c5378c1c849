"""Typed SQLAlchemy models: data and its invariants only. How it is written on the
wire is the output schemas' business (app/schemas/outputs.py)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

if TYPE_CHECKING:
    # mypy cannot take `db.Model` (typed as a variable) as a base class; for the type
    # checker the models derive from the declarative base that `db` is built on.
    from .extensions import Base as Model
else:
    Model = db.Model

# bigint ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")

# The largest id an Integer primary key holds (PostgreSQL refuses a larger one outright).
MAX_DB_INT = 2**31 - 1
TASK_STATUSES = ("todo", "in_progress", "done")
ROLES = ("owner", "editor", "commenter", "viewer")
COMMENTING_ROLES = frozenset({"owner", "editor", "commenter"})
# A reply quotes this many characters of its parent (`replyPreview.excerpt`).
REPLY_EXCERPT_LENGTH = 100
EDITING_ROLES = frozenset({"owner", "editor"})
MANAGING_ROLES = frozenset({"owner"})


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased by the service, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def display_name(self) -> str:
        return display_name(self.id, self.first_name, self.last_name)


def display_name(user_id: int, first_name: str, last_name: str) -> str:
    """The name others see (presence, typing, reactions, notifications, replies, the
    activity log). Never the email: those reach people who may share no task with
    the user, and an account made by `flask create-user` may have no name at all."""
    name = f"{first_name} {last_name}".strip()
    return name or f"User {user_id}"


class Task(Model):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="todo")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # The task's chat change counter. Every chat write bumps it first, which
    # takes the row's write lock: chat writes of one task commit one at a time,
    # so message ids increase in commit order and each change gets its number.
    chat_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The newest message's id, read and moved under that lock: a new message's
    # previous_id. (No foreign key: it is bookkeeping of the writers, not a relation.)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Moves with every change of the task's memberships, which take the same row
    # lock: a writer that read the membership before the lock can tell whether
    # it changed while it waited.
    members_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    members: Mapped[list[TaskMember]] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True
    )
    messages: Mapped[list[ChatMessage]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class TaskMember(Model):
    __tablename__ = "task_members"

    # The primary key (task_id, user_id) is the "one membership per task and user" rule.
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The newest message id this member has read; unread counts start above it.
    last_read_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    task: Mapped[Task] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")

    @property
    def can_comment(self) -> bool:
        return self.role in COMMENTING_ROLES

    @property
    def can_edit(self) -> bool:
        return self.role in EDITING_ROLES

    @property
    def can_manage_members(self) -> bool:
        return self.role in MANAGING_ROLES


class ChatMessage(Model):
    __tablename__ = "task_chat"
    __table_args__ = (
        Index("ix_task_chat_task_id_id", "task_id", "id"),
        Index("ix_task_chat_task_id_version", "task_id", "version"),
        # The replies to a message, found when its edit or deletion changes what they
        # quote (services/replies.py). Partial: a plain message, the common send,
        # writes no entry.
        Index("ix_task_chat_reply_to", "reply_to", postgresql_where=text("reply_to IS NOT NULL"),
              sqlite_where=text("reply_to IS NOT NULL")),
        # A retried send with the same clientId finds the message it stored first.
        UniqueConstraint("user_id", "client_id", name="uq_task_chat_user_id_client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    # The attachments as sent: full objects, copied from their upload rows.
    attachments: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    reply_to: Mapped[int | None] = mapped_column(BigId, ForeignKey("task_chat.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    client_id: Mapped[str | None] = mapped_column(String(64))
    mentions: Mapped[list[int]] = mapped_column(JsonDoc, default=list, server_default="[]")
    # The id of the task's message before this one, so a client can tell it missed one.
    previous_id: Mapped[int | None] = mapped_column(BigInteger)
    # Task.chat_seq when the message was stored (seq) and when it last changed (version).
    seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User | None] = relationship(lazy="joined")
    # `id` is the column above (SQLAlchemy's way to name the remote side of a self-reference).
    parent: Mapped[ChatMessage | None] = relationship(remote_side=[id], lazy="joined", join_depth=1)  # noqa: A003
    reactions: Mapped[list[Reaction]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True,
        order_by="[Reaction.created_at, Reaction.user_id, Reaction.emoji]",
    )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def excerpt(self) -> str | None:
        """What a reply quotes of this message: its first characters, nothing once deleted."""
        return None if self.deleted else self.message[:REPLY_EXCERPT_LENGTH]


class MessageEdit(Model):
    """A version of a message that an edit replaced."""

    __tablename__ = "message_edits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("task_chat.id", ondelete="CASCADE"), index=True)
    message: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reaction(Model):
    __tablename__ = "message_reactions"

    # One reaction per message, user and emoji.
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("task_chat.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Attachment(Model):
    """An uploaded file. It belongs to the task and its uploader until a message takes it."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("task_chat.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(100))
    # The file's name in the storage directory; never derived from the upload's name.
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Notification(Model):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(30))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("task_chat.id", ondelete="CASCADE"))
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    from_user: Mapped[User | None] = relationship(foreign_keys=[from_user_id], lazy="joined")


class ActivityLog(Model):
    __tablename__ = "activity_logs"
    __table_args__ = (Index("ix_activity_logs_task_id_id", "task_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    # Which task the entry belongs to, so a task's activity is one indexed query.
    # No foreign key: the log outlives the task.
    task_id: Mapped[int | None] = mapped_column(Integer)
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RevokedToken(Model):
    """A token given up by logout. Kept until it would have expired anyway, so a
    revocation survives restarts and is seen by every process; then purged."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
