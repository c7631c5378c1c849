"""Settings: parsed from the environment once, refused when unsafe in production."""
from datetime import timedelta

import pytest

from app.config import (
    DEFAULT_CORS_ORIGINS, SETTINGS, ConfigError, load_config, parse_duration, parse_mime_types, parse_origins,
)

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


@pytest.mark.parametrize("app_env", ["development", "testing", "production"])
def test_every_environment_uses_the_origin_list(app_env):
    """Development too: a foreign Origin is refused there as in production (issue 4)."""
    env = production(APP_ENV=app_env, CORS_ORIGINS="https://a.example.com")
    assert load_config(env)["CORS_ORIGINS"] == ["https://a.example.com"]
    assert load_config({**env, "CORS_ORIGINS": ""})["CORS_ORIGINS"] == list(DEFAULT_CORS_ORIGINS)


@pytest.mark.parametrize("app_env", ["development", "testing"])
def test_every_origin_only_when_asked_for_outside_production(app_env):
    assert load_config({"APP_ENV": app_env, "CORS_ORIGINS": "*"})["CORS_ORIGINS"] == "*"


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


# ---- chat settings: attachments and typing ---------------------------------------------------
def test_chat_settings_have_defaults(tmp_path):
    config = load_config({}, instance_path=str(tmp_path))
    assert config["ATTACHMENTS_DIR"] == str(tmp_path / "attachments")
    assert config["ATTACHMENT_MAX_BYTES"] == 10 * 1024 * 1024
    assert {"text/plain", "image/png", "application/pdf"} <= config["ATTACHMENT_TYPES"]
    assert isinstance(config["ATTACHMENT_TYPES"], frozenset)
    assert (config["TYPING_THROTTLE_SECONDS"], config["TYPING_TIMEOUT_SECONDS"]) == (3.0, 6.0)


def test_attachment_settings_are_read(tmp_path):
    config = load_config({"ATTACHMENTS_DIR": str(tmp_path / "files"), "ATTACHMENT_MAX_BYTES": "2048",
                          "ATTACHMENT_TYPES": " Image/PNG , text/plain,,"})
    assert config["ATTACHMENTS_DIR"] == str(tmp_path / "files")
    assert config["ATTACHMENT_MAX_BYTES"] == 2048
    assert config["ATTACHMENT_TYPES"] == frozenset({"image/png", "text/plain"}), "trimmed and lower-cased"


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_an_empty_attachment_type_list_means_the_defaults(value):
    """As for CORS_ORIGINS: a blank list does not silently refuse every upload."""
    assert parse_mime_types(value) == load_config({})["ATTACHMENT_TYPES"]


@pytest.mark.parametrize("value", ["png", "image/", "/png", "image/png; charset=x", "*/*", "text/plain,pdf"])
def test_malformed_attachment_types_are_refused(value):
    with pytest.raises(ConfigError, match="ATTACHMENT_TYPES"):
        load_config({"ATTACHMENT_TYPES": value})


@pytest.mark.parametrize("value", ["0", "-1", "10MB", "1.5"])
def test_malformed_attachment_sizes_are_refused(value):
    with pytest.raises(ConfigError, match="ATTACHMENT_MAX_BYTES"):
        load_config({"ATTACHMENT_MAX_BYTES": value})


@pytest.mark.parametrize(("text", "seconds"), [("0.3s", 0.3), ("500ms", 0.5), ("2", 2.0), ("1m", 60.0), ("", None)])
@pytest.mark.parametrize("name", ["TYPING_THROTTLE", "TYPING_TIMEOUT"])
def test_typing_durations_are_parsed(name, text, seconds):
    default = {"TYPING_THROTTLE": 3.0, "TYPING_TIMEOUT": 6.0}[name]
    assert load_config({name: text})[f"{name}_SECONDS"] == pytest.approx(seconds or default)


@pytest.mark.parametrize("text", ["soon", "-1s", "0s", "3 seconds"])
@pytest.mark.parametrize("name", ["TYPING_THROTTLE", "TYPING_TIMEOUT"])
def test_malformed_typing_durations_are_refused(name, text):
    with pytest.raises(ConfigError, match=name):
        load_config({name: text})


# ---- the table: one row a setting, its name the environment variable and the config key ----------
def test_every_setting_is_a_config_key_under_its_own_name():
    config = load_config({})
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    assert set(names) <= set(config)


def test_former_names_are_not_setting_names():
    names = {setting.name for setting in SETTINGS}
    legacy = [setting.legacy for setting in SETTINGS if setting.legacy]
    assert len(legacy) == len(set(legacy)) and not names & set(legacy)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("JWT_ACCESS_TOKEN_EXPIRES", "15m", timedelta(minutes=15)),
    ("JWT_REFRESH_TOKEN_EXPIRES", "2d", timedelta(days=2)),
    ("TYPING_THROTTLE_SECONDS", "500ms", 0.5),
    ("TYPING_TIMEOUT_SECONDS", "1m", 60.0),
    ("AUTH_SWEEP_SECONDS", "2s", 2.0),
    ("DATABASE_POOL_SIZE", "5", 5),
    ("ALLOW_SQLITE_IN_PRODUCTION", "yes", True),
])
def test_each_setting_is_read_from_its_own_name(name, text, expected):
    assert load_config({name: text})[name] == expected


# Each former name, a value for it, and the setting it sets.
LEGACY = {
    "JWT_SECRET": ("JWT_SECRET_KEY", "from-the-old-env", "from-the-old-env"),
    "JWT_EXPIRES_IN": ("JWT_ACCESS_TOKEN_EXPIRES", "15m", timedelta(minutes=15)),
    "JWT_REFRESH_EXPIRES_IN": ("JWT_REFRESH_TOKEN_EXPIRES", "2d", timedelta(days=2)),
    "TYPING_THROTTLE": ("TYPING_THROTTLE_SECONDS", "0.2s", 0.2),
    "TYPING_TIMEOUT": ("TYPING_TIMEOUT_SECONDS", "60s", 60.0),
    "AUTH_SWEEP_INTERVAL": ("AUTH_SWEEP_SECONDS", "3s", 3.0),
}


def test_every_former_name_is_covered_here():
    assert {setting.legacy: setting.name for setting in SETTINGS if setting.legacy} == {
        old: new for old, (new, _, _) in LEGACY.items()}


@pytest.mark.parametrize(("old", "new", "text", "expected"), [(old, *row) for old, row in LEGACY.items()])
def test_former_names_are_still_accepted(old, new, text, expected):
    assert load_config({old: text})[new] == expected


@pytest.mark.parametrize(("old", "new"), [(old, new) for old, (new, _, _) in LEGACY.items()])
def test_the_new_name_wins_over_the_former_one(old, new):
    unset = load_config({})[new]
    config = load_config({new: "123", old: "456"})
    assert config[new] != unset and config[new] == load_config({new: "123"})[new]
    # An empty new name counts as unset: the former one is read.
    assert load_config({new: "", old: "456"})[new] == load_config({old: "456"})[new] != unset


@pytest.mark.parametrize(("old", "text"), [("JWT_EXPIRES_IN", "soon"), ("TYPING_THROTTLE", "-1s"),
                                           ("AUTH_SWEEP_INTERVAL", "often")])
def test_a_malformed_former_name_is_refused_under_that_name(old, text):
    with pytest.raises(ConfigError, match=f"^{old}: "):
        load_config({old: text})


def test_postgresql_pool_settings_reach_the_engine_options():
    options = load_config({"DATABASE_URL": "postgresql://db/taskchat", "DATABASE_POOL_SIZE": "7",
                           "DATABASE_MAX_OVERFLOW": "3", "PGCONNECT_TIMEOUT": "5"})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"], options["connect_args"]) == (7, 3, {"connect_timeout": 5})
    assert load_config({"DATABASE_POOL_SIZE": "7"})["SQLALCHEMY_ENGINE_OPTIONS"] == {"hide_parameters": True}
