"""Settings, read from the environment once, parsed and validated.

Every setting is one row of `SETTINGS`: its name (the environment variable and the
`app.config` key alike), how its text is parsed, its default, one line saying what it
is for and, for a few, an older environment name that is still accepted.
`.env.example` and the README's settings table list exactly these rows
(tests/test_config_docs.py checks both).

`load_config` walks the table over an environment mapping, checks the settings
against each other (production refuses unsafe ones), and adds the keys Flask and its
extensions read that follow from them. It raises `ConfigError` for anything
malformed, and for production settings that would be unsafe to run with.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
_DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$", re.IGNORECASE)
# scheme://host[:port], nothing else: no path, no user, no `null` (which would let
# sandboxed iframes and file:// pages in).
_ORIGIN = re.compile(r"^https?://(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31557600}


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the server refuses to start."""


# ---- parsers: (text, the environment name it came from) -> value ------------------------
# Each is given the text of a variable that is set and not empty. None means "as if
# unset": the setting's default applies (most parsers say so for white space only).

def parse_duration(value: str, name: str) -> timedelta:
    """Parse a duration: `24h`, `7d`, `30m`, `90s`.

    A bare number means seconds, as jsonwebtoken's `expiresIn` reads it.
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


def parse_bool(value: str, name: str) -> bool | None:
    if value.strip() == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: {value!r} is not a boolean (use 1/0, true/false)")


def parse_int(value: str, name: str, minimum: int = 1) -> int | None:
    if value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None
    if number < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    return number


def parse_seconds(value: str, name: str) -> float | None:
    """A duration (`500ms`, `3s`, `1m`) as a number of seconds."""
    if value.strip() == "":
        return None
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


def parse_rate(value: str, name: str) -> str | None:
    """A rate in the `limits` library's notation: `100/minute`, `10 per second`,
    several separated by `;`. Checked here so a typo stops the start, not an event."""
    from limits import parse_many

    text = value.strip()
    if not text:
        return None
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


def _as_written(value: str, _name: str) -> str:
    return value


def _whole_number(minimum: int = 1) -> Callable[[str, str], int | None]:
    return lambda value, name: parse_int(value, name, minimum)


def _app_env(value: str, name: str) -> str:
    app_env = value.strip().lower()
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"{name}: {app_env!r} is not one of {', '.join(ENVIRONMENTS)}")
    return app_env


def _jwt_algorithm(value: str, name: str) -> str:
    algorithm = value.strip()
    if algorithm not in ("HS256", "HS384", "HS512"):
        raise ConfigError(f"{name}: only HS256, HS384 and HS512 are supported")
    return algorithm


def _cors_origins(value: str, _name: str) -> list[str] | str:
    # The same list in every environment (a foreign Origin gets no CORS headers and no
    # Socket.IO session); '*' only when written explicitly, and never in production.
    origins = parse_origins(value)
    return "*" if "*" in origins else origins


def _redis_url(value: str, _name: str) -> str | None:
    return value.strip() or None


def _log_level(value: str, _name: str) -> str:
    return value.upper()


def _auth_rate(default: str) -> Callable[[Mapping[str, Any], Path], str]:
    """A login or registration limit's default: generous under APP_ENV=testing."""
    return lambda settings, _instance: TESTING_AUTH_RATE_LIMIT if settings["APP_ENV"] == "testing" else default


# ---- the table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One setting. `default` is the value when the variable is unset or empty (or the
    parser returns None); a callable default is computed from the settings read before
    it, in table order, and the instance folder. `legacy` is an older environment name,
    read when `name` is unset or empty: when both are set, `name` wins."""

    name: str
    parse: Callable[[str, str], Any]
    default: Any
    doc: str
    legacy: str | None = None

    def read(self, env: Mapping[str, str], settings: Mapping[str, Any], instance: Path) -> Any:
        source = next((n for n in (self.name, self.legacy) if n and env.get(n)), None)
        value = self.parse(env[source], source) if source else None
        if value is None:
            value = self.default(settings, instance) if callable(self.default) else self.default
        return value


SETTINGS: tuple[Setting, ...] = (
    # First: other settings' defaults depend on it.
    Setting("APP_ENV", _app_env, "development",
            "development, production or testing; production refuses unsafe settings at start"),
    Setting("APP_HOST", _as_written, "127.0.0.1",
            "address to listen on (flask run via .flaskenv, gunicorn via gunicorn.conf.py)"),
    Setting("APP_PORT", _whole_number(), 9553, "port to listen on"),
    # Production refuses the development value (see _refuse_unsafe).
    Setting("SECRET_KEY", _as_written, DEV_SECRET, "Flask's secret; production: random, 32+ bytes"),
    Setting("JWT_SECRET_KEY", _as_written, DEV_SECRET,
            "signs the tokens; production: random, 32+ bytes (HS384: 48+, HS512: 64+)", legacy="JWT_SECRET"),
    Setting("JWT_ALGORITHM", _jwt_algorithm, "HS256", "HS256, HS384 or HS512"),
    Setting("JWT_ACCESS_TOKEN_EXPIRES", parse_duration, timedelta(hours=24),
            "access token lifetime (90s, 15m, 24h, 7d)", legacy="JWT_EXPIRES_IN"),
    Setting("JWT_REFRESH_TOKEN_EXPIRES", parse_duration, timedelta(days=7),
            "refresh token lifetime", legacy="JWT_REFRESH_EXPIRES_IN"),
    Setting("DATABASE_URL", lambda value, _name: normalize_database_url(value),
            lambda _settings, instance: "sqlite:///" + str(instance / "taskchat.db"),
            "any SQLAlchemy URL; postgres:// and postgresql:// are run with psycopg 3"),
    # PostgreSQL only, folded into SQLALCHEMY_ENGINE_OPTIONS (see _derived).
    Setting("PGCONNECT_TIMEOUT", _whole_number(), 10,
            "PostgreSQL: seconds to wait for a connection before answering unavailable (libpq's name)"),
    Setting("DATABASE_POOL_SIZE", _whole_number(), 20, "PostgreSQL: connections each process keeps open"),
    Setting("DATABASE_MAX_OVERFLOW", _whole_number(0), 0,
            "PostgreSQL: connections opened beyond the pool under a burst, closed when given back"),
    # PostgreSQL: the autocommit connections of the hot path's single statements
    # (app/hotdb.py), besides the pool; each process keeps up to this many open.
    # Each statement holds one until its commit is on disk: under S1, 10 of them
    # capped the worker at 70% of the rate it reached with 30 (bench/RESULTS.md).
    Setting("HOT_CONNECTIONS", _whole_number(), 30,
            "PostgreSQL: autocommit connections for the plain chat send's statement, besides the pool"),
    Setting("ALLOW_SQLITE_IN_PRODUCTION", parse_bool, False,
            "1 lets a production server run on SQLite (one small instance)"),
    Setting("CORS_ORIGINS", _cors_origins, lambda _settings, _instance: list(DEFAULT_CORS_ORIGINS),
            "comma list of browser origins allowed on REST and Socket.IO; * allows all (not in production)"),
    Setting("SOCKETIO_ROOT_NAMESPACE", parse_bool, True,
            "also serve the events at the default namespace / (the web frontend connects there)"),
    Setting("SOCKETIO_MAX_HTTP_BUFFER_SIZE", _whole_number(), 64 * 1024, "largest Socket.IO packet, in bytes"),
    # Engine.IO's heartbeat (socket.io's own defaults): a ping every interval; a client
    # that has not answered within the timeout is closed.
    Setting("SOCKETIO_PING_INTERVAL", _whole_number(), 25, "seconds between heartbeat pings"),
    Setting("SOCKETIO_PING_TIMEOUT", _whole_number(), 20, "seconds a client has to answer a ping"),
    Setting("MAX_CONTENT_LENGTH", _whole_number(), 1024 * 1024, "largest REST request body, in bytes"),
    # Uploads: where they are kept, how big and of which types they may be.
    Setting("ATTACHMENTS_DIR", _as_written, lambda _settings, instance: str(instance / "attachments"),
            "where uploaded chat files are stored"),
    Setting("ATTACHMENT_MAX_BYTES", _whole_number(), 10 * 1024 * 1024, "largest upload, in bytes"),
    Setting("ATTACHMENT_TYPES", lambda value, _name: parse_mime_types(value), parse_mime_types(None),
            "comma list of allowed MIME types, judged from the file name"),
    # Typing: `user_typing` at most once per user and task per throttle; the
    # server says `user_stopped_typing` itself after the timeout.
    Setting("TYPING_THROTTLE_SECONDS", parse_seconds, 3.0,
            "user_typing at most once per user and task per this duration (500ms, 3s)", legacy="TYPING_THROTTLE"),
    Setting("TYPING_TIMEOUT_SECONDS", parse_seconds, 6.0,
            "the server sends user_stopped_typing after this much silence", legacy="TYPING_TIMEOUT"),
    Setting("WORKER_CONNECTIONS", _whole_number(), 10000, "connections one gunicorn worker holds"),
    Setting("LOG_LEVEL", _log_level, "INFO", "Python logging level"),
    # Login and registration throttling on REST (Flask-Limiter; applied in app/api/auth.py).
    Setting("LOGIN_RATE_LIMIT_ACCOUNT", parse_rate, _auth_rate(DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT),
            "login attempts per account, whatever their outcome"),
    Setting("LOGIN_RATE_LIMIT_IP", parse_rate, _auth_rate(DEFAULT_LOGIN_RATE_LIMIT_IP),
            "login attempts per client address"),
    Setting("REGISTER_RATE_LIMIT_IP", parse_rate, _auth_rate(DEFAULT_REGISTER_RATE_LIMIT_IP),
            "registrations per client address"),
    # Reverse proxies in front that append to X-Forwarded-For; 0: the header is ignored
    # and the client is the peer of the TCP connection.
    Setting("TRUSTED_PROXY_COUNT", _whole_number(0), 0,
            "reverse proxies in front that append to X-Forwarded-For; 0: the header is ignored"),
    Setting("REDIS_URL", _redis_url, None,
            "Redis for counts shared by all server processes; unset: each process counts in memory"),
    # Socket abuse limits, per user across all their sockets (see docs/security.md).
    Setting("RATE_LIMIT_MESSAGES", parse_rate, "100/minute", "per user: sends, edits, deletes, reactions"),
    Setting("RATE_LIMIT_TYPING", parse_rate, "120/minute", "per user: typing_start, typing_stop"),
    Setting("RATE_LIMIT_JOINS", parse_rate, "60/minute", "per user: join_task, leave_task"),
    Setting("RATE_LIMIT_OTHER", parse_rate, "300/minute", "per user: mark_read, refresh_token"),
    Setting("RATE_LIMIT_REFUSALS", _whole_number(), 100,
            "a socket refused more often than this within 60 s is disconnected"),
    Setting("MAX_SOCKETS_PER_USER", _whole_number(), 20, "open sockets per user and server process"),
    # How often open sockets are checked for tokens that expired or were revoked elsewhere.
    Setting("AUTH_SWEEP_SECONDS", parse_seconds, 1.0,
            "how often each process ends open sockets whose token expired or was revoked (1s)",
            legacy="AUTH_SWEEP_INTERVAL"),
)


# ---- loading -----------------------------------------------------------------------------
def load_config(env: Mapping[str, str] | None = None, instance_path: str | None = None) -> dict[str, Any]:
    """The settings of `env` (default: the process environment) for `app.config`: each
    row of SETTINGS under its name, then the keys that follow from them."""
    env = os.environ if env is None else env
    instance = Path(instance_path or _DEFAULT_INSTANCE)
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        settings[setting.name] = setting.read(env, settings, instance)
    _refuse_unsafe(settings, env)
    return settings | _derived(settings)


def _refuse_unsafe(settings: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """Production refuses default or short secrets, debug mode, SQLite (unless allowed)
    and CORS '*'."""
    if settings["APP_ENV"] != "production":
        return
    # RFC 7518 3.2: an HMAC key at least as long as the hash (HS384: 48 bytes, HS512: 64).
    jwt_minimum = max(32, int(settings["JWT_ALGORITHM"][2:]) // 8)
    for name, minimum in (("SECRET_KEY", 32), ("JWT_SECRET_KEY", jwt_minimum)):
        value = settings[name]
        if value == DEV_SECRET or len(value.encode("utf-8", "surrogatepass")) < minimum:
            raise ConfigError(f"{name} must be set to a random value of at least {minimum} bytes in production")
    # Read as Flask reads it: anything but empty, 0, false or no turns debug on
    # (and `flask run --debug` sets FLASK_DEBUG=1 before the app is made).
    debug = (env.get("FLASK_DEBUG") or "").strip()
    if debug and debug.lower() not in ("0", "false", "no"):
        raise ConfigError(f"FLASK_DEBUG={debug}: debug mode is refused in production")
    if settings["DATABASE_URL"].startswith("sqlite") and not settings["ALLOW_SQLITE_IN_PRODUCTION"]:
        raise ConfigError(
            "DATABASE_URL: SQLite is refused in production (set DATABASE_URL to PostgreSQL, "
            "or ALLOW_SQLITE_IN_PRODUCTION=1 for a single small instance)"
        )
    if settings["CORS_ORIGINS"] == "*":
        raise ConfigError("CORS_ORIGINS: '*' is refused in production; list the frontend origins")


def _derived(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keys Flask and its extensions read that are fixed or follow from the settings."""
    database_url = settings["DATABASE_URL"]
    return {
        "TESTING": settings["APP_ENV"] == "testing",
        "JWT_DECODE_ALGORITHMS": [settings["JWT_ALGORITHM"]],
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_DECODE_LEEWAY": 0,
        # werkzeug's method name; tests use a cheap one, production keeps scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000" if settings["APP_ENV"] == "testing" else "scrypt",
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
            "pool_size": settings["DATABASE_POOL_SIZE"],
            "max_overflow": settings["DATABASE_MAX_OVERFLOW"],
            "connect_args": {"connect_timeout": settings["PGCONNECT_TIMEOUT"]},
        }),
        # wsgi.py switches this to gevent under gunicorn; `flask run` and tests use threads.
        "SOCKETIO_ASYNC_MODE": "threading",
        # Flask-Limiter's own settings; the login limits are applied in app/api/auth.py.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": settings["REDIS_URL"] or "memory://",
        # flask-smorest: the OpenAPI document is served at /api/openapi.json.
        # Which token each operation takes is said per operation (app/api/openapi.py).
        "API_TITLE": "taskchat",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
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
