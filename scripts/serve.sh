#!/usr/bin/env bash
# `make serve`: the ingester (publication topics -> online store) and the read API, stopped together on Ctrl-C.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
pids=()

stop() {
  trap - INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "${pids[@]}" 2>/dev/null || exit 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null
  exit 0
}
trap stop INT TERM

"$bin/ok-ml" serve ingest &
pids+=($!)
"$bin/ok-ml" serve api &
pids+=($!)
wait -n
stop
