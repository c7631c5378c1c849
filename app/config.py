"""Settings, read from the environment once, parsed and validated.

Every setting the server understands is listed in `.env.example`. `load_config`
turns an environment mapping into a plain dict for `app.config`; it raises
`ConfigError` for anything malformed, and for production settings that would
be unsafe to run with.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from .masking import loggable

ENVIRONMENTS = ("development", "production", "testing")
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:3001")
# Login and registration throttling (Flask-Limiter, moving windows; see docs/security.md).
# Every attempt counts, whatever its outcome; 100 a day per account is NIST SP 800-63B's bound.
DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT = "5/minute;20/hour;100/day"
DEFAULT_LOGIN_RATE_LIMIT_IP = "20/minute;200/hour"
DEFAULT_REGISTER_RATE_LIMIT_IP = "10/minute;50/hour"
# APP_ENV=testing only: the test suite registers and logs in hundreds of users from 127.0.0.1.
TESTING_AUTH_RATE_LIMIT = "10000/minute"
DEFAULT_ATTACHMENT_TYPES = (
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,application/zip,"
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$", re.IGNORECASE)
# scheme://host[:port], nothing else: no path, no user, no `null` (which would let
# sandboxed iframes and file:// pages in).
_ORIGIN = re.compile(r"^https?://(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31557600}


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the server refuses to start."""


def parse_duration(value: str, name: str) -> timedelta:
    """Parse the original server's duration strings: `24h`, `7d`, `30m`, `90s`.

    A bare number means seconds, as it did for jsonwebtoken's `expiresIn`.
    """
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{name}: {value!r} is not a duration such as 15m, 24h or 7d")
    amount, unit = float(match.group(1)), (match.group(2) or "s").lower()
    seconds = amount * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise ConfigError(f"{name}: a duration must be positive")
    return timedelta(seconds=seconds)


def parse_origins(value: str | None) -> list[str]:
    """A comma list of origins. Empty entries are dropped; a list that ends up
    empty falls back to the defaults, so it can never reach python-engineio as
    `[]` (which would switch its origin check off)."""
    # Browsers send the scheme and host in lower case, and Origin is compared as a string.
    origins = [o.strip().rstrip("/").lower() for o in (value or "").split(",") if o.strip()]
    for origin in origins:
        match = _ORIGIN.match(origin)
        if origin != "*" and not (match and int(match.group(1) or 1) <= 65535):
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not an origin such as https://app.example.com")
    return list(dict.fromkeys(origins)) or list(DEFAULT_CORS_ORIGINS)


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: {value!r} is not a boolean (use 1/0, true/false)")


def parse_int(value: str | None, name: str, default: int, minimum: int = 1) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None
    if number < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    return number


def parse_seconds(value: str | None, name: str, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    return parse_duration(value, name).total_seconds()


def parse_mime_types(value: str | None) -> frozenset[str]:
    """A comma list of MIME types; a list with no entry at all (unset, blank, only
    commas) means the defaults, as for CORS_ORIGINS, not "no uploads allowed"."""
    types = {t.strip().lower() for t in (value or "").split(",") if t.strip()}
    types = types or {t.strip() for t in DEFAULT_ATTACHMENT_TYPES.split(",")}
    for mime in types:
        if not re.match(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$", mime):
            raise ConfigError(f"ATTACHMENT_TYPES: {mime!r} is not a MIME type such as image/png")
    return frozenset(types)


def parse_rate(value: str | None, name: str, default: str) -> str:
    """A rate in the `limits` library's notation: `100/minute`, `10 per second`,
    several separated by `;`. Checked here so a typo stops the start, not an event."""
    from limits import parse_many

    text = (value or "").strip() or default
    try:
        parse_many(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a rate such as 100/minute") from None
    return text


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever scheme the URL was written with."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(env: Mapping[str, str] | None = None, instance_path: str | None = None) -> dict:
    env = os.environ if env is None else env
    app_env = (env.get("APP_ENV") or "development").strip().lower()
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV: {app_env!r} is not one of {', '.join(ENVIRONMENTS)}")
    production = app_env == "production"

    instance = Path(instance_path or Path(__file__).resolve().parent.parent / "instance")
    default_db = "sqlite:///" + str(instance / "taskchat.db")
    database_url = normalize_database_url(env.get("DATABASE_URL") or default_db)

    algorithm = (env.get("JWT_ALGORITHM") or "HS256").strip()
    if algorithm not in ("HS256", "HS384", "HS512"):
        raise ConfigError("JWT_ALGORITHM: only HS256, HS384 and HS512 are supported")

    secret_key = env.get("SECRET_KEY") or ""
    jwt_secret = env.get("JWT_SECRET_KEY") or env.get("JWT_SECRET") or ""
    allow_sqlite = parse_bool(env.get("ALLOW_SQLITE_IN_PRODUCTION"), "ALLOW_SQLITE_IN_PRODUCTION", False)
    if production:
        # RFC 7518 3.2: an HMAC key at least as long as the hash (HS384: 48 bytes, HS512: 64).
        jwt_minimum = max(32, int(algorithm[2:]) // 8)
        for name, value, minimum in (("SECRET_KEY", secret_key, 32), ("JWT_SECRET_KEY", jwt_secret, jwt_minimum)):
            if not value or value == DEV_SECRET or len(value.encode("utf-8", "surrogatepass")) < minimum:
                raise ConfigError(
                    f"{name} must be set to a random value of at least {minimum} bytes in production"
                )
        # Read as Flask reads it: anything but empty, 0, false or no turns debug on
        # (and `flask run --debug` sets FLASK_DEBUG=1 before the app is made).
        debug = (env.get("FLASK_DEBUG") or "").strip()
        if debug and debug.lower() not in ("0", "false", "no"):
            raise ConfigError(f"FLASK_DEBUG={debug}: debug mode is refused in production")
        if database_url.startswith("sqlite") and not allow_sqlite:
            raise ConfigError(
                "DATABASE_URL: SQLite is refused in production (set DATABASE_URL to PostgreSQL, "
                "or ALLOW_SQLITE_IN_PRODUCTION=1 for a single small instance)"
            )
    secret_key = secret_key or DEV_SECRET
    jwt_secret = jwt_secret or DEV_SECRET

    # The same list in every environment (a foreign Origin gets no CORS headers and no
    # Socket.IO session); '*' only when written explicitly, and never in production.
    cors_origins = parse_origins(env.get("CORS_ORIGINS"))
    if production and "*" in cors_origins:
        raise ConfigError("CORS_ORIGINS: '*' is refused in production; list the frontend origins")
    allow_all_origins = "*" in cors_origins
    auth_rate = (lambda default: TESTING_AUTH_RATE_LIMIT) if app_env == "testing" else (lambda default: default)


    return {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "APP_HOST": env.get("APP_HOST") or "127.0.0.1",
        "APP_PORT": parse_int(env.get("APP_PORT"), "APP_PORT", 9553),
        "SECRET_KEY": secret_key,
        "JWT_SECRET_KEY": jwt_secret,
        "JWT_ALGORITHM": algorithm,
        "JWT_DECODE_ALGORITHMS": [algorithm],
        "JWT_ACCESS_TOKEN_EXPIRES": parse_duration(env.get("JWT_EXPIRES_IN") or "24h", "JWT_EXPIRES_IN"),
        "JWT_REFRESH_TOKEN_EXPIRES": parse_duration(
            env.get("JWT_REFRESH_EXPIRES_IN") or "7d", "JWT_REFRESH_EXPIRES_IN"
        ),
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_DECODE_LEEWAY": 0,
        # werkzeug's method name; tests use a cheap one, production keeps scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000" if app_env == "testing" else "scrypt",
        "SQLALCHEMY_DATABASE_URI": database_url,
        # hide_parameters: a failed statement's message (logged, and in any exception text)
        # shows the SQL without the values, which may be message bodies or password hashes.
        # PostgreSQL: pool_pre_ping replaces pooled connections the server closed (restart,
        # failover); connect_timeout (libpq's PGCONNECT_TIMEOUT, default 10 s) bounds a connect
        # to a database that does not answer, so an event gets `unavailable` instead of hanging.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True}
        | ({} if database_url.startswith("sqlite") else {
            "pool_pre_ping": True,
            # Connections the pool opens beyond pool_size are closed when given back:
            # under load that meant a new PostgreSQL connection (and its
            # authentication) for every event. The pool keeps its connections, and an
            # event beyond them waits its turn (chat writes of a task wait for each
            # other anyway) for up to pool_timeout before it is `unavailable`.
            "pool_size": parse_int(env.get("DATABASE_POOL_SIZE"), "DATABASE_POOL_SIZE", 20),
            "max_overflow": parse_int(env.get("DATABASE_MAX_OVERFLOW"), "DATABASE_MAX_OVERFLOW", 0, minimum=0),
            "connect_args": {"connect_timeout": parse_int(env.get("PGCONNECT_TIMEOUT"), "PGCONNECT_TIMEOUT", 10)},
        }),
        # PostgreSQL: the autocommit connections of the hot path's single statements
        # (app/hotdb.py), besides the pool; each process keeps up to this many open.
        # Each statement holds one until its commit is on disk: under S1, 10 of them
        # capped the worker at 70% of the rate it reached with 30 (bench/RESULTS.md).
        "HOT_CONNECTIONS": parse_int(env.get("HOT_CONNECTIONS"), "HOT_CONNECTIONS", 30),
        "CORS_ORIGINS": "*" if allow_all_origins else cors_origins,
        # wsgi.py switches this to gevent under gunicorn; `flask run` and tests use threads.
        "SOCKETIO_ASYNC_MODE": "threading",
        "SOCKETIO_ROOT_NAMESPACE": parse_bool(env.get("SOCKETIO_ROOT_NAMESPACE"), "SOCKETIO_ROOT_NAMESPACE", True),
        "SOCKETIO_MAX_HTTP_BUFFER_SIZE": parse_int(
            env.get("SOCKETIO_MAX_HTTP_BUFFER_SIZE"), "SOCKETIO_MAX_HTTP_BUFFER_SIZE", 64 * 1024
        ),
        # Engine.IO's heartbeat (socket.io's own defaults): a ping every interval; a client
        # that has not answered within the timeout is closed.
        "SOCKETIO_PING_INTERVAL": parse_int(env.get("SOCKETIO_PING_INTERVAL"), "SOCKETIO_PING_INTERVAL", 25),
        "SOCKETIO_PING_TIMEOUT": parse_int(env.get("SOCKETIO_PING_TIMEOUT"), "SOCKETIO_PING_TIMEOUT", 20),
        "MAX_CONTENT_LENGTH": parse_int(env.get("MAX_CONTENT_LENGTH"), "MAX_CONTENT_LENGTH", 1024 * 1024),
        # Uploads: where they are kept, how big and of which types they may be.
        "ATTACHMENTS_DIR": env.get("ATTACHMENTS_DIR") or str(instance / "attachments"),
        "ATTACHMENT_MAX_BYTES": parse_int(env.get("ATTACHMENT_MAX_BYTES"), "ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024),
        "ATTACHMENT_TYPES": parse_mime_types(env.get("ATTACHMENT_TYPES")),
        # Typing: `user_typing` at most once per user and task per throttle; the
        # server says `user_stopped_typing` itself after the timeout.
        "TYPING_THROTTLE_SECONDS": parse_seconds(env.get("TYPING_THROTTLE"), "TYPING_THROTTLE", 3.0),
        "TYPING_TIMEOUT_SECONDS": parse_seconds(env.get("TYPING_TIMEOUT"), "TYPING_TIMEOUT", 6.0),
        # Socket abuse limits, per user across all their sockets (see docs/security.md).
        "REDIS_URL": (env.get("REDIS_URL") or "").strip() or None,
        "RATE_LIMIT_MESSAGES": parse_rate(env.get("RATE_LIMIT_MESSAGES"), "RATE_LIMIT_MESSAGES", "100/minute"),
        "RATE_LIMIT_TYPING": parse_rate(env.get("RATE_LIMIT_TYPING"), "RATE_LIMIT_TYPING", "120/minute"),
        "RATE_LIMIT_JOINS": parse_rate(env.get("RATE_LIMIT_JOINS"), "RATE_LIMIT_JOINS", "60/minute"),
        "RATE_LIMIT_OTHER": parse_rate(env.get("RATE_LIMIT_OTHER"), "RATE_LIMIT_OTHER", "300/minute"),
        "RATE_LIMIT_REFUSALS": parse_int(env.get("RATE_LIMIT_REFUSALS"), "RATE_LIMIT_REFUSALS", 100),
        "MAX_SOCKETS_PER_USER": parse_int(env.get("MAX_SOCKETS_PER_USER"), "MAX_SOCKETS_PER_USER", 20),
        # Login and registration throttling on REST (Flask-Limiter; docs/security.md).
        "LOGIN_RATE_LIMIT_ACCOUNT": parse_rate(
            env.get("LOGIN_RATE_LIMIT_ACCOUNT"), "LOGIN_RATE_LIMIT_ACCOUNT", auth_rate(DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT)
        ),
        "LOGIN_RATE_LIMIT_IP": parse_rate(
            env.get("LOGIN_RATE_LIMIT_IP"), "LOGIN_RATE_LIMIT_IP", auth_rate(DEFAULT_LOGIN_RATE_LIMIT_IP)
        ),
        "REGISTER_RATE_LIMIT_IP": parse_rate(
            env.get("REGISTER_RATE_LIMIT_IP"), "REGISTER_RATE_LIMIT_IP", auth_rate(DEFAULT_REGISTER_RATE_LIMIT_IP)
        ),
        # Reverse proxies in front that append to X-Forwarded-For; 0: the header is ignored
        # and the client is the peer of the TCP connection.
        "TRUSTED_PROXY_COUNT": parse_int(env.get("TRUSTED_PROXY_COUNT"), "TRUSTED_PROXY_COUNT", 0, minimum=0),
        # Flask-Limiter's own settings; the limits above are applied in app/api/auth.py.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": (env.get("REDIS_URL") or "").strip() or "memory://",
        # How often open sockets are checked for tokens that expired or were revoked elsewhere.
        "AUTH_SWEEP_SECONDS": parse_seconds(env.get("AUTH_SWEEP_INTERVAL"), "AUTH_SWEEP_INTERVAL", 1.0),
        "WORKER_CONNECTIONS": parse_int(env.get("WORKER_CONNECTIONS"), "WORKER_CONNECTIONS", 10000),
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").upper(),
        # flask-smorest: the OpenAPI document is served at /api/openapi.json.
        "API_TITLE": "taskchat",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Which token each operation takes is said per operation (app/api/openapi.py).
    }


# ---- the settings as they may be logged (app/masking.py hides the secrets) ----------------
# Documentation-only keys, left out of the log line.
_NOT_LOGGED = frozenset({
    "API_TITLE", "API_VERSION", "OPENAPI_VERSION", "OPENAPI_URL_PREFIX", "OPENAPI_JSON_PATH",
})


def loggable_settings(config: Mapping[str, Any]) -> dict[str, str]:
    """The effective settings as text that may be logged: secret keys as `***`, the
    password of every URL (database, Redis) masked. Keys in name order."""
    return {name: loggable(name, config[name]) for name in sorted(config) if name not in _NOT_LOGGED}
