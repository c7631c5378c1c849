"""Uploaded files: stored on disk under a generated name, described in the database.

The type is judged from the file name's extension, never from the client's
Content-Type header, and must be one of `ATTACHMENT_TYPES`.
"""
from __future__ import annotations

import logging
import mimetypes
import os
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from flask import current_app
from sqlalchemy import select

from ..actor import Actor
from ..errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationError
from ..extensions import db
from ..models import Attachment, utcnow
from .access import membership, require_permission

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024


def _root() -> Path:
    return Path(current_app.config["ATTACHMENTS_DIR"])


def _path(attachment: Attachment) -> Path:
    return _root() / str(attachment.task_id) / attachment.storage_key


def clean_name(name: str | None) -> str:
    """The name to show: no directories, no control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return base[-255:] or "file"


def url_of(attachment: Attachment) -> str:
    """Where its members download the file (app/api/attachments.py)."""
    return f"/api/tasks/{attachment.task_id}/attachments/{attachment.id}"


def describe(attachment: Attachment) -> dict[str, Any]:
    """What a message carries of its file, stored with it, as `AttachmentOut` writes it."""
    return {
        "id": attachment.id, "name": attachment.name, "size": attachment.size,
        "mimeType": attachment.mime_type, "url": url_of(attachment),
    }


def upload(actor: Actor, task_id: int, stream: IO[bytes] | None, filename: str | None) -> Attachment:
    require_permission(task_id, actor.id, "can_comment", "No permission to upload files to this task")
    if stream is None:
        raise ValidationError("A file is required", details={"file": ["Send the file as multipart field 'file'."]})
    name = clean_name(filename)
    mime_type = (mimetypes.guess_type(name)[0] or "application/octet-stream").lower()
    if mime_type not in current_app.config["ATTACHMENT_TYPES"]:
        raise UnsupportedMediaType(f"Files of type {mime_type} are not allowed")
    attachment = Attachment(
        task_id=task_id, uploader_id=actor.id, name=name, mime_type=mime_type, size=0,
        storage_key=uuid.uuid4().hex,
    )
    path = _path(attachment)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        attachment.size = _copy(stream, path, current_app.config["ATTACHMENT_MAX_BYTES"])
        if attachment.size == 0:
            raise ValidationError("The file is empty", details={"file": ["Must not be empty."]})
        db.session.add(attachment)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        path.unlink(missing_ok=True)
        raise
    return attachment


def _copy(stream: IO[bytes], path: Path, limit: int) -> int:
    size = 0
    with open(path, "xb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"A file may be at most {limit} bytes")
            out.write(chunk)
    return size


@dataclass
class Download:
    path: Path
    name: str
    mime_type: str


def download(actor: Actor, task_id: int, attachment_id: int) -> Download:
    """Members only; anyone else learns nothing, not even that the task exists."""
    attachment = db.session.get(Attachment, attachment_id)
    if membership(task_id, actor.id) is None or attachment is None or attachment.task_id != task_id:
        raise NotFound("Attachment not found")
    path = _path(attachment)
    if not path.is_file():
        log.error("attachment %s is missing its file", attachment.id)
        raise NotFound("Attachment not found")
    return Download(path=path, name=attachment.name, mime_type=attachment.mime_type)


def file_paths(attachments: list[Attachment]) -> list[Path]:
    return [_path(a) for a in attachments]


def remove_files(paths: list[Path]) -> None:
    """Called after the rows are gone: a file left behind is only disk, never data."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove %s", path.name)


def purge_unsent(older_than: timedelta) -> int:
    """Uploads no message took, older than `older_than`: their rows, then their files."""
    stale = list(db.session.scalars(
        select(Attachment).where(Attachment.message_id.is_(None), Attachment.created_at < utcnow() - older_than)
    ))
    paths = file_paths(stale)
    for attachment in stale:
        db.session.delete(attachment)
    db.session.commit()
    remove_files(paths)
    return len(stale)
