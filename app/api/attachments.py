"""File uploads for the chat, and their downloads."""
from __future__ import annotations

from flask import current_app, request, send_file
from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint

from ..schemas import AttachmentOut
from ..services import attachments
from . import acting

blp = Blueprint("attachments", __name__, url_prefix="/api/tasks/<id:task_id>/attachments", description="Attachments")

# Room for the multipart framing around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024


@blp.post("")
@jwt_required()
@blp.response(201, AttachmentOut)
def upload(task_id):
    """Multipart, the file in field `file`; members who may comment. Send the
    answer's `id` in `send_message`'s `attachments`."""
    request.max_content_length = current_app.config["ATTACHMENT_MAX_BYTES"] + _MULTIPART_OVERHEAD
    file = request.files.get("file")
    return attachments.upload(acting(), task_id, file.stream if file else None, file.filename if file else None)


@blp.get("/<id:attachment_id>")
@jwt_required()
def download(task_id, attachment_id):
    """Authorized by the requester's own token; a non-member gets 404."""
    found = attachments.download(acting(), task_id, attachment_id)
    response = send_file(found.path, mimetype=found.mime_type, as_attachment=True, download_name=found.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
