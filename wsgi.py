"""The WSGI entry point: `flask run` in development, gunicorn in production.

Under gunicorn, gunicorn.conf.py has monkey-patched the standard library with
gevent before this module is imported; Socket.IO must then use gevent too.
`flask run` leaves it unpatched and Socket.IO runs on threads.
"""
import sys

from app import create_app, patches
from app.config import ConfigError


def _running_under_gevent() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


try:
    if _running_under_gevent():
        patches.wait_for_psycopg_on_gevent()  # psycopg waits for the server on a gevent watcher
    app = create_app({"SOCKETIO_ASYNC_MODE": "gevent"} if _running_under_gevent() else None)
except ConfigError as err:
    sys.exit(f"taskchat: refusing to start: {err}")
