# Every target bootstraps .venv itself, so `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py

.PHONY: run test lint serve-prod migrate clean bench bench-baseline

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/flask db upgrade

## Development server: flask run on APP_PORT (9553), SQLite at instance/taskchat.db unless DATABASE_URL says otherwise.
run: migrate
	$(BIN)/flask run

## The test suite (SQLite unless DATABASE_URL names another database).
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The linters, as CI runs them (settings in pyproject.toml): ruff on all the Python code,
## mypy on app/, and import-linter's contracts between the packages of app/.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

## Production server, as it runs in production (gevent-websocket worker).
serve-prod: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## The benchmark of issue 9: product vs floor vs the Node original (PostgreSQL and Node.js needed).
## Writes bench/RESULTS.md, bench/ratios.png, bench/results.json. BENCH_ARGS="--quick" for a short run;
## see `.venv/bin/python bench/run.py --help` for the rest (--only, --scenarios, --rounds, --product-dir).
$(VENV)/.installed-bench: requirements.txt requirements-bench.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

bench/loadgen/node_modules/.installed: bench/loadgen/package.json bench/loadgen/package-lock.json
	cd bench/loadgen && npm ci --no-audit --no-fund
	touch $@

bench: $(VENV)/.installed-bench bench/loadgen/node_modules/.installed
	$(BIN)/python bench/run.py --profile $(BENCH_ARGS)

## The same against another commit (a git worktree of BASELINE_REF), kept in bench/baseline/.
BASELINE_REF ?= HEAD
BASELINE_DIR ?= /tmp/taskchat-baseline
bench-baseline: $(VENV)/.installed-bench bench/loadgen/node_modules/.installed
	test -d $(BASELINE_DIR) || git worktree add --detach $(BASELINE_DIR) $(BASELINE_REF)
	$(BIN)/python bench/run.py --profile --save-baseline --scenarios S1,S2 --product-dir $(BASELINE_DIR) \
		--product-venv $(VENV) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
