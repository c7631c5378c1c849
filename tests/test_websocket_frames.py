"""gevent-websocket's reading of a client's frame, as the gunicorn worker runs it
(app/patches.py): the unmasking in one step gives the bytes of the
library's own loop, for every length and mask."""
from __future__ import annotations

import os
import random

import pytest

websocket = pytest.importorskip("geventwebsocket.websocket")

from app.patches import _unmask_in_one_step  # noqa: E402 (only where gevent-websocket is installed)


class _Header(websocket.Header):
    """A copy of the class to patch, so the library's own loop stays to compare with."""


_unmask_in_one_step(_Header)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 125, 126, 127, 1000, 65536, 65537])
def test_the_unmasked_payload_is_the_librarys(size):
    rng = random.Random(size)
    for _ in range(5):
        mask, payload = rng.randbytes(4), rng.randbytes(size)
        theirs, ours = websocket.Header(), _Header()
        theirs.mask = ours.mask = mask
        theirs.length = ours.length = size
        expected = bytes(theirs.unmask_payload(payload))
        assert bytes(ours.unmask_payload(payload)) == expected
        assert bytes(ours.mask_payload(expected)) == payload  # masking is the same XOR


def test_text_frames_are_checked_by_the_c_validator():
    """gevent-websocket takes wsaccel's validator when it is installed (requirements.txt)."""
    from geventwebsocket.utf8validator import Utf8Validator

    assert Utf8Validator.__module__.startswith("wsaccel")
    validator = Utf8Validator()
    assert validator.validate("héllo 🎉".encode())[0]
    validator.reset()
    assert not validator.validate(b"\xff\xfe" + os.urandom(2))[0]
