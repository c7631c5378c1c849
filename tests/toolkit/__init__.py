"""The tests' toolkit: the helpers that more than one test module uses, each in one place.

pytest.ini puts tests/ on sys.path (`pythonpath = tests`), so test modules import
these as `from toolkit.sockets import join`, under pytest's default import mode and
under `--import-mode=importlib` alike. Helpers that need the app or its test client
reach tests through the fixtures of tests/conftest.py (`chat`, `socket`, `room_of`,
…); the plain functions and constants here are imported where they are used.

- users.py: the user record the fixtures and the live servers' API make.
- env.py: the settings a test app is made with (and shared setting sets).
- database.py: the tables, emptying them, and reading what is stored.
- rest.py: REST answers: the one error shape.
- notices.py: the notifications of being added to a task, told apart from mentions.
- sockets.py: Flask-SocketIO test clients on `/tasks` or `/`: emit, join, send, events.
- chat.py: the chat over REST, as one client sends, uploads and reads it.
- wire.py: the keys of the JSON the API answers with.
"""
