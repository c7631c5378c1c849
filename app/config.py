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

ENVIRONMENTS = ("development", "production", "testing")
DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:3001")
DEFAULT_ATTACHMENT_TYPES = (
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,application/zip,"
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$", re.IGNORECASE)
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
    origins = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            raise ConfigError(f"CORS_ORIGINS: {origin!r} is not an origin such as https://app.example.com")
    return origins or list(DEFAULT_CORS_ORIGINS)


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

    secret_key = env.get("SECRET_KEY") or ""
    jwt_secret = env.get("JWT_SECRET_KEY") or env.get("JWT_SECRET") or ""
    if production:
        for name, value in (("SECRET_KEY", secret_key), ("JWT_SECRET_KEY", jwt_secret)):
            if not value or value == DEV_SECRET or len(value.encode()) < 32:
                raise ConfigError(f"{name} must be set to a random value of at least 32 bytes in production")
    secret_key = secret_key or DEV_SECRET
    jwt_secret = jwt_secret or DEV_SECRET

    cors_origins = parse_origins(env.get("CORS_ORIGINS"))
    if production and "*" in cors_origins:
        raise ConfigError("CORS_ORIGINS: '*' is refused in production; list the frontend origins")
    # The original allowed every origin in development, whatever CORS_ORIGINS said; so do we.
    allow_all_origins = app_env == "development"

    algorithm = (env.get("JWT_ALGORITHM") or "HS256").strip()
    if algorithm not in ("HS256", "HS384", "HS512"):
        raise ConfigError("JWT_ALGORITHM: only HS256, HS384 and HS512 are supported")

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
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True} if not database_url.startswith("sqlite") else {},
        "CORS_ORIGINS": "*" if allow_all_origins else cors_origins,
        # wsgi.py switches this to gevent under gunicorn; `flask run` and tests use threads.
        "SOCKETIO_ASYNC_MODE": "threading",
        "SOCKETIO_ROOT_NAMESPACE": parse_bool(env.get("SOCKETIO_ROOT_NAMESPACE"), "SOCKETIO_ROOT_NAMESPACE", True),
        "SOCKETIO_MAX_HTTP_BUFFER_SIZE": parse_int(
            env.get("SOCKETIO_MAX_HTTP_BUFFER_SIZE"), "SOCKETIO_MAX_HTTP_BUFFER_SIZE", 64 * 1024
        ),
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
        "API_SPEC_OPTIONS": {
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
            "security": [{"bearerAuth": []}],
        },
    }
