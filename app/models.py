"""Typed SQLAlchemy models. No request, no emit: only data and its invariants."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

# bigint ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")

TASK_STATUSES = ("todo", "in_progress", "done")
ROLES = ("owner", "editor", "commenter", "viewer")
_CAN_COMMENT = frozenset({"owner", "editor", "commenter"})
_CAN_EDIT = frozenset({"owner", "editor"})
_CAN_MANAGE = frozenset({"owner"})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased by the service, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def set_password(self, password: str, method: str = "scrypt") -> None:
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email


class Task(db.Model):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="todo")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    members: Mapped[list[TaskMember]] = relationship(
        back_populates="task", cascade="all, delete-orphan", passive_deletes=True
    )
    messages: Mapped[list[ChatMessage]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class TaskMember(db.Model):
    __tablename__ = "task_members"

    # The primary key (task_id, user_id) is the "one membership per task and user" rule.
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    task: Mapped[Task] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")

    @property
    def can_comment(self) -> bool:
        return self.role in _CAN_COMMENT

    @property
    def can_edit(self) -> bool:
        return self.role in _CAN_EDIT

    @property
    def can_manage_members(self) -> bool:
        return self.role in _CAN_MANAGE

    @property
    def permissions(self) -> dict[str, bool]:
        return {
            "canRead": True,
            "canComment": self.can_comment,
            "canEdit": self.can_edit,
            "canManageMembers": self.can_manage_members,
        }


class ChatMessage(db.Model):
    __tablename__ = "task_chat"
    __table_args__ = (Index("ix_task_chat_task_id_id", "task_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    reply_to: Mapped[int | None] = mapped_column(BigId, ForeignKey("task_chat.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")


class ActivityLog(db.Model):
    __tablename__ = "activity_logs"
    __table_args__ = (Index("ix_activity_logs_task_id_id", "task_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    # Not in the original schema: which task the entry belongs to, so a task's
    # activity is one indexed query. No foreign key: the log outlives the task.
    task_id: Mapped[int | None] = mapped_column(Integer)
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
