"""Settings: parsed from the environment once, refused when unsafe in production."""
from datetime import timedelta

import pytest

from app.config import DEFAULT_CORS_ORIGINS, ConfigError, load_config, parse_duration, parse_origins

STRONG = "s" * 40


def production(**env):
    return {"APP_ENV": "production", "SECRET_KEY": STRONG, "JWT_SECRET_KEY": STRONG,
            "DATABASE_URL": "postgresql://db/taskchat", "CORS_ORIGINS": "https://app.example.com", **env}


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("15m", timedelta(minutes=15)),
    ("90s", timedelta(seconds=90)), ("3600", timedelta(hours=1)), ("1w", timedelta(weeks=1)),
])
def test_durations_are_read_as_the_original_wrote_them(text, expected):
    assert parse_duration(text, "X") == expected


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0h", "5 parsecs"])
def test_malformed_durations_are_refused(text):
    with pytest.raises(ConfigError, match="X"):
        parse_duration(text, "X")


def test_token_lifetimes_default_to_the_originals():
    config = load_config({})
    assert config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(hours=24)
    assert config["JWT_REFRESH_TOKEN_EXPIRES"] == timedelta(days=7)
    assert config["JWT_ALGORITHM"] == "HS256"
    assert config["APP_PORT"] == 9553


def test_origin_lists_never_become_empty():
    assert parse_origins("") == list(DEFAULT_CORS_ORIGINS)
    assert parse_origins(" , ,") == list(DEFAULT_CORS_ORIGINS)
    assert parse_origins("https://a.example.com, http://localhost:3000/") == [
        "https://a.example.com", "http://localhost:3000"]


def test_malformed_origins_are_refused():
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        parse_origins("app.example.com")


def test_development_allows_every_origin_and_testing_uses_the_list():
    assert load_config({"APP_ENV": "development", "CORS_ORIGINS": "https://a.example.com"})["CORS_ORIGINS"] == "*"
    assert load_config({"APP_ENV": "testing", "CORS_ORIGINS": "https://a.example.com"})["CORS_ORIGINS"] == [
        "https://a.example.com"]


def test_the_original_jwt_secret_name_is_accepted():
    assert load_config({"JWT_SECRET": "from-the-old-env"})["JWT_SECRET_KEY"] == "from-the-old-env"


def test_postgres_urls_use_psycopg_3():
    config = load_config({"DATABASE_URL": "postgres://u@h:5432/d"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h:5432/d"


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    config = load_config({}, instance_path=str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'taskchat.db'}"


def test_safe_production_settings_load():
    config = load_config(production())
    assert config["CORS_ORIGINS"] == ["https://app.example.com"]


@pytest.mark.parametrize(("override", "message"), [
    ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY"),
    ({"JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY"),
    ({"SECRET_KEY": ""}, "SECRET_KEY"),
    ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
])
def test_unsafe_production_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(production(**override))


@pytest.mark.parametrize(("env", "message"), [
    ({"APP_ENV": "staging"}, "APP_ENV"),
    ({"APP_PORT": "http"}, "APP_PORT"),
    ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ({"SOCKETIO_ROOT_NAMESPACE": "maybe"}, "SOCKETIO_ROOT_NAMESPACE"),
])
def test_malformed_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)
