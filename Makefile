# Termin's developer commands. The README opens with the two that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 8000
# Tests reach PostgreSQL as postgres over TCP; the password only matters where trust auth is off.
TEST_DATABASE_URL ?= postgresql+psycopg://postgres:postgres@127.0.0.1:5432/termin_test
T ?= tests
# pytest-xdist workers: one per core (each gets its own databases and Redis; tests/conftest.py names them).
# -n 0 runs in this process, as plain pytest does.
N ?= auto

.PHONY: help run test lint fmt install assets services translations translations-update db-upgrade db-revision db-check shell clean worker sweeper

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Front-end files with content hashes in their names (app/web/assets.py): production serves these and needs
# no npm at run time. Rebuilt when a source changes.
ASSET_SOURCES := static/css/app.css static/css/booking.css static/js/app.js static/js/booking.js static/js/copy.js static/img/favicon.svg node_modules/.package-lock.json
static/dist/manifest.json: $(VENV)/.installed $(ASSET_SOURCES) app/web/assets.py
	$(BIN)/python scripts/build_assets.py

assets: static/dist/manifest.json ## build the hashed front-end files into static/dist/

install: $(VENV)/.installed node_modules/.package-lock.json translations assets ## create .venv, node_modules and static/dist when missing

translations: $(VENV)/.installed ## compile the Polish (and any other) message catalogues
	$(BIN)/pybabel compile --statistics -d translations

run: install ## serve the embedded demo (SQLite, jobs in-process, local Radicale) on http://app.localhost:8000
	$(FLASK) db upgrade
	$(FLASK) demo-calendar start
	PORT=$(PORT) TERMIN_PUBLIC_PORT=$(PORT) $(FLASK) seed-demo
	@# Plain shell in the trap: starting Python while the terminal's Ctrl+C tears things down is not reliable.
	trap 'kill $$(cat instance/radicale/pid 2>/dev/null) 2>/dev/null; rm -f instance/radicale/pid' EXIT INT TERM; \
		TERMIN_PUBLIC_PORT=$(PORT) $(FLASK) run --host 127.0.0.1 --port $(PORT)

services: ## start PostgreSQL and Redis (installing them, Node.js and Chromium when missing)
	bash scripts/services.sh

test: services install ## ruff, then pytest on PostgreSQL in parallel (T=path for a subset, N=workers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TERMIN_TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -n $(N) --dist loadfile $(T)

lint: $(VENV)/.installed ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fmt: $(VENV)/.installed ## format and fix what ruff can
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

db-upgrade: install ## migrate the database DATABASE_URL names (default: the demo's SQLite)
	$(FLASK) db upgrade

db-revision: install ## new migration from the models: make db-revision m="add tenant domains"
	$(FLASK) db revision --autogenerate -m "$(m)"

db-check: install ## fail when the models and the migrations disagree
	$(FLASK) db check

shell: install ## a Flask shell in the app context
	$(FLASK) shell

clean: ## remove the virtualenv, node_modules and the demo's instance/ data
	rm -rf $(VENV) node_modules instance

translations-update: $(VENV)/.installed ## extract marked strings and merge them into every catalogue
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations

# Two processes, two commands (two systemd units in deploy/): a worker that dies never takes the sweeper
# with it, nor the other way round. Run each in its own terminal.
worker: install ## the RQ worker in the foreground (REDIS_URL, DATABASE_URL set); run `make sweeper` beside it
	$(FLASK) worker

sweeper: install ## the sweeper in the foreground (REDIS_URL, DATABASE_URL set): queues again what is due
	$(FLASK) sweep

# The sync benchmark's throwaway database: recreated, migrated and dropped by the script.
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres:postgres@127.0.0.1:5432/termin_bench

.PHONY: bench
bench: services install ## sync ingest benchmark (Google emulator, Radicale; ~8 min); figures in docs/benchmarks.md
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/sync_ingest.py

.PHONY: bench-slots
bench-slots: $(VENV)/.installed ## slot engine vs the minute-grid oracle (pure Python, ~2 min); figures in docs/benchmarks.md
	$(BIN)/python bench/slots.py

.PHONY: bench-race
bench-race: services install ## 50 clients x 200 rounds booking one slot over HTTP (gunicorn; ~2 min); docs/benchmarks.md
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/race.py

.PHONY: bench-race-teams
bench-race-teams: services install ## the race on a 3-member round-robin page (3 x 201 a round) and a group page (1 x 201)
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/race.py --mode round-robin --rounds 50
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/race.py --mode group --rounds 50

.PHONY: bench-team-slots
bench-team-slots: $(VENV)/.installed ## 10 members x 2,000 busy events: team p95 vs one member (pure Python); docs/benchmarks.md
	$(BIN)/python bench/team_slots.py

.PHONY: bench-memory
bench-memory: services install ## RSS and PSS of a web worker vs a bare Flask hello (gunicorn.conf.py; ~1 min)
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/memory.py

.PHONY: bench-widget
bench-widget: services install ## chat widget: script size, visitor message -> Inbox latency (gunicorn; ~6 min); docs/benchmarks.md
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/widget.py

# Needs wrk, which it does not install: `apt-get install -y wrk` first (it stops and says so otherwise).
.PHONY: bench-page
bench-page: services install ## the public page vs a bare Flask hello under wrk (gunicorn; ~3 min); docs/benchmarks.md
	TERMIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/page.py
