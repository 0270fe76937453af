# The project's vocabulary: make run | test | lint | bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[testing]"
	touch $(STAMP)

## run: serve the API on http://127.0.0.1:6543 over SQLite (migrated, with demo data)
run: $(STAMP)
	$(BIN)/alembic -c development.ini upgrade head
	$(BIN)/booknexus-demo-data development.ini
	$(BIN)/pserve development.ini

## test: the whole suite, on SQLite and PostgreSQL, on every core (pytest-xdist)
test: $(STAMP)
	$(BIN)/pytest -n auto tests $(PYTEST_ARGS)

## test-fast: the functional suite alone, without real servers, races, fuzzing or big data
test-fast: $(STAMP)
	$(BIN)/pytest -n auto -m "not slow" tests $(PYTEST_ARGS)

## bench: ratios against same-run baselines on PostgreSQL; prints a table, writes bench/results.json
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check --select E,F,I,W,B,UP --line-length 110 --per-file-ignores "tests/*:E501" --per-file-ignores "alembic/versions/*:E501" booknexus tests alembic
	$(BIN)/ruff format --check --line-length 110 booknexus tests alembic
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info booknexus.sqlite
