#!/usr/bin/env bash
# Sets up everything the switch and its tests need on a fresh Debian machine:
# system packages, the PostgreSQL and Redis servers (started when not running),
# the Python virtualenv, the database and its migrations. Safe to run again:
# each step is skipped when already done. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Debian's Python: Kamailio's app_python3 embeds this same interpreter, so the
# call core's packages must come from a venv built with it.
PYTHON=/usr/bin/python3

# nftables and iproute2: the worker's export of the call core's bans to the kernel (FIREWALL_EXPORT).
# rtpengine-daemon: the media proxy the Procfile runs (scripts/rtpengine.sh).
packages=(python3 python3-venv postgresql redis-server kamailio kamailio-python3-modules rtpengine-daemon nftables iproute2)
if [ "${1:-}" = "--test" ]; then
  # The tests' real peers: SIPp as customer and vendors, Chromium for the browser tests, and sipvicious's
  # svwar and svcrack as the scanners the switch must tell nothing.
  packages+=(sip-tester chromium sipvicious)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian enables the packaged Kamailio service; the switch runs its own, rendered configuration.
  if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null && systemctl is-active -q kamailio 2>/dev/null; then
    $SUDO systemctl disable --now kamailio >/dev/null 2>&1 || true
  fi
  # Likewise rtpengine's packaged service: the Procfile runs the switch's own, on its own control port.
  if [[ " ${missing[*]} " == *" rtpengine-daemon "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now rtpengine-daemon rtpengine-recording-daemon >/dev/null 2>&1 || true
  fi
fi

if ! pg_isready -q -h 127.0.0.1 -p "${DB_PORT:-5432}"; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "${DB_PORT:-5432}" && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly yes --appendfsync everysec \
    --dir /var/lib/redis --logfile /var/log/redis/softswitch.log
  for _ in $(seq 1 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

if [ ! -x .venv/bin/python ]; then
  log "creating the virtualenv"
  $PYTHON -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

DB_NAME=${DB_NAME:-softswitch}
DB_USER=${DB_USER:-postgres}
if ! psql -h "${DB_HOST:-127.0.0.1}" -p "${DB_PORT:-5432}" -U "$DB_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  log "creating database $DB_NAME"
  createdb -h "${DB_HOST:-127.0.0.1}" -p "${DB_PORT:-5432}" -U "$DB_USER" "$DB_NAME"
fi
# scripts/run.sh migrates as the database's owner role once it has made it (SS_SETUP_MIGRATE=0 here).
if [ "${SS_SETUP_MIGRATE:-1}" = 1 ]; then
  .venv/bin/python manage.py migrate --noinput -v 0
fi
mkdir -p var
log "ready"
