"""The per-user moving windows behind `throttle.check`, through `check` itself on an app
of the fixtures: refusal at the limit, the retryAfter it carries, the window sliding,
several limits per kind, users and kinds counted apart, memory that stays bounded, and
no `limits` memory storage (its timer rescans every key) without Redis.

The in-memory windows read their clock from `windows.clock`; the tests hand them one
they move by hand, so that a minute passes at once. The same behaviour is checked on
Redis (real time) where the test does not need to move time, and against the `limits`
library's own memory storage on random traffic.
"""
from __future__ import annotations

import random
import threading
import types
import uuid

import pytest
import redis
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app.actor import Actor
from app.errors import RateLimited
from app.realtime import throttle
from toolkit.env import REDIS_URL, limited

ALICE, BOB = Actor(id=1, name="Alice"), Actor(id=2, name="Bob")


class Clock:
    """Seconds that pass only when told."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(app) -> Clock:
    counter = app.extensions["taskchat_throttle"]
    assert isinstance(counter, throttle.MemoryThrottle)
    counter.windows.clock = clock = Clock()
    return clock


def hit(actor: Actor, kind: str = "messages") -> int | None:
    """None when counted; else the refusal's retryAfter (whole seconds, as clients get it)."""
    try:
        throttle.check(actor, kind)
    except RateLimited as refused:
        assert refused.code == "rate_limited" and refused.status == 429
        return refused.retry_after
    return None


def allowed(actor: Actor, n: int, kind: str = "messages") -> None:
    for i in range(n):
        assert hit(actor, kind) is None, f"hit {i + 1} of {n} was refused"


# ---- one limit -----------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="3/minute")])
def test_the_hit_past_the_amount_is_refused_until_the_oldest_leaves(app, clock):
    with app.app_context():
        allowed(ALICE, 1)
        clock.advance(10)
        allowed(ALICE, 1)
        clock.advance(10)
        allowed(ALICE, 1)
        clock.advance(10)  # hits at 0, 10 and 20 s; now 30 s
        assert hit(ALICE) == 30  # the hit at 0 leaves at 60
        clock.advance(29.5)
        assert hit(ALICE) == 1  # 0.5 s, rounded up
        clock.advance(0.5)
        assert hit(ALICE) == 1  # exactly 60 s old still counts (as in `limits`); never 0
        clock.advance(0.001)
        allowed(ALICE, 1)  # the window slid past the first hit
        assert hit(ALICE) == 10  # the next to leave: the hit at 10 s, at 70 s
        clock.advance(60.01)
        allowed(ALICE, 3)
        assert hit(ALICE) == 60


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="2/minute")])
def test_refused_hits_do_not_count(app, clock):
    with app.app_context():
        allowed(ALICE, 2)
        for _ in range(50):  # hammering while refused does not push the window on
            clock.advance(1)
            assert hit(ALICE) is not None
        clock.advance(10.01)
        allowed(ALICE, 2)


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="4/second")])
def test_the_window_slides_rather_than_resets(app, clock):
    """Not a fixed window: 4 at the end of one second and 4 at the start of the next are
    not 8 within a second."""
    with app.app_context():
        clock.advance(0.9)
        allowed(ALICE, 4)
        clock.advance(0.2)  # into the next second of the wall clock
        assert hit(ALICE) == 1
        clock.advance(0.81)
        allowed(ALICE, 4)
        assert hit(ALICE) == 1


# ---- several limits per kind ---------------------------------------------------------------
@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="2/second;5/minute")])
def test_every_limit_of_a_kind_applies(app, clock):
    with app.app_context():
        allowed(ALICE, 2)
        assert hit(ALICE) == 1  # the second's limit
        clock.advance(1.5)
        allowed(ALICE, 2)
        clock.advance(1.5)
        allowed(ALICE, 1)  # five within the minute
        clock.advance(1.5)
        assert hit(ALICE) == 56  # the minute's limit: its first hit leaves at 60 s, now 4.5 s
        clock.advance(55.6)
        allowed(ALICE, 2)  # the two at 0 s left, others not yet
        assert hit(ALICE) == 1  # per second again
        clock.advance(1.01)
        assert hit(ALICE) == 1  # per minute: the hits at 1.5 s leave at 61.5 s, now 61.11 s


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="2/second;3/minute")])
def test_a_hit_refused_by_a_later_limit_still_counts_in_the_earlier(app, clock):
    """As `limits` hits the items one after the other: the first had counted it already."""
    with app.app_context():
        allowed(ALICE, 2)
        clock.advance(1.5)
        allowed(ALICE, 1)  # three within the minute
        clock.advance(1.5)
        assert hit(ALICE) == 57  # refused by the minute, counted by the second
        clock.advance(0.1)
        assert hit(ALICE) == 57  # likewise: the second's limit now holds two
        clock.advance(0.1)
        assert hit(ALICE) == 1  # refused by the second's limit


# ---- users and kinds -----------------------------------------------------------------------
@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="2/minute", RATE_LIMIT_TYPING="3/minute")])
def test_users_and_kinds_are_counted_apart(app, clock):
    with app.app_context():
        allowed(ALICE, 2, "messages")
        assert hit(ALICE, "messages") == 60
        allowed(BOB, 2, "messages")
        allowed(ALICE, 3, "typing")
        assert hit(ALICE, "typing") == 60
        allowed(ALICE, 1000, "joins")
        allowed(ALICE, 1000, "other")
        assert hit(ALICE, "joins") == 60 and hit(ALICE, "other") == 60
        assert hit(BOB, "messages") == 60
        allowed(BOB, 3, "typing")


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="100/minute")])
def test_concurrent_hits_of_one_user_are_counted_exactly(app):
    """Threading mode (`flask run`, tests): many threads, one user, exactly the amount passes."""
    results: list[int | None] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker():
        with app.app_context():
            start.wait()
            mine = [hit(ALICE) for _ in range(40)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 100 and len(results) == 320


# ---- memory --------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="5/minute;50/hour", RATE_LIMIT_TYPING="5/minute")])
def test_memory_holds_only_the_users_active_within_the_longest_window(app, clock):
    counter = app.extensions["taskchat_throttle"].windows
    with app.app_context():
        # 20,000 users each typing once, one every 10 ms: 6,000 within any minute.
        most = 0
        for user in range(100, 20_100):
            hit(Actor(id=user, name="u"), "typing")
            clock.advance(0.01)
            most = max(most, len(counter))
        assert 6_000 <= most <= 6_001
        # Everyone goes quiet; a few hits later the idle are gone, with no timer.
        clock.advance(60.1)
        for _ in range(1_600):
            hit(ALICE, "typing")
        assert len(counter) == 1

        # Messages are also limited per hour: kept for the hour, then dropped.
        for user in range(100, 1_100):
            hit(Actor(id=user, name="u"), "messages")
        clock.advance(61)
        for _ in range(300):
            hit(BOB, "messages")
        assert len(counter) == 1 + 1_000 + 1  # Alice's typing (not yet dropped), the hour's users, Bob
        clock.advance(3600)
        for _ in range(300):
            hit(BOB, "messages")
        assert len(counter) == 2  # Bob's messages; Alice's typing waits for a typing hit
        hit(BOB, "typing")
        assert len(counter) == 2


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="3/minute")])
def test_a_hammering_user_holds_no_more_than_the_amount(app, clock):
    counter = app.extensions["taskchat_throttle"].windows
    with app.app_context():
        for _ in range(10_000):
            hit(ALICE)
            clock.advance(0.001)
    stamps = counter._entries["messages"][ALICE.id].stamps
    assert [len(s) for s in stamps] == [3]


def test_without_redis_no_limits_memory_storage_is_made(app, monkeypatch):
    """Its timer thread, which rescans every key every 10 ms, starts with its first use."""
    made = []
    make = MemoryStorage.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        make(self, *args, **kwargs)

    monkeypatch.setattr(MemoryStorage, "__init__", counting)
    throttle.init_app(app)
    with app.app_context():
        allowed(ALICE, 10)
        allowed(BOB, 10, "typing")
    assert made == []
    assert isinstance(app.extensions["taskchat_throttle"], throttle.MemoryThrottle)


# ---- the same as `limits` ------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "settings", [limited(RATE_LIMIT_MESSAGES="3/second;7/minute", RATE_LIMIT_TYPING="4/10 seconds")],
)
def test_random_traffic_gets_the_answers_of_the_limits_library(app, clock, monkeypatch, seed):
    """The reference: `limits`' MovingWindowRateLimiter on its memory storage, as this
    module used before, on the same clock."""
    fake_time = types.SimpleNamespace(time=clock)
    monkeypatch.setattr("limits.storage.memory.time", fake_time)
    reference = MovingWindowRateLimiter(MemoryStorage())
    items = {kind: parse_many(app.config[setting]) for kind, setting in throttle.KINDS.items()}

    def expected(actor: Actor, kind: str) -> int | None:
        for item in items[kind]:
            if not reference.hit(item, kind, str(actor.id)):
                reset_at = reference.get_window_stats(item, kind, str(actor.id)).reset_time
                return RateLimited(reset_at - clock()).retry_after
        return None

    rng = random.Random(seed)
    users = [Actor(id=n, name="u") for n in range(3)]
    answers = []
    with app.app_context():
        for _ in range(3_000):
            clock.advance(rng.expovariate(4.0))
            actor, kind = rng.choice(users), rng.choice(("messages", "typing"))
            answers.append(hit(actor, kind))
            assert answers[-1] == expected(actor, kind), len(answers)
    assert None in answers and any(answers)  # both answers were given, often


# ---- Redis ---------------------------------------------------------------------------------
@pytest.fixture
def redis_app(app):
    """The app counting in Redis under a key prefix of this test's own (deleted afterwards)."""
    store = redis.Redis.from_url(REDIS_URL)
    try:
        store.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at " + REDIS_URL)
    prefix = f"taskchat-test-windows-{uuid.uuid4().hex}"
    app.config.update(REDIS_URL=REDIS_URL, RATE_LIMIT_KEY_PREFIX=prefix)
    throttle.init_app(app)
    yield app
    keys = list(store.scan_iter(f"{prefix}*"))
    if keys:
        store.delete(*keys)
    store.close()


@pytest.mark.parametrize("settings", [limited(RATE_LIMIT_MESSAGES="3/minute;5/hour", RATE_LIMIT_TYPING="2/minute")])
def test_with_redis_the_same_limits_apply(redis_app):
    assert isinstance(redis_app.extensions["taskchat_throttle"], throttle.RedisThrottle)
    with redis_app.app_context():
        allowed(ALICE, 3)
        assert hit(ALICE) in (59, 60)
        allowed(BOB, 3)
        allowed(ALICE, 2, "typing")
        assert hit(ALICE, "typing") in (59, 60)
        allowed(BOB, 2, "typing")
