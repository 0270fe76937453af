# The project's vocabulary: make run | test | lint | bench | lock
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# exact versions of everything installed, generated from setup.py by pip-tools (make lock)
LOCK := requirements.lock
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra testing --strip-extras \
	--no-emit-index-url --no-emit-find-links

.PHONY: run test test-fast lint lock lock-check bench bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): setup.py $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## lock: refresh requirements.lock after a change to setup.py (keeps every pin that still fits)
lock: | $(BIN)/python
	$(BIN)/pip install --quiet "pip-tools>=7.4"
	$(PIP_COMPILE) --output-file $(LOCK) setup.py

## lock-check: fail if requirements.lock is out of date with setup.py (CI runs it)
lock-check: $(STAMP)
	cp $(LOCK) $(VENV)/lock-check.txt
	$(PIP_COMPILE) --output-file $(VENV)/lock-check.txt setup.py
	diff -u $(LOCK) $(VENV)/lock-check.txt || (echo "requirements.lock is out of date with setup.py: run make lock" && exit 1)

## run: serve the API on http://127.0.0.1:6543 over SQLite (migrated, with demo data)
run: $(STAMP)
	$(BIN)/alembic -c development.ini upgrade head
	$(BIN)/booknexus-demo-data development.ini
	$(BIN)/pserve development.ini

# axe-core for the browser tests, pinned by tests/browser/package-lock.json (no CDN)
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --silent

## test: the whole suite, on SQLite and PostgreSQL, on every core (pytest-xdist); the browser
## tests drive Debian's Chromium (apt-get install chromium)
test: $(STAMP) $(AXE)
	$(BIN)/pytest -n auto tests $(PYTEST_ARGS)

## test-fast: the functional suite alone, without real servers, races, fuzzing or big data
test-fast: $(STAMP)
	$(BIN)/pytest -n auto -m "not slow" tests $(PYTEST_ARGS)

## bench: ratios against same-run baselines on PostgreSQL; prints a table, writes bench/results.json
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	$(BIN)/python bench/run.py

## bench-scale: the items upgrade (0016 -> head) at 1,000,000 books / 5,000,000 loans and a book's
## availability at 1,000,000 books x 3 items against 1,000: too long for make bench
bench-scale: $(STAMP)
	BENCH_ONLY=bench_items_upgrade,bench_book_availability BENCH_ITEMS_BOOKS=1000000 $(BIN)/python bench/run.py

## lint: ruff (lint and format) and import-linter's layers, all configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check booknexus tests alembic bench
	$(BIN)/ruff format --check booknexus tests alembic bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info booknexus.sqlite
