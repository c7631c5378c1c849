"""What a setting may be logged as: secrets hidden, URL passwords masked (app/masking.py)."""
import pytest

from app.masking import is_secret_name, loggable, redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:p%40ss@h:5432/d", "postgresql://u:***@h:5432/d"),
    ("postgresql://u:p@ss/w@h/d", "postgresql://u:***@h/d"),  # a stray @ or / hides more, never less
    ("postgresql://h/d?password=pw&sslmode=require", "postgresql://h/d?password=***&sslmode=require"),
    ("postgresql://u@h/d?sslpassword=pw", "postgresql://u@h/d?sslpassword=***"),
    ("rediss://default:pw@h:6380/0", "rediss://default:***@h:6380/0"),
    ("sqlite:////srv/data/a@b.db", "sqlite:////srv/data/a@b.db"),
    ("postgresql://u@h/d", "postgresql://u@h/d"),
])
def test_urls_are_logged_without_passwords(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY", "SMTP_PASSWORD", "DB_PASSWD", "KEY",
                                  "AWS_CREDENTIALS", "PRIVATE_PEM"])
def test_secret_names_show_only_whether_they_are_set(name):
    assert is_secret_name(name)
    assert loggable(name, "the-value") == "***"
    assert loggable(name, "") == "(not set)"


@pytest.mark.parametrize("name", ["PASSWORD_HASH_METHOD", "JWT_ALGORITHM", "KEYS_PER_USER", "APP_PORT"])
def test_other_names_show_their_value(name):
    assert not is_secret_name(name)
    assert loggable(name, "scrypt") == "scrypt"


def test_values_of_every_kind_are_text_with_url_passwords_masked():
    assert loggable("REDIS_URL", "redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert loggable("REDIS_URL", None) == "None"
    assert loggable("APP_PORT", 9553) == "9553"
    assert loggable("ATTACHMENT_TYPES", frozenset({"text/plain", "image/png"})) == "image/png,text/plain"
    assert loggable("CORS_ORIGINS", ["https://a.example.com", "postgresql://u:pw@h/d"]) == (
        "https://a.example.com,postgresql://u:***@h/d")
    assert loggable("OPTIONS", {"url": "postgresql://u:pw@h/d", "size": 3}) == "{url: postgresql://u:***@h/d, size: 3}"
