"""The WSGI entry point: `flask run` in development, gunicorn in production.

Under gunicorn's gevent-websocket worker, gevent has already monkey-patched
the standard library before this module is imported (gunicorn.conf.py patches
first, as the worker would); then Socket.IO must use gevent too.
"""
from app import create_app


def _running_under_gevent() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


app = create_app({"SOCKETIO_ASYNC_MODE": "gevent"} if _running_under_gevent() else None)
