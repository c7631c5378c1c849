"""The application factory: settings, then each part registered in its own step."""
from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import load_config
from . import extensions as ext


def create_app(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Flask:
    """Build the app from the environment (or `env`), then apply `overrides` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config(env, instance_path=app.instance_path))
    app.config.update(overrides or {})
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_namespaces(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from .auth import register_jwt_callbacks
    from .schemas import ErrorOut

    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db)
    ext.jwt.init_app(app)
    register_jwt_callbacks(app)
    origins = app.config["CORS_ORIGINS"]
    ext.cors.init_app(app, resources={r"/api/*": {"origins": origins}, r"/health": {"origins": origins}})
    ext.api.ERROR_SCHEMA = ErrorOut  # document the error shape the handlers really send
    ext.api.init_app(app)
    ext.socketio.init_app(
        app,
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE"),
        cors_allowed_origins=origins,
        max_http_buffer_size=app.config["SOCKETIO_MAX_HTTP_BUFFER_SIZE"],
        logger=False,
        engineio_logger=False,
    )


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys (cascades) and wait for a lock instead of failing at once."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    from .api import register_api

    register_api(app)


def register_error_handlers(app: Flask) -> None:
    from .api.errors import register as register_api_errors

    register_api_errors(app)


def register_namespaces(app: Flask) -> None:
    from .realtime import register_namespaces as register

    register(app)


def register_commands(app: Flask) -> None:
    from .cli import register as register_cli

    register_cli(app)
