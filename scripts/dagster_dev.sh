#!/usr/bin/env bash
# `make dev`: the Dagster webserver and daemon (what `dagster dev` runs), each in its own process group, all stopped
# within seconds on Ctrl-C. Under make, `dagster dev` kept its webserver and code servers alive for minutes after one.
set -uo pipefail
cd "$(dirname "$0")/.."
port="${DAGSTER_PORT:-3000}"
bin=.venv/bin
groups=()

stop() {
  trap - INT TERM
  echo "stopping the Dagster webserver and daemon ..." >&2
  for group in "${groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for group in "${groups[@]}"; do kill -0 -- "-$group" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && exit 0
    sleep 0.1
  done
  for group in "${groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
  exit 0
}
trap stop INT TERM

# setsid: Ctrl-C reaches only this script, which stops each group whole (code servers included).
setsid "$bin/dagster-webserver" -w workspace.yaml -h 127.0.0.1 -p "$port" &
groups+=($!)
setsid "$bin/dagster-daemon" run -w workspace.yaml &
groups+=($!)
echo "Dagster UI on http://127.0.0.1:$port (Ctrl-C stops it)" >&2
wait -n
stop
