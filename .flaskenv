# Development defaults for `flask run`; no secrets here. Settings go in .env (see .env.example).
FLASK_APP=wsgi.py
FLASK_RUN_HOST=${APP_HOST:-127.0.0.1}
FLASK_RUN_PORT=${APP_PORT:-9553}
