# The two commands of the README, and a few conveniences around them.
.PHONY: run test lint setup

run:
	scripts/run.sh --demo

test:
	scripts/test.sh

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
