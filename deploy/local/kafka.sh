#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker+controller, loopback only)
# run straight from Maven Central jars: no Docker, no tarball. Kafka 4.1.x, Java 17+.
#
#   bash deploy/local/kafka.sh up      fetch jars once (cached), format storage, start, wait until ready
#   bash deploy/local/kafka.sh down    SIGTERM, wait up to 30 s, then SIGKILL (idempotent)
#   bash deploy/local/kafka.sh status  exit 0 if running and answering, 3 if not
#   bash deploy/local/kafka.sh fetch   only fill the jar cache (e.g. in a CI cache step)
#
# Env:
#   COMPLAINTS_KAFKA_PORT            broker listener            (default 19092)
#   COMPLAINTS_KAFKA_CONTROLLER_PORT KRaft controller listener  (default 19093)
#   COMPLAINTS_RUN_DIR               runtime state; Kafka uses $COMPLAINTS_RUN_DIR/kafka (default <repo>/.run)
#   COMPLAINTS_CACHE_DIR             jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/complaints-platform)
#   COMPLAINTS_KAFKA_FRESH=1         wipe the broker's data on this `up` even if it could be kept
#   KAFKA_HEAP_OPTS                  (default "-Xms128m -Xmx512m")
#   KAFKA_START_TIMEOUT              seconds to wait for readiness (default 120)
#
# Data: kept across `down` + `up` when the broker was stopped cleanly by `down` and the generated
# server.properties is unchanged (same ports, same cluster id); wiped otherwise (crash, SIGKILL,
# reboot, port change) because a single throwaway dev broker is cheaper to recreate than to repair.
#
# Based on ../shared/kafka/start-kafka.sh (Kafka 4.x line only).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"   # deploy/local
REPO="$(cd "$HERE/../.." && pwd)"
KDIR="$HERE/kafka"                                      # pom, log4j2.properties, template
POM="$KDIR/kafka-4.pom.xml"

PORT="${COMPLAINTS_KAFKA_PORT:-19092}"
CPORT="${COMPLAINTS_KAFKA_CONTROLLER_PORT:-19093}"
RUN_DIR="${COMPLAINTS_RUN_DIR:-$REPO/.run}"
WORK="$RUN_DIR/kafka"
CACHE_DIR="${COMPLAINTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/complaints-platform}"
HEAP="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT=30

# any 16-byte base64url UUID works; this is the default of Kafka's own docker image
CLUSTER_ID="5L6g3nShT-eMCtK--X86sw"
KAFKA_VERSION="$(sed -n 's#.*<kafka.version>\([^<]*\)</kafka.version>.*#\1#p' "$POM" | head -n1)"
[ -n "$KAFKA_VERSION" ] || { echo "kafka.sh: cannot read <kafka.version> from $POM" >&2; exit 1; }
LIBS="$CACHE_DIR/libs-$KAFKA_VERSION"

DATA="$WORK/data"
CONF="$WORK/server.properties"
DATA_CONF="$WORK/data.server.properties"   # the config the data dir was formatted with
CLEAN_MARK="$WORK/clean-shutdown"          # written by `down` after a clean SIGTERM exit
PIDFILE="$WORK/kafka.pid"
LOG="$WORK/kafka.log"
LOCK="$WORK/.lock"

# kafka-run-class.sh uses G1 + C2; for a dev/test broker on 2 cores SerialGC + C1 starts faster
# and burns less CPU.
PERF="-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
LOGOPT="-Dlog4j2.configurationFile=$KDIR/log4j2.properties"

die() { echo "kafka.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

require_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found. Install Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven"
  local spec major
  spec="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)"
  major="${spec%%.*}"
  [ "$major" = "1" ] && major="$(echo "$spec" | cut -d. -f2)"       # 1.8 -> 8
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot determine the Java version (java.specification.version='$spec')"
  [ "$major" -ge 17 ] ||
    die "Kafka $KAFKA_VERSION needs Java 17+, found Java $spec ($(command -v java)). apt-get install openjdk-17-jre-headless"
}

require_mvn() {
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found (needed once to fetch the Kafka jars into $LIBS). apt-get install openjdk-17-jre-headless maven"
}

# pid of the broker of THIS run dir, or nothing. Verifies /proc cmdline so a recycled pid or an
# unrelated java never counts; also finds a broker whose pid file was lost.
broker_pid() {
  local pid
  if [ -s "$PIDFILE" ]; then
    pid="$(cat "$PIDFILE")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
       tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $CONF"; then
      echo "$pid"; return 0
    fi
  fi
  pid="$(pgrep -f "kafka.Kafka $CONF" 2>/dev/null | head -n1 || true)"
  if [ -n "$pid" ]; then echo "$pid" >"$PIDFILE"; echo "$pid"; fi
}

fetch_libs() {
  [ -f "$LIBS/.complete" ] && return 0
  require_mvn
  mkdir -p "$CACHE_DIR"
  (
    flock -w 600 8 || die "timed out waiting for another fetch ($CACHE_DIR/.fetch.lock)"
    [ -f "$LIBS/.complete" ] && exit 0
    local t0 tmp; t0="$(now)"; tmp="$LIBS.tmp.$$"
    echo "Fetching Kafka $KAFKA_VERSION jars into $LIBS (once) ..."
    rm -rf "$tmp"; mkdir -p "$tmp"
    if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
           -DoutputDirectory="$tmp" -DincludeScope=runtime >"$CACHE_DIR/fetch.log" 2>&1; then
      tail -n 30 "$CACHE_DIR/fetch.log" >&2
      rm -rf "$tmp"; die "mvn failed to fetch the Kafka jars (is Maven Central reachable? full log: $CACHE_DIR/fetch.log)"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "fetch incomplete: kafka_2.13 jar missing"; }
    touch "$tmp/.complete"
    rm -rf "$LIBS"; mv "$tmp" "$LIBS"
    echo "Fetched $(find "$LIBS" -name "*.jar" | wc -l) jars in $(elapsed "$t0")s"
  ) 8>"$CACHE_DIR/.fetch.lock"
}

# wait for "Kafka Server started" in the log AND the port accepting TCP connections
wait_ready() {
  local pid="$1" t0="$2" deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if grep -q "Kafka Server started" "$LOG" 2>/dev/null && port_open "$PORT"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka.sh: Kafka exited during startup; last log lines ($LOG):" >&2
      tail -n 40 "$LOG" >&2 || true
      rm -f "$PIDFILE"; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "kafka.sh: Kafka not ready after ${START_TIMEOUT}s; last log lines ($LOG):" >&2
      tail -n 40 "$LOG" >&2 || true
      stop_broker >/dev/null || true; return 1
    fi
    sleep 0.3
  done
}

# stop our broker: SIGTERM (clean shutdown hook), wait, then SIGKILL. Echoes clean|killed|none.
stop_broker() {
  local pid; pid="$(broker_pid)"
  if [ -z "$pid" ]; then rm -f "$PIDFILE"; echo none; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$PIDFILE"; echo killed; return 0
  fi
  rm -f "$PIDFILE"; echo clean
}

render_conf() {
  sed -e "s#@PORT@#$PORT#g" -e "s#@CPORT@#$CPORT#g" -e "s#@DATA@#$DATA#g" \
      "$KDIR/server.properties.template" >"$1"
  echo "# cluster.id used by kafka.sh format: $CLUSTER_ID" >>"$1"
}

cmd_up() {
  require_java
  mkdir -p "$WORK"
  exec 9>"$LOCK"
  flock -w $((START_TIMEOUT + 60)) 9 || die "timed out waiting for another kafka.sh in $WORK"

  local pid t0
  pid="$(broker_pid)"
  if [ -n "$pid" ]; then
    render_conf "$CONF.new"
    if ! cmp -s "$CONF.new" "$CONF"; then
      rm -f "$CONF.new"
      die "the broker of $WORK (pid $pid) runs with another configuration (ports?) than requested; run '$0 down' with the old settings first"
    fi
    rm -f "$CONF.new"
    if port_open "$PORT"; then
      echo "Kafka already running on 127.0.0.1:$PORT (pid $pid)"; return 0
    fi
    # alive but not answering: still starting (or hung) -> give it the startup timeout
    t0="$(now)"
    wait_ready "$pid" "$t0" || die "existing broker (pid $pid) did not become ready; it was stopped"
    echo "Kafka already running on 127.0.0.1:$PORT (pid $pid)"; return 0
  fi

  for p in "$PORT" "$CPORT"; do
    if port_open "$p"; then
      die "port $p on 127.0.0.1 is already in use by another process (see: ss -ltnp 'sport = :$p'). Stop it or set COMPLAINTS_KAFKA_PORT / COMPLAINTS_KAFKA_CONTROLLER_PORT."
    fi
  done

  fetch_libs

  render_conf "$CONF.new"
  local keep=0
  if [ "${COMPLAINTS_KAFKA_FRESH:-0}" != "1" ] && [ -f "$CLEAN_MARK" ] &&
     grep -qx "cluster.id=$CLUSTER_ID" "$DATA/meta.properties" 2>/dev/null &&
     cmp -s "$CONF.new" "$DATA_CONF"; then
    keep=1
  fi
  mv "$CONF.new" "$CONF"
  rm -f "$CLEAN_MARK"          # from now on only a clean `down` may recreate it
  if [ "$keep" = 1 ]; then
    echo "Reusing Kafka data in $DATA (previous broker stopped cleanly)"
  else
    rm -rf "$DATA"; mkdir -p "$DATA"
  fi

  t0="$(now)"
  # == bin/kafka-storage.sh format -t $CLUSTER_ID -c $CONF  (static voters: no --standalone)
  # shellcheck disable=SC2086
  if ! java -Xmx256m $PERF $LOGOPT -cp "$LIBS/*" kafka.tools.StorageTool \
         format --cluster-id "$CLUSTER_ID" --config "$CONF" --ignore-formatted \
         >"$WORK/format.log" 2>&1 9>&-; then
    cat "$WORK/format.log" >&2; die "kafka-storage format failed"
  fi
  cp "$CONF" "$DATA_CONF"

  [ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"
  rm -f "$PIDFILE"
  # == bin/kafka-server-start.sh $CONF, in its own session (survives the caller's Ctrl-C / terminal)
  # and without our lock fd. The inner bash writes its pid, then execs java (same pid).
  # shellcheck disable=SC2016,SC2086
  (
    cd "$WORK"
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      java $HEAP $PERF $LOGOPT -Dkafka.logs.dir="$WORK" -cp "$LIBS/*" kafka.Kafka "$CONF"
  ) >"$LOG" 2>&1 </dev/null 9>&- &

  local i
  for ((i = 0; i < 100; i++)); do [ -s "$PIDFILE" ] && break; sleep 0.05; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] || die "Kafka process did not start (see $LOG)"

  wait_ready "$pid" "$t0" || exit 1
  echo "Kafka ready on 127.0.0.1:$PORT after $(elapsed "$t0")s (pid $pid, data $DATA, log $LOG)"
}

cmd_down() {
  mkdir -p "$WORK"
  exec 9>"$LOCK"
  flock -w 90 9 || die "timed out waiting for another kafka.sh in $WORK"
  local result; result="$(stop_broker)"
  case "$result" in
    clean)  touch "$CLEAN_MARK"; echo "Kafka stopped" ;;
    killed) rm -f "$CLEAN_MARK"; echo "Kafka did not stop within ${STOP_TIMEOUT}s after SIGTERM; killed (data will be wiped on next up)" ;;
    none)   echo "Kafka not running" ;;
  esac
}

cmd_status() {
  local pid; pid="$(broker_pid)"
  if [ -n "$pid" ] && port_open "$PORT"; then
    echo "Kafka running on 127.0.0.1:$PORT (pid $pid, run dir $WORK)"; return 0
  elif [ -n "$pid" ]; then
    echo "Kafka process $pid alive but 127.0.0.1:$PORT not answering (starting or hung; log $LOG)"; return 3
  fi
  echo "Kafka not running (127.0.0.1:$PORT)"; return 3
}

case "${1:-}" in
  up)     cmd_up ;;
  down)   cmd_down ;;
  status) cmd_status ;;
  fetch)  require_java; fetch_libs; echo "Kafka $KAFKA_VERSION jars cached in $LIBS" ;;
  *)      echo "usage: $0 up|down|status|fetch" >&2; exit 2 ;;
esac
