#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis (and RabbitMQ, for the broker tests) answer; start them, or
# install them where missing.
# Prints the DATABASE_URL / REDIS_URL exports for what is available. Needs root to install.
set -u

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif have sudo; then sudo -n "$@"; else return 1; fi; }

pg_up() { have pg_isready && pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up; then
  if ! have pg_ctlcluster && [ "${TANDEM_INSTALL_SERVICES:-1}" = 1 ]; then
    echo "installing PostgreSQL…" >&2
    as_root apt-get update -qq >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  if have pg_ctlcluster; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [ -n "$version" ]; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
      hba="/etc/postgresql/$version/main/pg_hba.conf"
      # A freshly installed cluster asks for passwords on TCP; the test database needs trust locally.
      if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba" >&2 &&
          as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2 || true
      fi
      for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
  fi
fi

if ! redis_up; then
  if ! have redis-server && [ "${TANDEM_INSTALL_SERVICES:-1}" = 1 ]; then
    echo "installing Redis…" >&2
    as_root apt-get update -qq >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  fi
  if have redis-server; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >&2 || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
fi

rabbitmq_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbitmq_up; then
  if ! have rabbitmq-server && [ "${TANDEM_INSTALL_SERVICES:-1}" = 1 ]; then
    echo "installing RabbitMQ…" >&2
    as_root apt-get update -qq >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >&2
  fi
  if have rabbitmq-server; then
    as_root rabbitmq-server -detached >&2 || true
    for _ in $(seq 1 60); do rabbitmq_up && break; sleep 0.5; done
  fi
fi

if pg_up && [ -z "${DATABASE_URL:-}" ]; then
  exists=$(psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='tandem'" 2>/dev/null || true)
  [ "$exists" = 1 ] || createdb -h 127.0.0.1 -U postgres tandem >&2 2>/dev/null || true
fi
pg_up && echo "export DATABASE_URL=\${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tandem}"
redis_up && echo "export REDIS_URL=\${REDIS_URL:-redis://127.0.0.1:6379/0}"
exit 0
