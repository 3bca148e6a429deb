# The README's two commands: `make run` (the sandbox on its embedded SQLite default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smki demo
	$(BIN)/smki serve --host 127.0.0.1 --port 8080

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

browser:
	bash scripts/ensure-browser.sh

test-sqlite: $(STAMP) browser
	$(BIN)/pytest -q

test-postgres: $(STAMP) browser
	SMKI_TEST_POSTGRES_URL=$(PG_TEST_URL) $(BIN)/pytest -q

test: lint test-sqlite

# The served service over HTTP against issue 12's targets (docs/benchmarks.md); BENCH_ARGS=--quick for a short
# run, BENCH_ARGS="--postgres $(PG_TEST_URL)" on PostgreSQL. Every benchmark at quick size: python -m bench.
bench: $(STAMP)
	$(BIN)/python -m bench.served $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
