#!/usr/bin/env bash
# Start the PostgreSQL server and the PgBouncer (transaction mode, like Neon's pooler) that
# the test suite and the benchmarks use, installing them from Debian's packages if missing.
# Idempotent: safe to run again while they are up. Needs root (it may apt-get install).
#
#   direct:  postgresql://budget:budget-test@127.0.0.1:5432/<db>
#   pooled:  postgresql://budget:budget-test@127.0.0.1:6432/<db>   (PgBouncer, any <db>)
#
# `budget` owns the test databases (and may create roles and end other roles' sessions, as
# Neon's default role can).
# The row-level security tests also log in as the people's roles below (not owners, not
# superusers), directly and through PgBouncer, with the same password.
set -euo pipefail

PG_PORT=${BUDGET_TEST_PG_PORT:-5432}
BOUNCER_PORT=${BUDGET_TEST_PGBOUNCER_PORT:-6432}
ROLE=budget
PASSWORD=budget-test
PEOPLE_ROLES="budget_alice budget_bob"
RUN_DIR=${BUDGET_TEST_RUN_DIR:-/tmp/budget-tracker-services}

say() { printf 'services: %s\n' "$*" >&2; }

apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_answers() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

# PostgreSQL: use the one that answers; otherwise install and/or start the cluster.
if ! command -v pg_isready >/dev/null || ! pg_answers; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL from Debian's packages"
    apt_install postgresql postgresql-contrib
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_answers && break; sleep 0.5; done
  pg_answers || { say "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"; exit 1; }
fi
command -v pgbench >/dev/null || apt_install postgresql-contrib

# The role the tests log in as (through the Unix socket as the postgres superuser).
runuser -u postgres -- psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
-- Dropping a test database ends the people's roles' sessions too (as on Neon).
GRANT pg_signal_backend TO $ROLE;
SQL
for person in $PEOPLE_ROLES; do
  runuser -u postgres -- psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$person') THEN
    CREATE ROLE $person LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $person LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
done

# PgBouncer in transaction mode, checking passwords itself (SCRAM), as Neon's pooler does.
command -v pgbouncer >/dev/null || { say "installing PgBouncer"; apt_install pgbouncer; }
mkdir -p "$RUN_DIR"
cat >"$RUN_DIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $RUN_DIR/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
query_wait_timeout = 120
admin_users = $ROLE
stats_users = $ROLE
pidfile = $RUN_DIR/pgbouncer.pid
logfile = $RUN_DIR/pgbouncer.log
INI
for login in $ROLE $PEOPLE_ROLES; do printf '"%s" "%s"\n' "$login" "$PASSWORD"; done \
  >"$RUN_DIR/userlist.txt"
chown -R postgres "$RUN_DIR"
chmod 700 "$RUN_DIR"

bouncer_answers() { pg_isready -q -h 127.0.0.1 -p "$BOUNCER_PORT" 2>/dev/null; }
if [ -f "$RUN_DIR/pgbouncer.pid" ] && kill -0 "$(cat "$RUN_DIR/pgbouncer.pid")" 2>/dev/null; then
  kill -HUP "$(cat "$RUN_DIR/pgbouncer.pid")"   # reload the config written above
else
  say "starting PgBouncer on 127.0.0.1:$BOUNCER_PORT (transaction mode)"
  runuser -u postgres -- pgbouncer -d "$RUN_DIR/pgbouncer.ini"
fi
for _ in $(seq 1 40); do bouncer_answers && break; sleep 0.25; done
bouncer_answers || { say "PgBouncer does not answer on 127.0.0.1:$BOUNCER_PORT"; exit 1; }
say "PostgreSQL on :$PG_PORT and PgBouncer on :$BOUNCER_PORT are up"
