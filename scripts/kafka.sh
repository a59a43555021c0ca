#!/usr/bin/env bash
# Local Apache Kafka for bounceflow: a real single-node KRaft broker
# (broker+controller in one JVM) from Maven Central jars, no Docker.
#
#   scripts/kafka.sh install   resolve jars into var/kafka/lib (idempotent, cached in ~/.m2)
#   scripts/kafka.sh start     format storage once, start, wait until it serves
#   scripts/kafka.sh stop      graceful stop, SIGKILL after KAFKA_STOP_TIMEOUT
#   scripts/kafka.sh status    exit 0 running, 3 not running
#
# Settings (env): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
# KAFKA_DATA (var/kafka/data), KAFKA_START_TIMEOUT (60), KAFKA_STOP_TIMEOUT (30),
# KAFKA_MVN_ARGS (extra mvn args, e.g. -Dmaven.repo.local=/tmp/m2), JAVA_HOME.
# Relative paths are relative to the repo root, whatever the caller's cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF_DIR="$ROOT/kafka"                 # pom, config template, log4j2, jvm options, probe
LIB="$ROOT/var/kafka/lib"
RENDERED="$ROOT/var/kafka/server.properties"
LOG="$ROOT/var/log/kafka.log"
PIDFILE="$ROOT/var/run/kafka.pid"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_DATA="${KAFKA_DATA:-var/kafka/data}"
[[ "$KAFKA_DATA" = /* ]] || KAFKA_DATA="$ROOT/$KAFKA_DATA"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

say() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }

kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$CONF_DIR/pom.xml"
}

# The marker holds version + pom hash: a bumped pom re-resolves, an unchanged one costs nothing.
install_stamp() {
  echo "$(kafka_version) $(sha256sum "$CONF_DIR/pom.xml" | cut -c1-16)"
}

installed() {
  [[ -f "$LIB/.installed" && "$(cat "$LIB/.installed")" == "$(install_stamp)" ]]
}

cmd_install() {
  local version; version="$(kafka_version)"
  if installed; then say "jars for Kafka $version already in var/kafka/lib"; return 0; fi
  command -v mvn >/dev/null || die "mvn not found (Maven 3.8+ is needed to fetch the Kafka jars)"
  mkdir -p "$ROOT/var/kafka"
  # Parallel installs (CI jobs, test sessions) must not interleave.
  if command -v flock >/dev/null; then
    exec 9>"$ROOT/var/kafka/.install.lock"
    flock 9
    if installed; then say "jars for Kafka $version already in var/kafka/lib"; return 0; fi
  fi
  say "resolving Kafka $version jars from Maven Central (cached in the local Maven repo) ..."
  # Resolve into a temp dir and swap it in: a failed run never leaves a half lib with a marker.
  local tmp; tmp="$(mktemp -d "$ROOT/var/kafka/lib.tmp.XXXXXX")"
  # sed: Debian's Maven 3.8 prints colour codes even with -B (pipefail keeps mvn's status).
  # shellcheck disable=SC2086  # KAFKA_MVN_ARGS is a list of args
  if ! mvn -B -q -f "$CONF_DIR/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" ${KAFKA_MVN_ARGS:-} 2>&1 | sed -e $'s/\x1b\\[[0-9;]*m//g'; then
    rm -rf "$tmp"; die "mvn could not resolve the Kafka jars (see above)"
  fi
  [[ -f "$tmp/kafka_2.13-$version.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$version.jar missing after mvn"; }
  install_stamp > "$tmp/.installed"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  say "installed $(ls "$LIB" | wc -l) jars for Kafka $version in var/kafka/lib"
}

# Alive and not a zombie: the broker outlives its starting shell, and a slow
# reaper would otherwise keep an exited broker "alive" for kill -0.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ ! -r "/proc/$1/stat" ]] || [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

# Only trust the pid file if that pid is still our broker (pids get reused).
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "kafka.Kafka" || return 1
  fi
  echo "$pid"
}

ready() {
  if command -v python3 >/dev/null; then
    python3 "$CONF_DIR/probe.py" 127.0.0.1 "$KAFKA_PORT"
  else  # no python: trust the broker's own "started" line
    tail -n 200 "$LOG" 2>/dev/null | grep -q "Kafka Server started"
  fi
}

jvm_opts() {
  grep -v -e '^\s*#' -e '^\s*$' "$CONF_DIR/jvm.options"
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_config() {
  sed -e "s|@BROKER_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$(sed_escape "$KAFKA_DATA")|g" \
      "$CONF_DIR/server.properties.template" > "$RENDERED.tmp"
  ! grep -q '@[A-Z_]*@' "$RENDERED.tmp" || die "unrendered token in $RENDERED.tmp"
  mv "$RENDERED.tmp" "$RENDERED"
}

# Kafka cluster ids are 16 random bytes, base64url without padding; never starting
# with '-' (StorageTool would read it as an option).
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

# On failure: this run's errors first (the cause is often far above the tail), then the tail.
log_tail() {
  echo "----- errors in this run (from $LOG) -----" >&2
  awk '/^===== scripts\/kafka.sh start/ { n = 0; delete e } /ERROR|FATAL|Exception/ && n < 10 { e[n++] = $0 }
       END { for (i = 0; i < n; i++) print e[i] }' "$LOG" >&2 || true
  echo "----- last 30 lines of $LOG -----" >&2
  tail -n 30 "$LOG" >&2 || true
  echo "-----" >&2
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT; nothing to do"
    return 0
  fi
  rm -f "$PIDFILE"
  if ready; then
    die "something already answers Kafka requests on 127.0.0.1:$KAFKA_PORT (not started by this script); set KAFKA_PORT"
  fi
  "$JAVA" -version >/dev/null 2>&1 || die "java not found (Java 17+ needed; set JAVA_HOME)"
  installed || cmd_install
  mkdir -p "$KAFKA_DATA" "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
  render_config
  echo "===== scripts/kafka.sh start $(date -u +%FT%TZ) port $KAFKA_PORT =====" >> "$LOG"

  local opts; mapfile -t opts < <(jvm_opts)
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local id; id="$(random_cluster_id)"
    say "formatting $KAFKA_DATA (cluster id $id)"
    # Short-lived tool: C1 only and serial GC start faster.
    if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
          -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties" -cp "$LIB/*" \
          kafka.tools.StorageTool format -t "$id" -c "$RENDERED" --ignore-formatted >> "$LOG" 2>&1; then
      log_tail; die "formatting $KAFKA_DATA failed"
    fi
  fi

  local t0=$SECONDS
  # nohup + background: the broker outlives this script and the terminal.
  nohup "$JAVA" "${opts[@]}" -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties" \
    -cp "$LIB/*" kafka.Kafka "$RENDERED" >> "$LOG" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PIDFILE"

  while ! ready; do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"; log_tail; die "broker exited during startup"
    fi
    if (( SECONDS - t0 >= START_TIMEOUT )); then
      log_tail
      cmd_stop >&2 || true
      die "broker not ready on 127.0.0.1:$KAFKA_PORT after ${START_TIMEOUT}s (stopped it again)"
    fi
    sleep 0.2
  done
  say "ready on 127.0.0.1:$KAFKA_PORT after $((SECONDS - t0))s (pid $pid, data $KAFKA_DATA, log var/log/kafka.log)"
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"; say "not running"; return 0
  fi
  say "stopping (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if (( SECONDS >= deadline )); then
      say "no clean shutdown after ${STOP_TIMEOUT}s, killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  say "stopped"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if ready; then say "running (pid $pid) on 127.0.0.1:$KAFKA_PORT, ready"
    else say "running (pid $pid) on 127.0.0.1:$KAFKA_PORT, NOT answering yet"; fi
    say "data $KAFKA_DATA, log $LOG"
    return 0
  fi
  say "not running"
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
