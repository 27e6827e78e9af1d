#!/usr/bin/env bash
# Starts, stops and probes a local redis-server on 127.0.0.1 for the Redis online store (tests, `make serve`).
# Does nothing when REDIS_URL points the product at an existing Redis.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(dirname "$here")"
state="${OK_ML_REDIS_STATE:-${OK_ML_HOME:-$project/.ok_ml}/redis}"
# Not 6379: a Redis of other work on this machine may hold the default port.
port="${OK_ML_REDIS_PORT:-6390}"
pidfile="$state/redis.pid"
logfile="$state/redis.log"

external() { [ -n "${REDIS_URL:-}" ]; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

ping() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }

wait_ready() {
  for _ in $(seq 1 100); do
    if ping; then echo "redis ready on 127.0.0.1:$port (log: $logfile)"; return 0; fi
    sleep 0.1
  done
  echo "redis not ready after 10 s; log: $logfile" >&2; tail -n 40 "$logfile" >&2 || true; return 1
}

up() {
  if external; then echo "REDIS_URL=$REDIS_URL: using the existing Redis"; return; fi
  if running; then echo "redis already running on 127.0.0.1:$port"; return; fi
  if ! command -v redis-server >/dev/null; then echo "redis-server is not installed: run make redis-install" >&2; return 1; fi
  if port_open; then
    echo "127.0.0.1:$port is taken by a process this script did not start; set REDIS_URL to use it," \
      "or OK_ML_REDIS_PORT to start the local Redis elsewhere" >&2
    return 1
  fi
  mkdir -p "$state"
  # Durability is the AOF's: every write is logged and fsynced once a second (appendfsync always would fsync each
  # commit); with the AOF on, RDB snapshots (--save) add nothing.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$state" --pidfile "$pidfile" --logfile "$logfile" \
    --appendonly yes --appendfsync everysec --save ""
  wait_ready
}

down() {
  if external || ! running; then rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  # SIGTERM is redis' graceful shutdown (the AOF is flushed), and reaches our server whatever port it listens on.
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "redis stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if external || running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
