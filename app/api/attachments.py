"""File uploads for the chat, and their downloads."""
from __future__ import annotations

from flask import current_app, request, send_file
from flask_smorest import Blueprint

from ..schemas.outputs import AttachmentOut
from ..services import attachments
from . import acting
from .openapi import token_required

blp = Blueprint("attachments", __name__, url_prefix="/api/tasks/<id:task_id>/attachments", description="Attachments")

# Room for the multipart framing around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024


# The file is read from request.files, not through a schema: documented by hand.
_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {
            "type": "string", "format": "binary", "minLength": 1,
            "description": "Not empty, at most ATTACHMENT_MAX_BYTES (10 MiB by default); its type is read "
                           "from the file name's extension and must be one of ATTACHMENT_TYPES, else 415.",
        }},
    }}},
}
_DOWNLOAD_ANSWER = {"200": {
    "description": "The file, as an attachment, with the type it was stored with",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
}}


@blp.post("")
@token_required()
@blp.doc(requestBody=_UPLOAD_BODY)
@blp.response(201, AttachmentOut)
def upload(task_id):
    """Multipart, the file in field `file`; members who may comment. Send the
    answer's `id` in `send_message`'s `attachments`."""
    request.max_content_length = current_app.config["ATTACHMENT_MAX_BYTES"] + _MULTIPART_OVERHEAD
    file = request.files.get("file")
    return attachments.upload(acting(), task_id, file.stream if file else None, file.filename if file else None)


@blp.get("/<id:attachment_id>")
@token_required()
@blp.doc(responses=_DOWNLOAD_ANSWER)
def download(task_id, attachment_id):
    """Authorized by the requester's own token; a non-member gets 404."""
    found = attachments.download(acting(), task_id, attachment_id)
    response = send_file(found.path, mimetype=found.mime_type, as_attachment=True, download_name=found.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
