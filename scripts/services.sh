#!/usr/bin/env bash
# Make sure the machine has what `make test` needs: PostgreSQL and Redis running on 127.0.0.1, Node.js
# for the front-end packages, Debian's Chromium for browser journeys and Debian's Caddy for the TLS test.
# Installs what is missing (as root, with apt-get) and starts what is stopped. Safe to run again.
set -euo pipefail

need_apt=()
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v npm >/dev/null || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v caddy >/dev/null || need_apt+=(caddy)  # tests/deploy runs deploy/termin.caddy for real
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing: ${need_apt[*]}. Install them (apt-get install ${need_apt[*]}) or run as root." >&2
    exit 1
  fi
  echo "Installing ${need_apt[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "PostgreSQL is installed but has no cluster; creating one." >&2
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main >/dev/null
  fi
  # initdb and the server refuse to run as root; pg_ctlcluster switches to the postgres user itself.
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# Tests connect as postgres over TCP. A fresh Debian cluster asks for a password there, so give the
# postgres role the one the test URL carries when trust is not configured (harmless when it is).
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'"
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/termin-test.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
echo "PostgreSQL and Redis are up on 127.0.0.1."
