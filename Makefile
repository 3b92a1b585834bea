# The README's commands. `make up` runs the platform; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help prerequisites install infra up credentials down status logs migrate lint format test test-fast bench bench-tools profile classify-report clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

prerequisites:  ## check (and, as root on Debian, install) Java, Maven, PostgreSQL, Python
	@bash deploy/local/prerequisites.sh

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: prerequisites $(VENV)/.installed  ## create .venv with the project and its dev tools

infra: install  ## start Postgres and Kafka, provision roles/schemas, migrate, create topics
	@bash deploy/local/postgres.sh up
	@bash deploy/local/kafka.sh up
	@$(PY) -m services init

up: infra  ## run the whole platform in the background and say where it is
	@PYTHON=$(PY) bash deploy/local/services.sh up
	@echo "development credentials (.run/dev-credentials.json; load them: eval \"\$$(make -s credentials)\"):"
	@$(PY) -m services access dev | sed 's/^/  /'

credentials: install  ## print the development keys and agent account as shell exports (made if missing)
	@$(PY) -m services access dev

down:  ## stop the services, Kafka and (if we started it) Postgres
	@bash deploy/local/services.sh down
	@bash deploy/local/kafka.sh down
	@bash deploy/local/postgres.sh down

status:  ## what is running
	-@bash deploy/local/services.sh status
	-@bash deploy/local/kafka.sh status
	-@bash deploy/local/postgres.sh status

logs:  ## follow the services' logs
	tail -F .run/logs/intake.log .run/logs/triage.log .run/logs/resolution.log .run/logs/notification.log

migrate: install  ## run every service's migrations against the local database
	$(PY) -m services migrate

lint: install  ## ruff, formatting, mypy, and the service-boundary check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_architecture.py

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint  ## lint, then every test tier on the real stack (started if not running)
	$(PY) -m pytest

test-fast: install  ## unit and contract tests only (no Postgres or Kafka)
	$(PY) -m pytest tests/unit tests/contracts

bench-tools: install  ## install (or say how to install) wrk, vegeta and py-spy
	$(PY) -m tests.bench.tools

bench: install  ## every throughput/latency/growth target, measured; saves bench-results/
	$(PY) -m tests.bench

profile: install  ## flame graphs under wrk load (PROFILE_SERVICES=intake,...): bench-results/
	$(PY) -m tests.bench.profile

classify-report: install  ## train triage's classifier, score it on the held-out split: bench-results/
	$(PY) -m triage_service.classify_report

clean:  ## remove the venv and local state (not the jar cache)
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
