"""The application factory: settings, then each part registered in its own step."""
from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import ConfigError, load_config, loggable_settings
from . import extensions as ext
from . import patches
from .jsonsafe import SafeJSONProvider

log = logging.getLogger(__name__)


def create_app(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Flask:
    """Build the app from the environment (or `env`), then apply `overrides` (tests)."""
    patches.check_versions()  # the libraries whose code app/patches.py replaces, at the releases it knows
    app = Flask(__name__, instance_relative_config=True)
    app.json = SafeJSONProvider(app)  # a body nested too deeply is a 400, not a RecursionError
    app.session_interface = NoSessions()
    settings = load_config(env, instance_path=app.instance_path)
    app.config.update(settings)
    app.config.update(overrides or {})
    if app.config["APP_ENV"] == "production" and app.debug:
        raise ConfigError("debug mode is refused in production")
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SQLAlchemy keeps its loggers at WARNING; should sqlalchemy.engine be lowered to DEBUG
    # it would log every result row (message bodies, password hashes). INFO (statements,
    # their values hidden by hide_parameters) is as low as it goes.
    sql_log = logging.getLogger("sqlalchemy.engine")
    if sql_log.getEffectiveLevel() < logging.INFO:
        sql_log.setLevel(logging.INFO)
    # Once per process, without secrets: what this server really runs with.
    log.log(
        logging.INFO if app.config["APP_ENV"] == "production" else logging.DEBUG,
        "effective settings: %s",
        ", ".join(f"{k}={v}" for k, v in loggable_settings({k: app.config[k] for k in settings}).items()),
    )

    register_extensions(app)
    register_session_cleanup(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_namespaces(app)
    register_commands(app)
    return app


class NoSessions(SessionInterface):
    """Nothing here keeps a Flask session: both doors authenticate with JWTs. Flask-SocketIO
    still opens the session for every socket event, which parsed the handshake's cookies
    each time; this hands out Flask's null session instead, and never sets a cookie."""

    def open_session(self, app: Flask, request: Any) -> Any:  # noqa: ARG002 (Flask's SessionInterface signature)
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:  # noqa: ARG002 (Flask's signature)
        return None


def register_extensions(app: Flask) -> None:
    from .api.openapi import init_document
    from .api.tokens import register_jwt_callbacks
    from .schemas.outputs import ErrorOut
    from .socketwire import FastJSON, TextPacket

    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db)
    ext.jwt.init_app(app)
    register_jwt_callbacks(app)
    origins = app.config["CORS_ORIGINS"]
    ext.cors.init_app(app, resources={r"/api/*": {"origins": origins}, r"/health": {"origins": origins}})
    ext.api.ERROR_SCHEMA = ErrorOut  # document the error shape the handlers really send
    init_document(ext.api, app)
    ext.socketio.init_app(
        app,
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE"),
        serializer=TextPacket,
        json=FastJSON,
        # No handler reads or writes flask.session: copying it in and out of every event is waste.
        manage_session=False,
        cors_allowed_origins=origins,
        max_http_buffer_size=app.config["SOCKETIO_MAX_HTTP_BUFFER_SIZE"],
        ping_interval=app.config["SOCKETIO_PING_INTERVAL"],
        ping_timeout=app.config["SOCKETIO_PING_TIMEOUT"],
        logger=False,
        engineio_logger=False,
    )
    patches.forget_dead_limiter_storage(ext.limiter)  # one Limiter serves each app made in this process
    ext.limiter.init_app(app)
    if app.config["TRUSTED_PROXY_COUNT"]:
        # Behind that many proxies, the client address is the one they appended to
        # X-Forwarded-For; with none (the default) the header is not believed.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys (cascades) and wait for a lock instead of failing at once."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def register_session_cleanup(app: Flask) -> None:
    from .dbsession import register

    register(app)
    register_hot_connections(app)


def register_hot_connections(app: Flask) -> None:
    """PostgreSQL: the autocommit connections of the hot path (app/hotdb.py)."""
    from .hotdb import HotConnections

    with app.app_context():
        engine = ext.db.engine
    if engine.dialect.name != "postgresql":
        return
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    hot = HotConnections(
        engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
        size=app.config["HOT_CONNECTIONS"], timeout=options.get("pool_timeout", 30),
        connect_timeout=options.get("connect_args", {}).get("connect_timeout", 10),
    )
    app.extensions["taskchat_hotdb"] = hot
    event.listen(engine, "engine_disposed", hot.close)


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
