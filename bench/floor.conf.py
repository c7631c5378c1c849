"""gunicorn settings of the floor server: the product's worker (gunicorn.conf.py), no app settings."""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
workers = 1
worker_connections = int(os.environ.get("WORKER_CONNECTIONS") or 10000)
bind = f"{os.environ.get('APP_HOST', '127.0.0.1')}:{os.environ.get('APP_PORT', '9701')}"
timeout = 60
graceful_timeout = 10
keepalive = 5
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = "info"
