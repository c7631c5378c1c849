"""Production start-up checks, the settings log line, logs without secrets, production errors.

Production refuses (ConfigError, and gunicorn or `flask run` exits non-zero with one
line saying why): a missing, default or short (< 32 bytes) SECRET_KEY or
JWT_SECRET_KEY, debug on, SQLite unless ALLOW_SQLITE_IN_PRODUCTION=1, CORS '*',
and any malformed setting. It logs the effective settings once, without secrets.
Nothing logs a token, a password or a message body, at any level.
"""
from __future__ import annotations

import logging
import subprocess
import uuid

import pytest
import requests
from flask.helpers import get_debug_flag

from app import create_app
from app.config import (
    DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT, DEFAULT_LOGIN_RATE_LIMIT_IP, DEFAULT_REGISTER_RATE_LIMIT_IP, DEV_SECRET,
    TESTING_AUTH_RATE_LIMIT, ConfigError, load_config, loggable_settings,
)
from app.extensions import db
from e2e.live import BIN, ROOT, LiveSocket, free_port, server_env, start_server
from toolkit.sockets import drain, emit, join, send

SECRET = "s3cret-key-that-must-not-leak-" + "s" * 16
JWT_SECRET = "jwt-key-that-must-not-leak-" + "j" * 16
DB_PASSWORD = "db-pass-that-must-not-leak"
REDIS_PASSWORD = "redis-pass-that-must-not-leak"


def production(**env: str) -> dict[str, str]:
    return {"APP_ENV": "production", "SECRET_KEY": SECRET, "JWT_SECRET_KEY": JWT_SECRET,
            "DATABASE_URL": f"postgresql://taskchat:{DB_PASSWORD}@db.internal:5432/taskchat",
            "CORS_ORIGINS": "https://app.example.com", **env}


# ---- what production refuses ----------------------------------------------------------------
REFUSED = {
    "no JWT secret": ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY"),
    "default JWT secret": ({"JWT_SECRET_KEY": DEV_SECRET}, "JWT_SECRET_KEY"),
    "31-byte JWT secret": ({"JWT_SECRET_KEY": "j" * 31}, "JWT_SECRET_KEY"),
    "31 bytes in 16 characters": ({"JWT_SECRET_KEY": "é" * 15 + "j"}, "JWT_SECRET_KEY"),
    "HS384 with a 47-byte key": ({"JWT_ALGORITHM": "HS384", "JWT_SECRET_KEY": "j" * 47}, "JWT_SECRET_KEY.*48 bytes"),
    "HS512 with a 63-byte key": ({"JWT_ALGORITHM": "HS512", "JWT_SECRET_KEY": "j" * 63}, "JWT_SECRET_KEY.*64 bytes"),
    "no secret key": ({"SECRET_KEY": ""}, "SECRET_KEY"),
    "default secret key": ({"SECRET_KEY": DEV_SECRET}, "SECRET_KEY"),
    "short secret key": ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    "FLASK_DEBUG=1": ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG"),
    "FLASK_DEBUG=true": ({"FLASK_DEBUG": "true"}, "FLASK_DEBUG"),
    "FLASK_DEBUG=yes": ({"FLASK_DEBUG": "Yes"}, "FLASK_DEBUG"),
    "FLASK_DEBUG=on": ({"FLASK_DEBUG": "on"}, "FLASK_DEBUG"),
    "SQLite": ({"DATABASE_URL": "sqlite:////var/lib/taskchat.db"}, "SQLite"),
    "SQLite, allowance off": ({"DATABASE_URL": "sqlite:///x.db", "ALLOW_SQLITE_IN_PRODUCTION": "0"}, "SQLite"),
    "malformed SQLite allowance": ({"DATABASE_URL": "sqlite:///x.db", "ALLOW_SQLITE_IN_PRODUCTION": "sure"},
                                   "ALLOW_SQLITE_IN_PRODUCTION"),
    "CORS *": ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    "malformed login limit": ({"LOGIN_RATE_LIMIT_ACCOUNT": "lots"}, "LOGIN_RATE_LIMIT_ACCOUNT"),
    "malformed IP limit": ({"LOGIN_RATE_LIMIT_IP": "5 per fortnight"}, "LOGIN_RATE_LIMIT_IP"),
    "malformed register limit": ({"REGISTER_RATE_LIMIT_IP": "-1/minute"}, "REGISTER_RATE_LIMIT_IP"),
    "negative proxy count": ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT"),
}


@pytest.mark.parametrize(("override", "named"), REFUSED.values(), ids=REFUSED.keys())
def test_production_refuses_unsafe_settings(override, named):
    with pytest.raises(ConfigError, match=named) as refused:
        load_config(production(**override))
    secrets = [SECRET, JWT_SECRET, DB_PASSWORD, *(v for k, v in override.items() if "SECRET" in k and len(v) > 3)]
    assert not [s for s in secrets if s in str(refused.value)], "the refusal names the setting, not its value"


@pytest.mark.parametrize("override", [
    {}, {"FLASK_DEBUG": "0"}, {"FLASK_DEBUG": "false"}, {"FLASK_DEBUG": "no"}, {"FLASK_DEBUG": ""},
    {"JWT_SECRET_KEY": "é" * 16}, {"JWT_SECRET_KEY": "j" * 32},
    {"JWT_ALGORITHM": "HS384", "JWT_SECRET_KEY": "j" * 48}, {"JWT_ALGORITHM": "HS512", "JWT_SECRET_KEY": "j" * 64},
    {"DATABASE_URL": "sqlite:////var/lib/taskchat.db", "ALLOW_SQLITE_IN_PRODUCTION": "1"},
    {"DATABASE_URL": "sqlite:///x.db", "ALLOW_SQLITE_IN_PRODUCTION": "true"},
])
def test_production_accepts_safe_settings(override):
    assert load_config(production(**override))["APP_ENV"] == "production"


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on", "2", "debug", "0", "false", "no", "NO", ""])
def test_debug_is_refused_exactly_when_flask_would_turn_it_on(value, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", value)
    flask_debug = get_debug_flag()
    try:
        load_config(production(FLASK_DEBUG=value))
    except ConfigError:
        refused = True
    else:
        refused = False
    assert refused is flask_debug


def test_production_refuses_debug_set_on_the_app_too():
    with pytest.raises(ConfigError, match="debug"):
        create_app({"DEBUG": True}, env=production())


@pytest.mark.parametrize("app_env", ["development", "testing"])
def test_outside_production_sqlite_and_dev_secrets_are_fine(app_env):
    config = load_config({"APP_ENV": app_env, "DATABASE_URL": "sqlite:///x.db", "FLASK_DEBUG": "1"})
    assert config["SECRET_KEY"] == DEV_SECRET


# ---- throttling settings -------------------------------------------------------------------------
@pytest.mark.parametrize("env", [{"APP_ENV": "development"}, production()])
def test_login_limits_default_to_the_documented_figures(env):
    config = load_config(env)
    assert config["LOGIN_RATE_LIMIT_ACCOUNT"] == DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT == "5/minute;20/hour;100/day"
    assert config["LOGIN_RATE_LIMIT_IP"] == DEFAULT_LOGIN_RATE_LIMIT_IP == "20/minute;200/hour"
    assert config["REGISTER_RATE_LIMIT_IP"] == DEFAULT_REGISTER_RATE_LIMIT_IP == "10/minute;50/hour"
    assert config["TRUSTED_PROXY_COUNT"] == 0
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_the_test_suite_gets_generous_limits_unless_it_asks():
    config = load_config({"APP_ENV": "testing"})
    assert config["LOGIN_RATE_LIMIT_IP"] == config["REGISTER_RATE_LIMIT_IP"] == TESTING_AUTH_RATE_LIMIT
    assert load_config({"APP_ENV": "testing", "LOGIN_RATE_LIMIT_IP": "3/minute"})["LOGIN_RATE_LIMIT_IP"] == "3/minute"


def test_limits_are_kept_in_redis_when_it_is_configured():
    config = load_config({"REDIS_URL": "redis://127.0.0.1:6379/3", "TRUSTED_PROXY_COUNT": "2"})
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"
    assert config["TRUSTED_PROXY_COUNT"] == 2


# ---- the settings log line ---------------------------------------------------------------------------
def test_the_loggable_view_has_no_secrets():
    config = load_config(production(REDIS_URL=f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"))
    view = loggable_settings(config)
    text = repr(view)
    for secret in (SECRET, JWT_SECRET, DB_PASSWORD, REDIS_PASSWORD):
        assert secret not in text
    assert view["SECRET_KEY"] == view["JWT_SECRET_KEY"] == "***"
    assert view["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://taskchat:***@db.internal:5432/taskchat"
    assert view["DATABASE_URL"] == view["SQLALCHEMY_DATABASE_URI"]
    assert view["REDIS_URL"] == view["RATELIMIT_STORAGE_URI"] == "redis://:***@cache.internal:6379/0"
    assert view["CORS_ORIGINS"] == "https://app.example.com"
    assert view["LOGIN_RATE_LIMIT_ACCOUNT"] == DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT
    assert "API_TITLE" not in view and "OPENAPI_URL_PREFIX" not in view, "documentation-only keys are left out"


@pytest.fixture
def all_logging(caplog):
    """Every logger on, at DEBUG. The migrations (run in-process by conftest) load
    alembic.ini with logging.config.fileConfig, which disables every logger that
    existed then (app.*) and sets sqlalchemy.engine to WARN; undone for this test."""
    disabled = [lg for lg in logging.root.manager.loggerDict.values()
                if isinstance(lg, logging.Logger) and lg.disabled]
    for logger in disabled:
        logger.disabled = False
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    yield caplog
    for logger in disabled:
        logger.disabled = True


def settings_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("effective settings: ")]


def test_production_logs_its_settings_once_without_secrets(all_logging):
    caplog = all_logging
    create_app(env=production(REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"))
    lines = settings_lines(caplog)
    assert len(lines) == 1 and lines[0].levelno == logging.INFO, [r.getMessage() for r in lines]
    line = lines[0].getMessage()
    assert "APP_ENV=production" in line and "CORS_ORIGINS=https://app.example.com" in line
    assert "SQLALCHEMY_DATABASE_URI=postgresql+psycopg://taskchat:***@db.internal:5432/taskchat" in line
    assert "SECRET_KEY=***" in line and "JWT_SECRET_KEY=***" in line
    for secret in (SECRET, JWT_SECRET, DB_PASSWORD, REDIS_PASSWORD):
        assert secret not in caplog.text


def test_other_environments_log_their_settings_at_debug_only(all_logging, database_url):
    caplog = all_logging
    caplog.set_level(logging.INFO)
    create_app(env={"APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": JWT_SECRET})
    assert settings_lines(caplog) == []
    caplog.set_level(logging.DEBUG)
    create_app(env={"APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": JWT_SECRET})
    assert [r.levelno for r in settings_lines(caplog)] == [logging.DEBUG]
    assert JWT_SECRET not in caplog.text


# ---- live: a refused start is one clear line and a non-zero exit ---------------------------------------------
LIVE_REFUSED = {
    "short JWT secret": ({"JWT_SECRET_KEY": "too-short"}, "JWT_SECRET_KEY"),
    "default secret": ({"SECRET_KEY": DEV_SECRET}, "SECRET_KEY"),
    "debug": ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG"),
    "SQLite": ({"DATABASE_URL": "sqlite:////tmp/taskchat-refused.db"}, "SQLite"),
    "CORS *": ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    "malformed limit": ({"LOGIN_RATE_LIMIT_IP": "often"}, "LOGIN_RATE_LIMIT_IP"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["gunicorn", "flask"])
@pytest.mark.parametrize(("override", "named"), LIVE_REFUSED.values(), ids=LIVE_REFUSED.keys())
def test_a_refused_production_start_exits_with_one_clear_line(kind, override, named):
    port = free_port()
    cmd = ([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"] if kind == "gunicorn"
           else [str(BIN / "flask"), "run", "--port", str(port), "--no-reload"])
    env = server_env("postgresql://taskchat@127.0.0.1:9/taskchat", **production(
        APP_HOST="127.0.0.1", APP_PORT=str(port), DATABASE_URL="postgresql://taskchat@127.0.0.1:9/taskchat"))
    env.pop("ALLOW_SQLITE_IN_PRODUCTION", None)
    env.update(override)
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    refusal = [line for line in output.splitlines() if line.startswith("taskchat: refusing to start: ")]
    assert len(refusal) == 1 and named in refusal[0], output
    assert SECRET not in output and JWT_SECRET not in output


@pytest.mark.e2e
def test_live_gunicorn_logs_its_settings_once_without_secrets(database_url, tmp_path):
    url = database_url
    if url.startswith("postgresql"):  # trust authentication ignores the password; the log must hide it
        url = url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    server = start_server("gunicorn", url, tmp_path, env={
        "SECRET_KEY": SECRET, "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"})
    try:
        assert requests.get(server.url + "/health", timeout=5, headers={"Connection": "close"}).status_code == 200
    finally:
        server.stop()
    log = server.log_text()
    lines = [line for line in log.splitlines() if "effective settings: " in line]
    assert len(lines) == 1, log
    assert "APP_ENV=production" in lines[0] and "SECRET_KEY=***" in lines[0] and "REDIS_URL=redis://:***@" in lines[0]
    for secret in (SECRET, REDIS_PASSWORD, DB_PASSWORD, server_env(url)["JWT_SECRET_KEY"]):
        assert secret not in log


# ---- logs: no tokens, passwords or message bodies -------------------------------------------------------------
def leaked(caplog, secrets: dict[str, str]) -> dict[str, list[str]]:
    """Which secrets appear in which log records (message, arguments, exception and stack text)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in caplog.records:
        texts.append(formatter.format(record) + repr(record.args) + str(getattr(record, "exc_text", "") or ""))
    return {name: [t[:300] for t in texts if value in t] for name, value in secrets.items()
            if any(value in t for t in texts)}


def test_nothing_logs_tokens_passwords_or_message_bodies(all_logging, client, socket):
    """With every logger at DEBUG (SQLAlchemy then logs each statement): a whole session,
    with bad input and errors on the way, leaves none of its secrets in any record."""
    caplog = all_logging
    tag = uuid.uuid4().hex[:8]
    password = f"pw-{tag}-correct horse"
    body = f"body-{tag}-the secret plan"
    edited = f"edit-{tag}-the new plan"
    owner = client.post("/api/auth/register", json={
        "email": f"owner-{tag}@example.com", "password": password, "firstName": "O", "lastName": "W"}).get_json()
    logged_in = client.post("/api/auth/login", json={"email": f"owner-{tag}@example.com", "password": password})
    assert logged_in.status_code == 200
    token, refresh = logged_in.get_json()["accessToken"], logged_in.get_json()["refreshToken"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/auth/login", json={"email": f"owner-{tag}@example.com", "password": password + "x"}
                       ).status_code == 401
    assert client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}).status_code == 200
    task = client.post("/api/tasks", json={"title": "Plans"}, headers=headers).get_json()

    sock = socket(None, auth={"token": token})
    assert sock.is_connected("/tasks")
    join(sock, task["id"])
    sent = send(sock, task["id"], body)
    assert sent["ok"] is True, sent
    assert emit(sock, "edit_message", {"taskId": task["id"], "messageId": sent["data"]["id"], "message": edited}
                )["ok"] is True
    # Bad input on the way: each refused, none of it logged.
    for bad in ({"taskId": task["id"], "message": body + "x" * 20000}, {"taskId": "x", "message": body},
                {"taskId": task["id"], "message": [body]}, [body], body):
        assert emit(sock, "send_message", bad)["ok"] is False
    assert client.post(f"/api/tasks/{task['id']}/messages", data=f'{{"message": "{body}"', headers=headers,
                       content_type="application/json").status_code in (400, 404, 405, 422)
    assert client.post("/api/auth/register", json={"email": "x", "password": password[:5] + body}).status_code == 422
    assert client.get("/api/no-such-thing", headers=headers).status_code == 404
    assert client.delete("/api/auth/login", headers=headers).status_code == 405
    drain(sock)
    # Logout: the token is refused afterwards, on REST and on the socket.
    assert client.post("/api/auth/logout", json={"refreshToken": refresh}, headers=headers).status_code == 204
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    refused = socket(None, auth={"token": token})
    assert not refused.is_connected("/tasks")
    assert socket(None, auth={"token": token[:-4] + "AAAA"}).is_connected("/tasks") is False
    assert owner["user"]["id"]

    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL was not logged at DEBUG"
    sensitive = {"password": password, "access token": token, "refresh token": refresh,
               "token signature": token.rsplit(".", 1)[1], "message body": body, "edited body": edited}
    assert leaked(caplog, sensitive) == {}


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["flask", "gunicorn"])
def test_live_server_logs_no_tokens_passwords_or_message_bodies(kind, database_url, tmp_path):
    """The real servers at LOG_LEVEL=DEBUG: settings, request lines, warnings and all."""
    server = start_server(kind, database_url, tmp_path, env={"LOG_LEVEL": "DEBUG"})
    tag = uuid.uuid4().hex[:8]
    password, body = f"pw-{tag}-correct horse", f"body-{tag}-the secret plan"
    http = requests.Session()
    try:
        email = f"live-{tag}@example.com"
        registered = http.post(server.url + "/api/auth/register", timeout=10, json={
            "email": email, "password": password, "firstName": "L", "lastName": "V"})
        assert registered.status_code == 201, registered.text
        auth = http.post(server.url + "/api/auth/login", json={"email": email, "password": password}, timeout=10).json()
        token = auth["accessToken"]
        task = http.post(server.url + "/api/tasks", json={"title": "Plans"}, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).json()
        sock = LiveSocket(server.url).connect(token)
        try:
            assert sock.call("join_task", task["id"])["ok"] is True
            assert sock.call("send_message", {"taskId": task["id"], "message": body})["ok"] is True
            assert sock.call("send_message", {"taskId": task["id"], "message": [body]})["ok"] is False
        finally:
            sock.disconnect()
        assert http.post(server.url + "/api/auth/logout", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).status_code == 204
    finally:
        http.close()
        server.stop()
    log = server.log_text()
    assert "effective settings" in log and "POST /api/auth/login" in log, "the server logged nothing"
    for name, secret in (("password", password), ("token", token), ("signature", token.rsplit(".", 1)[1]),
                         ("refresh token", auth["refreshToken"]), ("message body", body)):
        assert secret not in log, f"the {kind} server logged the {name}"


# ---- production errors: the stable shape, nothing internal --------------------------------------------------------
PRODUCTION_APP = {"APP_ENV": "production", "SECRET_KEY": SECRET, "ALLOW_SQLITE_IN_PRODUCTION": "1",
                  "CORS_ORIGINS": "https://app.example.com", "MAX_CONTENT_LENGTH": "1024"}
INTERNALS = ("Traceback", 'File "', "sqlalchemy", "SELECT", "werkzeug", "<html", "<!doctype", "line ", ".py")


@pytest.mark.parametrize("settings", [PRODUCTION_APP])
def test_production_errors_have_the_stable_shape_and_nothing_internal(client, alice):
    cases = [
        (client.get("/api/no-such-thing"), 404, "not_found"),
        (client.get("/api/tasks/999999", headers=alice.headers), 403, "forbidden"),
        (client.delete("/api/auth/login"), 405, "method_not_allowed"),
        (client.post("/api/tasks", data="{not json", content_type="application/json", headers=alice.headers),
         400, None),
        (client.post("/api/auth/register", json={"email": "x"}), 422, "validation_error"),
        (client.get("/api/auth/me"), 401, None),
        (client.get("/api/auth/me", headers={"Authorization": "Bearer not.a.token"}), 401, None),
        (client.post("/api/tasks", json={"title": "x" * 5000}, headers=alice.headers), 413, "payload_too_large"),
    ]
    for response, status, code in cases:
        text = response.get_data(as_text=True)
        assert response.status_code == status, text
        assert response.mimetype == "application/json", text
        body = response.get_json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]) <= {"code", "message", "details"}
        assert code is None or body["error"]["code"] == code, body
        for internal in INTERNALS:
            assert internal not in text, (internal, text)


def test_sql_errors_never_carry_their_parameters(app):
    """hide_parameters: a failing statement's text (logged, or in any exception) shows no values."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    secret = f"value-{uuid.uuid4().hex}"
    with app.app_context():
        with pytest.raises(SQLAlchemyError) as failed:
            db.session.execute(text("SELECT no_such_column FROM users WHERE email = :email"), {"email": secret})
        db.session.rollback()
    assert "no_such_column" in str(failed.value)
    assert secret not in str(failed.value)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
