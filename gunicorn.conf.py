"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

One gevent-websocket worker per process; run several processes behind a load
balancer with sticky sessions. gevent patches the standard library first, so
that everything imported after it (psycopg, SQLAlchemy's pool, the app)
cooperates with gevent.
"""
import os

# gevent records, for every greenlet it starts, the greenlet that started it and
# the first frames of its stack, for debugging. Socket.IO starts a greenlet per
# event (here, per connection with events waiting): that stack walk alone took
# several percent of the worker's CPU under load. Read when gevent is imported.
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")

from gevent import monkey

monkey.patch_all()

from dotenv import load_dotenv  # noqa: E402

load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"))

import resource  # noqa: E402
import sys  # noqa: E402

from app.config import ConfigError, load_config  # noqa: E402

try:
    _settings = load_config()
except ConfigError as err:
    sys.exit(f"taskchat: refusing to start: {err}")

worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
workers = 1  # Socket.IO keeps per-process state; scale with processes, not workers
worker_connections = _settings["WORKER_CONNECTIONS"]

# Every open socket is a file descriptor; the usual soft limit (1024) would refuse
# connections long before WORKER_CONNECTIONS. Raise the soft limit as far as the
# hard limit allows (the hard limit is the operator's: `ulimit -Hn`, LimitNOFILE=).
_wanted_files = worker_connections + 256  # sockets, plus the database pool, logs and listeners
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft != resource.RLIM_INFINITY and _soft < _wanted_files:
    _raised = _wanted_files if _hard == resource.RLIM_INFINITY else min(_wanted_files, _hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (_raised, _hard))
    if _raised < _wanted_files:
        print(f"taskchat: open-files limit {_raised} is below WORKER_CONNECTIONS + 256 ({_wanted_files}); "
              "raise the hard limit (ulimit -Hn, LimitNOFILE=) to hold that many sockets", file=sys.stderr)

bind = f"{_settings['APP_HOST']}:{_settings['APP_PORT']}"
timeout = 60
graceful_timeout = 10
keepalive = 5
# gunicorn 27 shares one control socket (~/.gunicorn/gunicorn.ctl) between every
# instance of a user; with several processes per host they would take it from each other.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = "info"


def post_worker_init(worker):  # noqa: ARG001 (gunicorn's hook signature)
    """Python's cycle collector, tuned for a server that holds thousands of sockets.

    With the default thresholds (700, 10, 10) a busy worker ran a full collection,
    which walks every object of every open connection, every few hundred messages:
    measured, about a seventh of the worker's CPU under S1 (bench/RESULTS.md). What
    the app built at start is frozen out of collections for good, and the young
    generation is collected every 50,000 allocations instead of 700; cycles are still
    collected, a little later."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
