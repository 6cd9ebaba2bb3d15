#!/usr/bin/env bash
# Runs a command as one process of the switch, with its own Redis user and database role:
#   scripts/as.sh portal|ingest|worker|callcore|owner COMMAND...
# The credentials are the ones `manage.py provision_servers` keeps in .env (scripts/run.sh makes them; honcho
# loads the file for the Procfile). Without them the environment is left as it is (a developer's own servers).
set -euo pipefail
role=$1
shift
case "$role" in
  portal | ingest) redis=$role db=PORTAL ;;
  worker) redis=worker db=OWNER ;;  # the worker creates the CDR table's day partitions
  owner) redis=worker db=OWNER ;;   # migrations
  callcore) redis=callcore db="" ;;
  *) echo "usage: scripts/as.sh portal|ingest|worker|callcore|owner COMMAND..." >&2; exit 2 ;;
esac
url_var="SS_REDIS_URL_${redis^^}"
if [ -n "${!url_var:-}" ]; then
  export REDIS_URL="${!url_var}" CELERY_BROKER_URL="${!url_var}" CELERY_RESULT_BACKEND="${!url_var}"
fi
if [ -z "$db" ]; then
  # The call core never touches the database: it gets no credentials at all.
  unset DB_USER DB_PASSWORD SS_DB_USER_OWNER SS_DB_PASSWORD_OWNER SS_DB_USER_PORTAL SS_DB_PASSWORD_PORTAL
else
  user_var="SS_DB_USER_$db" password_var="SS_DB_PASSWORD_$db"
  if [ -n "${!user_var:-}" ]; then
    export DB_USER="${!user_var}" DB_PASSWORD="${!password_var}"
  fi
fi
# The other processes' passwords stay out of this one's environment.
for name in $(compgen -v | grep -E '^SS_(REDIS_(URL|PASSWORD)|DB_(USER|PASSWORD))_' || true); do
  unset "$name"
done
exec "$@"
