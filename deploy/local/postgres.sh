#!/usr/bin/env bash
# Local PostgreSQL for the complaint platform, using the distribution's packages (Debian/Ubuntu
# postgresql-common: pg_lsclusters, pg_createcluster, pg_ctlcluster). No Docker.
#
#   bash deploy/local/postgres.sh up      start (or reuse) a server on 127.0.0.1:$PORT, ensure the admin role
#   bash deploy/local/postgres.sh down    stop the cluster, but only if `up` started it (idempotent)
#   bash deploy/local/postgres.sh status  exit 0 if the server answers, 3 if not
#
# Env:
#   COMPLAINTS_PG_PORT            (default 5432)
#   COMPLAINTS_PG_ADMIN_USER      LOGIN SUPERUSER role used by `python -m services provision` (default complaints_admin)
#   COMPLAINTS_PG_ADMIN_PASSWORD  (default complaints_admin; dev only)
#   COMPLAINTS_RUN_DIR            runtime state (default <repo>/.run); postgres.started lives there
#
# `up` picks the newest installed PostgreSQL major version. It uses the cluster already configured
# on the port (starting it if down) or creates one with pg_createcluster. A server that is already
# up on the port is reused as is and never stopped by `down`. Any cluster this script starts gets
# max_connections >= 200 (four services with ~10 connections each, plus test suites).
# Starting/creating clusters needs root (pg_ctlcluster/pg_createcluster + runuser -u postgres).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"   # deploy/local
REPO="$(cd "$HERE/../.." && pwd)"

PORT="${COMPLAINTS_PG_PORT:-5432}"
ADMIN_USER="${COMPLAINTS_PG_ADMIN_USER:-complaints_admin}"
ADMIN_PASSWORD="${COMPLAINTS_PG_ADMIN_PASSWORD:-complaints_admin}"
RUN_DIR="${COMPLAINTS_RUN_DIR:-$REPO/.run}"
STATE="$RUN_DIR/postgres.started"      # "VERSION CLUSTER PORT" of a cluster WE started
MIN_CONNECTIONS=200
READY_TIMEOUT=60
INSTALL_HINT="install it with: apt-get install postgresql"

die() { echo "postgres.sh: $*" >&2; exit 1; }

# ---- installed binaries -------------------------------------------------------------------
PG_VERSION=""      # newest installed major version with server binaries
PGBIN=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/postgres" ] || continue
  v="$(basename "$(dirname "$d")")"
  if [ -z "$PG_VERSION" ] || [ "$(printf '%s\n%s\n' "$PG_VERSION" "$v" | sort -V | tail -n1)" = "$v" ]; then
    PG_VERSION="$v"; PGBIN="$d"
  fi
done

tool() {   # tool NAME -> path of a client tool, preferring the newest server version's copy
  if [ -n "$PGBIN" ] && [ -x "$PGBIN/$1" ]; then echo "$PGBIN/$1"
  elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  else return 1; fi
}

server_up() { "$(tool pg_isready)" -q -h 127.0.0.1 -p "$PORT" -t 2 >/dev/null 2>&1; }

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until server_up; do
    [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL on 127.0.0.1:$PORT not ready after ${READY_TIMEOUT}s${1:+ (log: $1)}"
    sleep 0.5
  done
}

# psql as the postgres OS user over the local socket (peer auth); cwd / so postgres can read it
psql_su() { (cd / && runuser -u postgres -- "$(tool psql)" -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"); }

admin_tcp_ok() {
  PGPASSWORD="$ADMIN_PASSWORD" PGCONNECT_TIMEOUT=5 "$(tool psql)" -X -q -At -w \
    -h 127.0.0.1 -p "$PORT" -U "$ADMIN_USER" -d postgres -c 'select 1' >/dev/null 2>&1
}

# "VERSION NAME STATUS LOGFILE" of the cluster configured on $PORT: newest version first
cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '$3 == p { print $1, $2, $4, $7 }' | sort -V -r | head -n1
}

ensure_admin_role() {
  # idempotent: create if missing, then (re)assert LOGIN SUPERUSER and the password
  psql_su -v u="$ADMIN_USER" -v p="$ADMIN_PASSWORD" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN SUPERUSER PASSWORD %L', :'u', :'p')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN SUPERUSER PASSWORD %L', :'u', :'p') \gexec
SQL
}

# make sure pg_hba lets password logins in over TCP on 127.0.0.1 (Debian's default already does)
ensure_hba() {
  local ver="$1" name="$2" hba
  hba="$(psql_su -At -c 'SHOW hba_file')"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$hba"; then
    echo "postgres.sh: adding 'host all all 127.0.0.1/32 scram-sha-256' to $hba" >&2
    local tmp; tmp="$(mktemp)"
    { echo "# added by complaints-platform deploy/local/postgres.sh: password logins over loopback TCP"
      echo "host    all    all    127.0.0.1/32    scram-sha-256"
      cat "$hba"; } >"$tmp"
    cat "$tmp" >"$hba"; rm -f "$tmp"
    pg_ctlcluster "$ver" "$name" reload
  fi
}

cmd_up() {
  if ! tool psql >/dev/null || ! tool pg_isready >/dev/null; then
    die "PostgreSQL client tools (psql, pg_isready) not found; $INSTALL_HINT"
  fi
  mkdir -p "$RUN_DIR"
  local is_root=0; [ "$(id -u)" = 0 ] && is_root=1
  local ver="" name="" status="" logfile="" started_now=0

  if server_up; then
    # reuse whatever answers on the port; if we started it earlier, postgres.started stays as is
    if [ "$is_root" = 1 ]; then
      read -r ver name status logfile <<<"$(cluster_on_port)" || true
      # something else (not a pg_ctlcluster cluster) may answer on the port
      [[ "$status" == online* ]] || { ver=""; name=""; logfile=""; }
    fi
  else
    if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$PG_VERSION" ]; then
      die "PostgreSQL server is not installed (no pg_lsclusters or /usr/lib/postgresql/*/bin/postgres); $INSTALL_HINT"
    fi
    if [ "$is_root" != 1 ]; then
      die "no PostgreSQL answers on 127.0.0.1:$PORT and starting a cluster needs root.
  Either run this script as root (sudo bash $0 up), or start a server yourself and point the
  project at it: COMPLAINTS_PG_PORT=<port> COMPLAINTS_PG_ADMIN_USER=<superuser> COMPLAINTS_PG_ADMIN_PASSWORD=<password>
  (the admin role must be a LOGIN SUPERUSER reachable with a password on 127.0.0.1)."
    fi
    read -r ver name status logfile <<<"$(cluster_on_port)" || true
    if [ -z "$ver" ]; then
      name=main
      [ -d "/etc/postgresql/$PG_VERSION/$name" ] && name="complaints"
      [ -d "/etc/postgresql/$PG_VERSION/$name" ] && name="complaints-$PORT"
      ver="$PG_VERSION"
      echo "Creating PostgreSQL $ver cluster '$name' on port $PORT"
      pg_createcluster --port="$PORT" -o "max_connections=$MIN_CONNECTIONS" "$ver" "$name" >/dev/null
      read -r ver name status logfile <<<"$(cluster_on_port)"
    elif [ "$ver" != "$PG_VERSION" ]; then
      echo "postgres.sh: note: using the existing PostgreSQL $ver cluster '$name' on port $PORT (newest installed is $PG_VERSION)" >&2
    fi
    [ -n "$ver" ] || die "no cluster found on port $PORT after pg_createcluster"
    pg_ctlcluster "$ver" "$name" start || die "pg_ctlcluster $ver $name start failed (log: $logfile)"
    echo "$ver $name $PORT" >"$RUN_DIR/postgres.started"
    started_now=1
    wait_ready "$logfile"
  fi

  local we_own=0
  if [ "$started_now" = 1 ]; then we_own=1
  elif [ -f "$STATE" ] && [ -n "$ver" ] && [ "$(cat "$STATE")" = "$ver $name $PORT" ]; then we_own=1; fi

  if [ "$is_root" = 1 ] && psql_su -c 'select 1' >/dev/null 2>&1; then
    local maxconn; maxconn="$(psql_su -At -c 'SHOW max_connections')"
    if [ "$maxconn" -lt "$MIN_CONNECTIONS" ]; then
      if [ "$we_own" = 1 ] && [ -n "$ver" ]; then
        echo "Raising max_connections $maxconn -> $MIN_CONNECTIONS (ALTER SYSTEM + restart of $ver/$name)"
        psql_su -c "ALTER SYSTEM SET max_connections = $MIN_CONNECTIONS" >/dev/null
        pg_ctlcluster "$ver" "$name" restart
        wait_ready "$logfile"
      else
        echo "postgres.sh: warning: max_connections is $maxconn (< $MIN_CONNECTIONS) on a server this script did not start; four services plus tests may run out of connections" >&2
      fi
    fi
    ensure_admin_role
    if ! admin_tcp_ok && [ -n "$ver" ]; then
      ensure_hba "$ver" "$name"
    fi
  fi

  if ! admin_tcp_ok; then
    if [ "$is_root" = 1 ]; then
      die "cannot log in as '$ADMIN_USER' with its password on 127.0.0.1:$PORT. Check pg_hba.conf (needs 'host all all 127.0.0.1/32 scram-sha-256') and listen_addresses."
    fi
    die "a server answers on 127.0.0.1:$PORT but '$ADMIN_USER' cannot log in with COMPLAINTS_PG_ADMIN_PASSWORD.
  Run this script as root (it creates the role as the postgres OS user), or create a LOGIN SUPERUSER
  role yourself and set COMPLAINTS_PG_ADMIN_USER / COMPLAINTS_PG_ADMIN_PASSWORD."
  fi
  echo "Postgres ready on 127.0.0.1:$PORT (admin role $ADMIN_USER${ver:+, cluster $ver/$name}$([ "$we_own" = 1 ] && echo ", started by postgres.sh" || echo ", already running"))"
}

cmd_down() {
  if [ ! -f "$STATE" ]; then
    if tool pg_isready >/dev/null 2>&1 && server_up; then
      echo "Postgres on 127.0.0.1:$PORT was not started by postgres.sh; leaving it running"
    else
      echo "Postgres not running (nothing to stop)"
    fi
    return 0
  fi
  local ver name port
  read -r ver name port <"$STATE"
  [ "$(id -u)" = 0 ] || die "stopping cluster $ver/$name needs root (sudo bash $0 down)"
  if pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n && $4 ~ /^online/ { f = 1 } END { exit !f }'; then
    pg_ctlcluster --mode fast "$ver" "$name" stop
    echo "Postgres cluster $ver/$name (port $port) stopped"
  else
    echo "Postgres cluster $ver/$name already stopped"
  fi
  rm -f "$STATE"
}

cmd_status() {
  local owner="not started by postgres.sh"
  [ -f "$STATE" ] && owner="started by postgres.sh: cluster $(cut -d' ' -f1-2 "$STATE" | tr ' ' /)"
  if tool pg_isready >/dev/null 2>&1 && server_up; then
    echo "Postgres up on 127.0.0.1:$PORT ($owner)"; return 0
  fi
  echo "Postgres down on 127.0.0.1:$PORT"; return 3
}

case "${1:-}" in
  up)     cmd_up ;;
  down)   cmd_down ;;
  status) cmd_status ;;
  *)      echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
