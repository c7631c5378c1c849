"""The tests' toolkit: the helpers that more than one test module uses, each in one place.

pytest.ini puts tests/ on sys.path (`pythonpath = tests`), so test modules import
these as `from toolkit.sockets import join`, under pytest's default import mode and
under `--import-mode=importlib` alike. Helpers that need the app or its test client
reach tests through the fixtures of tests/conftest.py (`chat` is a chat.Chat on the
test's client; `connect` and `room_of` answer sockets.Peer); the plain functions and
constants here are imported where they are used. The live servers of the end-to-end
tests, and their clients, are in tests/e2e/live.py (`from e2e.live import …`).

- users.py: the user record the fixtures and the live servers' API make.
- env.py: the settings a test app is made with, and sets of settings tests share.
- database.py: the tables, emptying them, a snapshot of what is stored, the dialect.
- rest.py: REST: the one error shape; the members URL.
- notices.py: the notifications of being added to a task, told apart from mentions.
- sockets.py: Flask-SocketIO test clients on `/tasks` or `/`: emit, join, send, events, Peer.
- chat.py: the chat over REST (send, upload, history, edit, react, …) as one client does it.
- wire.py: what the API answers with: the keys of its JSON, its errors, its times.
"""
