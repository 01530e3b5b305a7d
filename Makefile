# LeadFlow: `make run` starts the app, `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint fmt migrate superuser venv deps dev-deps bench bench-speed-to-lead bench-distribution \
	bench-distribution-cpu bench-messaging bench-soak bench-analytics

$(VENV)/bin/activate:
	@command -v $(PYTHON) >/dev/null || { echo "LeadFlow needs Python 3.11 ($(PYTHON) was not found on PATH)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(VENV)/bin/activate

# Reinstall only when the pinned requirements change.
$(VENV)/.requirements.stamp: requirements.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.requirements-dev.stamp: requirements.txt requirements-dev.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.requirements.stamp

deps: $(VENV)/.requirements.stamp
dev-deps: $(VENV)/.requirements-dev.stamp

run: deps
	@bash scripts/ensure_system_libs.sh
	@bash scripts/run.sh

test: dev-deps
	@bash scripts/ensure_services.sh
	@bash scripts/ensure_system_libs.sh
	$(VENV)/bin/ruff check .
	DJANGO_SETTINGS_MODULE=leadflow.settings.test $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: dev-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: deps
	$(PY) manage.py migrate

superuser: deps
	$(PY) manage.py createsuperuser

# A million leads in a `leadflow_bench` database (recreated), then the lead API and the ingest API over HTTP
# (gunicorn, a Celery worker, a load generator); prints the table, writes bench/results.json and bench/RESULTS.md.
# BENCH_LEADS=100000 make bench for a quick run; README § Benchmarks lists the other knobs.
bench: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.run

# Speed to lead: Facebook webhook POST → Graph API stand-in → intake → signed outbound webhook at a loopback
# receiver, 50 leads/s for 60 s (STL_RATE, STL_SECONDS); prints the figures and writes bench/speed_to_lead.json.
bench-speed-to-lead: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.speed_to_lead

# Distribution under load: 8 clients × 10,000 leads (5 % duplicates) over HTTP into campaigns with capped buyers and
# small wallets, checked for lost, double-sold, 5xx, caps, wallets and round-robin fairness; then the p99 an
# ingest pays for distribution into a 50-buyer campaign. Writes bench/distribution.json. DIST_LEADS_PER_CLIENT=300
# for a quick run; README § Benchmarks lists the other knobs.
bench-distribution: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.distribution

# What one distribution into a 50-buyer campaign costs in CPU (Python and PostgreSQL) and SQL statements, in-process on
# a fresh `*_bench` database, per campaign shape: figures a shared machine's noise does not move as it moves a p99.
# Writes bench/distribution_cpu.json. DIST_CPU_LEADS (400) per shape.
bench-distribution-cpu: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.distribution_cpu

# Conversations: signed Twilio webhooks at 50/s → the message event on an open inbox websocket (daphne), and new
# leads → the instant welcome reaching a Twilio stand-in; checked for lost and repeated. Writes bench/messaging.json.
# MSG_SECONDS=10 WELCOME_SECONDS=10 for a quick run; README § Benchmarks lists the other knobs.
bench-messaging: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.messaging

# Soak: supplier ingest into capped campaigns (20/s, 5 % duplicates) with buyers' signed webhooks, Facebook leadgen
# webhooks (2/s) and inbound Twilio SMS to an agent's open inbox (10/s), all at once for SOAK_SECONDS (600) on
# gunicorn, daphne, a Celery worker and beat; checked for lost leads, messages and deliveries, 5xx, latency per minute
# and flat memory. Writes bench/soak.json, exits 1 on a failed check. SOAK_SECONDS=60 SOAK_WARMUP_SECONDS=20 to try it.
bench-soak: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.soak
# Analytics: a million leads (plus routings, sales, returns, submissions and messages in proportion) in a fresh
# *_bench database, the rollups built, then every report timed with varied ranges and filters (selector and API,
# p50/p95/p99). Writes bench/analytics.json; exits 1 when a report's p95 exceeds 100 ms. BENCH_LEADS=100000 for a
# quick run.
bench-analytics: deps
	@bash scripts/ensure_services.sh
	$(PY) -m bench.analytics
