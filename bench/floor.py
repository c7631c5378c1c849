"""The floor of the stack: Flask-SocketIO under the product's gunicorn worker, speaking
the benchmark's protocol with no database at all. `gunicorn -c bench/floor.conf.py bench.floor:app`

connect: decode the HS256 JWT (auth.token); join_task: join room task_<id>, ack;
send_message: broadcast new_message {message, taskId} to the room (sender included), ack.

The transport is set up as the product sets up its own (app/socketwire.py: text packets
written by orjson; no Flask session per event; `patches.write_frames_directly`: frames
written by the sending greenlet), so that product / floor is what the product's own work
costs. Those two are all the floor takes of the app: no app is made, no database is read.
"""
import itertools
import os
from datetime import UTC, datetime

import jwt
from flask import Flask, request
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room  # noqa: A004 (Flask-SocketIO's name)

from app import patches
from app import socketwire as wire

SECRET = os.environ["JWT_SECRET_KEY"]
app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent", cors_allowed_origins=["http://127.0.0.1"], logger=False,
                    engineio_logger=False, serializer=wire.TextPacket, json=wire.FastJSON, manage_session=False)
patches.write_frames_directly(socketio.server.eio)
users, ids = {}, itertools.count(1)


@app.get("/health")
def health():
    return {"status": "ok"}


@socketio.on("connect", namespace="/tasks")
def connect(auth=None):
    try:
        claims = jwt.decode((auth or {}).get("token", ""), SECRET, algorithms=["HS256"])
        users[request.sid] = int(claims["sub"])
    except Exception:  # noqa: BLE001 - a token that cannot be read, whatever the reason, is refused
        raise ConnectionRefusedError("Authentication error: Invalid token") from None


@socketio.on("disconnect", namespace="/tasks")
def disconnect(reason=None):  # noqa: ARG001 (Flask-SocketIO passes the reason)
    users.pop(request.sid, None)


@socketio.on("join_task", namespace="/tasks")
def join_task(data=None):
    task_id = int(data["taskId"] if isinstance(data, dict) else data)
    join_room(f"task_{task_id}")
    return {"ok": True, "data": {"taskId": task_id}}


@socketio.on("send_message", namespace="/tasks")
def send_message(data):
    task_id = int(data["taskId"])
    message = {"id": next(ids), "taskId": task_id, "userId": users.get(request.sid), "message": data["message"].strip(),
               "clientId": data.get("clientId"), "createdAt": datetime.now(UTC).isoformat()}
    emit("new_message", {"message": message, "taskId": task_id}, to=f"task_{task_id}", namespace="/tasks")
    return {"ok": True, "data": message}
