#!/usr/bin/env bash
# One command: set up and run the whole switch in the foreground (portal on :8000, SIP, ingest, worker, beat).
# Ctrl-C stops everything.
#   scripts/run.sh --demo   a demo machine: DEBUG on, plain HTTP, demo data and the admin / admin login (`make run`)
#   scripts/run.sh          production settings: needs SECRET_KEY (and ALLOWED_HOSTS, TLS in front); no demo data,
#                           create the first administrator with `manage.py createsuperuser`
set -euo pipefail
cd "$(dirname "$0")/.."
demo=0
for arg in "$@"; do
  case "$arg" in
    --demo) demo=1 ;;
    *) echo "usage: scripts/run.sh [--demo]" >&2; exit 2 ;;
  esac
done
if [ "$demo" = 1 ]; then
  # The demo is served over plain HTTP on 127.0.0.1 with the development key: DEBUG says so to the settings.
  export DEBUG="${DEBUG:-1}"
fi
SS_SETUP_MIGRATE=0 scripts/setup.sh
# Each process its own Redis user and database role (scripts/as.sh picks them in the Procfile); their passwords
# and the snapshot's signing key are generated once into .env (mode 600, never committed).
.venv/bin/python manage.py provision_servers --env-file .env
set -a
. ./.env
set +a
# The owner role migrates; tables a superuser's migrate made before (scripts/setup.sh) were handed to it.
scripts/as.sh owner .venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py sync_roles -v 0
if [ "$demo" = 1 ]; then
  .venv/bin/python manage.py seed_demo --demo
fi
.venv/bin/python manage.py publish_snapshot
exec .venv/bin/honcho start -f Procfile
