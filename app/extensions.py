"""Extension instances, created without an app; `create_app` binds them."""
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
cors = CORS()
api = Api()
socketio = SocketIO()
# Login and registration throttling (the limits and their keys are in app/api/auth.py).
# What varies per app (enabled, storage) comes from app.config; this instance keeps
# the rest: moving windows like the socket limits, a key prefix of its own in Redis,
# and in-memory counting while Redis cannot be reached (rather than no limit, or a 500).
limiter = Limiter(
    key_func=get_remote_address, strategy="moving-window", key_prefix="taskchat-auth",
    in_memory_fallback_enabled=True, headers_enabled=False,
)
