#!/usr/bin/env bash
# One command: set up, load the demo data, and run the whole switch in the
# foreground (portal on :8000, worker, beat). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python manage.py seed_demo
.venv/bin/python manage.py publish_snapshot
exec .venv/bin/honcho start -f Procfile
