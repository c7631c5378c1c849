"""The environment a test app is made from (`create_app(env=...)`)."""
from __future__ import annotations

JWT_SECRET = "test-secret-" + "x" * 32  # the test apps' JWT_SECRET_KEY, so tests can forge tokens

# Rate limits out of the way, for tests that send many events on purpose.
NO_LIMITS = {
    "RATE_LIMIT_MESSAGES": "100000/minute", "RATE_LIMIT_TYPING": "100000/minute",
    "RATE_LIMIT_JOINS": "100000/minute", "RATE_LIMIT_OTHER": "100000/minute",
}

REDIS_URL = "redis://127.0.0.1:6379/0"  # the machine's Redis, for the tests of the Redis-backed counters

# Every rate limit generous, for tests of one of them: `limited(RATE_LIMIT_MESSAGES="3/minute")`.
GENEROUS = {"RATE_LIMIT_MESSAGES": "1000/minute", "RATE_LIMIT_TYPING": "1000/minute",
            "RATE_LIMIT_JOINS": "1000/minute", "RATE_LIMIT_OTHER": "1000/minute"}


def limited(**settings: str) -> dict[str, str]:
    return {**GENEROUS, **settings}


def app_env(database_url: str, **settings: str) -> dict[str, str]:
    """APP_ENV=testing on `database_url`, with `settings` on top."""
    return {"APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": JWT_SECRET, **settings}
