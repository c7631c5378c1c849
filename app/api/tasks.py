"""Tasks."""
from __future__ import annotations

from flask_smorest import Blueprint

from ..schemas.inputs import TaskCreateIn, TaskUpdateIn
from ..schemas.outputs import MyTaskOut, page_of
from ..services import tasks
from ..services.paging import Page
from . import acting
from .openapi import token_required

blp = Blueprint("tasks", __name__, url_prefix="/api/tasks", description="Tasks")


@blp.get("")
@token_required()
@blp.response(200, page_of(MyTaskOut))
def list_tasks():
    """The tasks I am a member of, newest first."""
    return Page(items=tasks.my_tasks(acting()), has_more=False)


@blp.post("")
@token_required()
@blp.arguments(TaskCreateIn)
@blp.response(201, MyTaskOut)
def create_task(data):
    return tasks.create_task(acting(), **data)


@blp.get("/<id:task_id>")
@token_required()
@blp.response(200, MyTaskOut)
def get_task(task_id):
    return tasks.get_task(acting(), task_id)


@blp.patch("/<id:task_id>")
@token_required()
@blp.arguments(TaskUpdateIn)
@blp.response(200, MyTaskOut)
def update_task(data, task_id):
    """Editors and owners; the room gets `task_updated`."""
    return tasks.update_task(acting(), task_id, data)


@blp.delete("/<id:task_id>")
@token_required()
@blp.response(204)
def delete_task(task_id):
    """Owners only; the room gets `task_notification` {type: 'task_deleted'}."""
    tasks.delete_task(acting(), task_id)
