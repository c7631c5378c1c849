"""Group commit (app/batches.py): requests that arrive while a batch runs go
together as the next one, and each caller gets its own answer.

Driven by real threads (the `flask run` server's concurrency); the batch function
is the test's own, so a test can hold a batch open while others arrive.
"""
from __future__ import annotations

import threading
import time

import pytest

from app.batches import Batcher

WAIT = 5  # seconds: a bound on every wait, never reached when all is well


class Held:
    """A batch function that records every batch and holds the first one open
    until the test lets it go."""

    def __init__(self, answer=lambda item: item * 10):
        self.batches: list[list] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.answer = answer

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(WAIT)
        return [self.answer(item) for item in items]


def submit_in_threads(batcher: Batcher, items: list) -> tuple[dict, list[threading.Thread]]:
    """Each item submitted from its own thread; answers (or errors) by item."""
    answers: dict = {}

    def call(item):
        try:
            answers[item] = batcher.submit(item)
        except Exception as error:  # the test reads it
            answers[item] = error

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return answers, threads


def queued(batcher: Batcher, count: int) -> None:
    """Until `count` requests wait for the next batch."""
    deadline = time.monotonic() + WAIT
    while len(batcher._pending) < count:
        assert time.monotonic() < deadline, f"{len(batcher._pending)} of {count} requests queued"
        time.sleep(0.001)


def finish(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


def behind_a_held_batch(batcher: Batcher, run: Held, first, later: list) -> dict:
    """`first` runs alone and is held; `later` queue behind it; then all finish.
    The answers of `later`, by item."""
    _, first_threads = submit_in_threads(batcher, [first])
    assert run.first_started.wait(WAIT)
    answers, threads = submit_in_threads(batcher, later)
    queued(batcher, len(later))
    run.release.set()
    finish(first_threads + threads)
    return answers


def test_a_request_alone_runs_at_once_as_a_batch_of_one():
    run = Held()
    run.release.set()
    batcher = Batcher(run, key=lambda item: item, max_size=10, in_flight=1)
    assert batcher.submit(4) == 40
    assert run.batches == [[4]] and batcher.sizes == {1: 1}


def test_requests_that_arrive_while_a_batch_runs_go_together_as_the_next():
    run = Held()
    batcher = Batcher(run, key=lambda item: item, max_size=10, in_flight=1)
    first, first_threads = submit_in_threads(batcher, [1])
    assert run.first_started.wait(WAIT)
    answers, threads = submit_in_threads(batcher, [2, 3, 4, 5])
    queued(batcher, 4)
    assert run.batches == [[1]], "nothing else runs while the only turn is taken"
    run.release.set()
    finish(first_threads + threads)
    assert first == {1: 10} and answers == {2: 20, 3: 30, 4: 40, 5: 50}
    assert run.batches[0] == [1] and sorted(run.batches[1]) == [2, 3, 4, 5] and len(run.batches) == 2


def test_a_second_turn_runs_beside_the_first():
    run = Held()
    batcher = Batcher(run, key=lambda item: item, max_size=10, in_flight=2)
    _, first_threads = submit_in_threads(batcher, [1])
    assert run.first_started.wait(WAIT)
    assert batcher.submit(2) == 20
    assert first_threads[0].is_alive(), "with two turns, a request does not wait for the held batch"
    run.release.set()
    finish(first_threads)


def test_requests_with_the_same_key_never_share_a_batch():
    run = Held()
    batcher = Batcher(run, key=lambda item: item % 2, max_size=10, in_flight=1)
    answers = behind_a_held_batch(batcher, run, 0, [2, 4, 3])
    assert answers == {2: 20, 4: 40, 3: 30}
    for batch in run.batches:
        assert len({item % 2 for item in batch}) == len(batch), run.batches


def test_a_batch_is_at_most_max_size_and_the_rest_follow():
    run = Held()
    batcher = Batcher(run, key=lambda item: item, max_size=2, in_flight=1)
    answers = behind_a_held_batch(batcher, run, 0, [1, 2, 3, 4, 5])
    assert answers == {i: i * 10 for i in range(1, 6)}
    assert [len(batch) for batch in run.batches] == [1, 2, 2, 1]


def test_an_error_answered_for_one_item_reaches_its_caller_alone():
    refused = ValueError("not this one")
    run = Held(answer=lambda item: refused if item == 3 else item * 10)
    batcher = Batcher(run, key=lambda item: item, max_size=10, in_flight=1)
    answers = behind_a_held_batch(batcher, run, 1, [2, 3, 4])
    assert answers == {2: 20, 3: refused, 4: 40}


def test_an_error_of_the_batch_reaches_every_caller_of_that_batch_and_no_other():
    def run(items):
        if 13 in items:
            raise RuntimeError("the database is gone")
        return [item for item in items]

    batcher = Batcher(run, key=lambda item: item, max_size=10, in_flight=1)
    with pytest.raises(RuntimeError, match="the database is gone"):
        batcher.submit(13)
    assert batcher.submit(7) == 7, "the next batch runs as usual"


def test_answers_that_do_not_match_the_batch_are_an_error_not_a_wrong_answer():
    batcher = Batcher(lambda items: [], key=lambda item: item, max_size=10, in_flight=1)
    with pytest.raises(RuntimeError, match="0 results for a batch of 1"):
        batcher.submit(1)
