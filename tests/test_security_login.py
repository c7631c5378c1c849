"""Login and registration: throttling (Flask-Limiter), no user enumeration, password rules.

The throttling tests run with the limits production and development use (the
DEFAULT_* constants of app/config.py, which test_security_config.py pins to the
settings' defaults); APP_ENV=testing itself defaults to a generous limit, so that
the rest of the suite can register hundreds of users from 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import uuid

import pytest
import redis

from app import create_app
from app.config import DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT, DEFAULT_LOGIN_RATE_LIMIT_IP, DEFAULT_REGISTER_RATE_LIMIT_IP
from app.extensions import db
from toolkit.env import REDIS_URL
from toolkit.rest import assert_error

WRONG = "not the password at all"
# The real limits, as production and development run them.
REAL_LIMITS = {
    "LOGIN_RATE_LIMIT_ACCOUNT": DEFAULT_LOGIN_RATE_LIMIT_ACCOUNT,  # 5/minute;20/hour;100/day
    "LOGIN_RATE_LIMIT_IP": DEFAULT_LOGIN_RATE_LIMIT_IP,  # 20/minute;200/hour
    "REGISTER_RATE_LIMIT_IP": DEFAULT_REGISTER_RATE_LIMIT_IP,  # 10/minute;50/hour
}
PER_ACCOUNT, PER_IP, REGISTER_PER_IP = 5, 20, 10  # the per-minute figures of REAL_LIMITS


def login(client, email: str, password: str = WRONG, ip: str | None = None, **headers):
    environ = {"REMOTE_ADDR": ip} if ip else {}
    return client.post("/api/auth/login", json={"email": email, "password": password}, headers=headers,
                       environ_overrides=environ)


def assert_throttled(response) -> int:
    """A 429 in the one error shape, with retryAfter (whole seconds) and the same Retry-After."""
    assert response.status_code == 429, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "retryAfter"}, body
    assert body["error"]["code"] == "rate_limited"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    retry_after = body["error"]["retryAfter"]
    assert type(retry_after) is int and 1 <= retry_after <= 60, body  # the per-minute window is the one breached
    assert response.headers["Retry-After"] == str(retry_after)
    return retry_after


@pytest.fixture
def settings():
    return dict(REAL_LIMITS)


# ---- per account -----------------------------------------------------------------------------
def test_login_is_throttled_per_account(client, alice):
    for _ in range(PER_ACCOUNT):
        assert_error(login(client, alice.email), 401, "invalid_credentials")
    assert_throttled(login(client, alice.email))
    # While the window is full even the right password is refused: the guesser learns nothing.
    assert_throttled(login(client, alice.email, alice.password))
    # From another address too: the count belongs to the account.
    assert_throttled(login(client, alice.email, alice.password, ip="198.51.100.7"))


def test_the_account_limit_leaves_other_accounts_alone(client, alice, bob):
    for _ in range(PER_ACCOUNT):
        login(client, alice.email)
    assert_throttled(login(client, alice.email))
    response = login(client, bob.email, bob.password)
    assert response.status_code == 200, response.get_json()


def test_every_attempt_counts_not_only_failures(client, alice):
    """Counted before the password is checked (so parallel guesses cannot overshoot the
    limit); a few successful logins a minute are no real user's pattern."""
    for _ in range(PER_ACCOUNT):
        assert login(client, alice.email, alice.password).status_code == 200
    assert_throttled(login(client, alice.email, alice.password))


def test_the_account_is_the_normalized_email(client, alice):
    """Case and surrounding spaces do not buy fresh attempts: the key is the email as login looks it up."""
    variants = [alice.email.upper(), f"  {alice.email}", alice.email.title() + " ", alice.email, alice.email.upper()]
    for email in variants:
        assert_error(login(client, email), 401, "invalid_credentials")
    assert_throttled(login(client, f" {alice.email.swapcase()} "))


def test_an_unknown_email_is_throttled_exactly_like_a_known_one(client, alice):
    """No enumeration through the limiter: the same count, then the same 429."""
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = {}
    for email in (alice.email, unknown):
        answers[email] = [login(client, email) for _ in range(PER_ACCOUNT + 1)]
    for known, other in zip(answers[alice.email], answers[unknown], strict=True):
        known_body, other_body = known.get_json(), other.get_json()
        # retryAfter counts down in whole seconds between the two runs; it may differ by one.
        known_wait = known_body["error"].pop("retryAfter", 0)
        other_wait = other_body["error"].pop("retryAfter", 0)
        assert (known.status_code, known_body) == (other.status_code, other_body)
        assert abs(known_wait - other_wait) <= 1
    assert [r.status_code for r in answers[unknown]] == [401] * PER_ACCOUNT + [429]


# ---- per client address ------------------------------------------------------------------------
def test_login_is_throttled_per_ip_across_accounts(client):
    """Credential stuffing: one try at many accounts is bounded by the per-IP limit."""
    for n in range(PER_IP):
        assert_error(login(client, f"victim{n}@example.com"), 401, "invalid_credentials")
    assert_throttled(login(client, "victim-next@example.com"))
    # Another client is not affected.
    assert_error(login(client, "victim-next@example.com", ip="203.0.113.9"), 401, "invalid_credentials")


@pytest.mark.parametrize(("body", "allowed"), [
    (b"not json", PER_IP), (b"[]", PER_IP), (b'{"email": 5, "password": "x"}', PER_IP),
    (b'{"password": "x"}', PER_IP), (b'{"email": "", "password": ""}', PER_IP),
    # An email that cannot be encoded still has an account key (no 500 from the limiter).
    (b'{"email": "\\ud800@example.com", "password": "lone surrogate"}', PER_ACCOUNT),
], ids=["not-json", "array", "number", "no-email", "blank", "lone-surrogate"])
def test_malformed_login_bodies_count_and_never_fail(client, body, allowed):
    """Junk is refused (400/401/422), never a 500, and still spends the allowance."""
    for _ in range(allowed):
        response = client.post("/api/auth/login", data=body, content_type="application/json")
        assert response.status_code in (400, 401, 422), response.get_data(as_text=True)
    assert_throttled(client.post("/api/auth/login", data=body, content_type="application/json"))


def test_x_forwarded_for_is_not_believed_by_default(client):
    """Without TRUSTED_PROXY_COUNT the client is the TCP peer: a header cannot pick a fresh address."""
    for n in range(PER_IP):
        login(client, f"spoof{n}@example.com", **{"X-Forwarded-For": f"192.0.2.{n}", "X-Real-IP": f"192.0.2.{n}"})
    assert_throttled(login(client, "spoof@example.com", **{"X-Forwarded-For": "192.0.2.250"}))


@pytest.mark.parametrize("settings", [{**REAL_LIMITS, "TRUSTED_PROXY_COUNT": "1"}])
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client):
    """TRUSTED_PROXY_COUNT=1: the last X-Forwarded-For entry (the one our proxy appended)."""
    for n in range(PER_IP):
        login(client, f"proxied{n}@example.com", **{"X-Forwarded-For": "1.2.3.4, 192.0.2.10"})
    assert_throttled(login(client, "proxied@example.com", **{"X-Forwarded-For": "9.9.9.9, 192.0.2.10"}))
    # Another client behind the same proxy has its own allowance; what it claims before the proxy is ignored.
    assert_error(login(client, "proxied@example.com", **{"X-Forwarded-For": "192.0.2.10, 192.0.2.11"}),
                 401, "invalid_credentials")


def test_cors_preflights_do_not_spend_the_allowance(client, alice):
    for _ in range(3 * PER_IP):
        response = client.options("/api/auth/login", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
        assert response.status_code == 200
    assert login(client, alice.email, alice.password).status_code == 200


# ---- registration ----------------------------------------------------------------------------------
def test_registration_is_throttled_per_ip(client):
    def register(n: int, ip: str | None = None):
        return client.post("/api/auth/register", environ_overrides={"REMOTE_ADDR": ip} if ip else {}, json={
            "email": f"signup{n}@example.com", "password": "long enough password", "firstName": "S", "lastName": "U"})

    for n in range(REGISTER_PER_IP):
        assert register(n).status_code == 201
    assert_throttled(register(REGISTER_PER_IP))
    assert register(REGISTER_PER_IP, ip="203.0.113.20").status_code == 201


# ---- Redis --------------------------------------------------------------------------------------------
@pytest.fixture
def private_address():
    """A client address and an email of this test's own; their Redis keys are deleted afterwards."""
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    email = f"redis-{uuid.uuid4().hex}@example.com"
    yield ip, email
    store = redis.Redis.from_url(REDIS_URL)
    account = hashlib.sha256(email.encode()).hexdigest()[:32]
    keys = [*store.scan_iter(f"*taskchat-auth/ip:{ip}/*"), *store.scan_iter(f"*taskchat-auth/account:{account}/*")]
    if keys:
        store.delete(*keys)
    store.close()


def test_with_redis_the_count_is_shared_between_server_processes(database_url, tmp_path, client, private_address):
    """Two apps (two server processes) on one Redis: attempts on either count together."""
    ip, email = private_address
    env = {"APP_ENV": "testing", "DATABASE_URL": database_url, "JWT_SECRET_KEY": "test-secret-" + "x" * 32,
           "ATTACHMENTS_DIR": str(tmp_path / "attachments"), "REDIS_URL": REDIS_URL, **REAL_LIMITS}
    apps = [create_app(env=env), create_app(env=env)]
    try:
        clients = [a.test_client() for a in apps]
        for n in range(PER_ACCOUNT):
            assert_error(login(clients[n % 2], email, ip=ip), 401, "invalid_credentials")
        assert_throttled(login(clients[0], email, ip=ip))
        assert_throttled(login(clients[1], email, ip=ip))
        store = redis.Redis.from_url(REDIS_URL)
        assert list(store.scan_iter(f"*taskchat-auth/ip:{ip}/*")), "nothing was counted in Redis"
        assert not any(email in key.decode() for key in store.scan_iter("*taskchat-auth*")), "emails are hashed"
        store.close()
    finally:
        for a in apps:
            with a.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.mark.parametrize("settings", [{**REAL_LIMITS, "REDIS_URL": "redis://127.0.0.1:1/0"}])
def test_with_redis_down_login_still_works_and_is_still_throttled(client, alice):
    """The limiter counts in memory meanwhile: neither a 500 nor a login without limit."""
    assert login(client, alice.email, alice.password).status_code == 200
    for _ in range(PER_ACCOUNT - 1):
        assert_error(login(client, alice.email), 401, "invalid_credentials")
    assert_throttled(login(client, alice.email))


# ---- no user enumeration -----------------------------------------------------------------------------------
@pytest.mark.parametrize("password", [WRONG, "", "x" * 256])
def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(client, alice, password):
    wrong = login(client, alice.email, password)
    unknown = login(client, f"nobody-{uuid.uuid4().hex[:8]}@example.com", password)
    assert wrong.status_code == unknown.status_code
    assert wrong.get_data() == unknown.get_data(), (wrong.get_json(), unknown.get_json())
    assert sorted(wrong.headers.keys()) == sorted(unknown.headers.keys())
    if password:
        assert_error(wrong, 401, "invalid_credentials")


# ---- password rules (NIST SP 800-63B: length, no composition rules) --------------------------------------------
def register(client, password: str):
    return client.post("/api/auth/register", json={
        "email": f"pw-{uuid.uuid4().hex[:10]}@example.com", "password": password, "firstName": "P", "lastName": "W"})


@pytest.mark.parametrize("password", ["short", "Ab1!Ab1!x", "nine char", "ééééééééé"])
def test_passwords_shorter_than_ten_characters_are_refused(client, password):
    error = assert_error(register(client, password), 422, "validation_error")
    assert set(error["details"]) == {"password"}, error


@pytest.mark.parametrize("password", ["tenletters", "correct horse battery staple", "ÅÄÖ åäö ñ 🐎🐎", "1234567890"])
def test_any_password_of_ten_characters_is_accepted_and_works(client, password):
    """No composition rules: ten lowercase letters will do, so will a passphrase with spaces."""
    response = register(client, password)
    assert response.status_code == 201, response.get_json()
    email = response.get_json()["user"]["email"]
    assert login(client, email, password).status_code == 200
    assert_error(login(client, email, password + "!"), 401, "invalid_credentials")
