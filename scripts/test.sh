#!/usr/bin/env bash
# One command: set up (browser included) and run lint, Django's checks and the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/portal -x
set -euo pipefail
cd "$(dirname "$0")/.."
# The checks and the tests run on a developer machine's settings (the development SECRET_KEY, plain HTTP);
# tests/portal/test_hardening.py checks the production defaults in a process of its own.
export DEBUG="${DEBUG:-1}"
scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The import boundaries (pyproject.toml): callcore without Django, the apps through callcore.contract, no cycles.
.venv/bin/lint-imports --no-logo
.venv/bin/python manage.py check --fail-level WARNING
.venv/bin/python manage.py makemigrations --check --dry-run
# Each run keeps its Redis keys under its own prefix, so a running switch is untouched.
export REDIS_PREFIX="sstest-$$"
# Persistent connections would keep the live server's thread attached to the test database at teardown.
export DB_CONN_MAX_AGE=0
.venv/bin/pytest "$@"
