#!/usr/bin/env bash
# Runs the four services in the background through `python -m services up` (the launcher),
# for `make up` / `make down`. In a terminal you can run `python -m services up` directly instead.
#   bash deploy/local/services.sh up|down|status
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN_DIR="${COMPLAINTS_RUN_DIR:-$REPO/.run}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
PIDFILE="$RUN_DIR/services.pid"
LOG_DIR="$RUN_DIR/logs"
LAUNCH_LOG="$LOG_DIR/launcher.log"
TIMEOUT="${COMPLAINTS_SERVICES_START_TIMEOUT:-120}"

launcher_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

print_where() {
  local offset="${COMPLAINTS_PORT_OFFSET:-0}"
  echo "services:"
  for entry in intake:8001 triage:8002 resolution:8003 notification:8004; do
    printf '  %-13s http://127.0.0.1:%d   (docs: /docs, health: /readyz, metrics: /metrics)\n' \
      "${entry%%:*}" $(( ${entry##*:} + offset ))
  done
  echo "logs: $LOG_DIR/<service>.log   stop: make down"
}

cmd_up() {
  mkdir -p "$LOG_DIR"
  if pid=$(launcher_pid); then
    echo "services already running (launcher pid $pid)"; print_where; return 0
  fi
  : > "$LAUNCH_LOG"
  nohup "$PY" -m services up --no-init --quiet --log-dir "$LOG_DIR" >> "$LAUNCH_LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local t0=$SECONDS
  until grep -q "all services ready" "$LAUNCH_LOG"; do
    if ! launcher_pid >/dev/null; then
      echo "services failed to start:" >&2; tail -40 "$LAUNCH_LOG" >&2; rm -f "$PIDFILE"; exit 1
    fi
    if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
      echo "services not ready after ${TIMEOUT}s:" >&2; tail -40 "$LAUNCH_LOG" >&2; cmd_down; exit 1
    fi
    sleep 0.5
  done
  echo "services ready after $((SECONDS - t0))s"
  print_where
}

cmd_down() {
  if pid=$(launcher_pid); then
    kill -TERM "$pid"            # the launcher stops each service gracefully, then exits
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
  fi
  rm -f "$PIDFILE"
  # Services orphaned by a launcher that was killed outright.
  local offset="${COMPLAINTS_PORT_OFFSET:-0}" ports orphans
  ports="$((8001 + offset))|$((8002 + offset))|$((8003 + offset))|$((8004 + offset))"
  orphans=$(pgrep -f "uvicorn [a-z]+_service\.main:app --host 127\.0\.0\.1 --port ($ports)( |\$)" || true)
  if [ -n "$orphans" ]; then
    kill -TERM $orphans 2>/dev/null || true
    sleep 3
    kill -KILL $orphans 2>/dev/null || true
  fi
  echo "services stopped"
}

cmd_status() {
  if pid=$(launcher_pid); then echo "services running (launcher pid $pid)"; print_where; else echo "services not running"; return 3; fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
