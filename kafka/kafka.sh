#!/usr/bin/env bash
# Starts, stops and probes a single-node Apache Kafka (KRaft) on 127.0.0.1 from Maven Central jars.
# Does nothing when KAFKA_BOOTSTRAP_SERVERS points the product at an existing cluster.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(dirname "$here")"
cache="${OK_ML_KAFKA_CACHE:-$project/.cache/kafka}"
state="${OK_ML_KAFKA_STATE:-${OK_ML_HOME:-$project/.ok_ml}/kafka}"
port="${OK_ML_KAFKA_PORT:-9092}"
controller_port="${OK_ML_KAFKA_CONTROLLER_PORT:-9093}"
libs="$cache/libs"
pidfile="$state/kafka.pid"
logfile="$state/kafka.log"

external() { [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; }

fetch() {
  if [ -f "$libs/.complete" ]; then return; fi
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
  touch "$libs/.complete"
}

java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/log4j2.yaml" -cp "$libs/*")

write_config() {
  mkdir -p "$state/data"
  cat > "$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.enable=true
auto.create.topics.enable=false
PROPS
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

wait_ready() {
  for _ in $(seq 1 120); do
    if ! running; then echo "kafka exited during start; log: $logfile" >&2; tail -n 40 "$logfile" >&2; return 1; fi
    if port_open && grep -q "Kafka Server started" "$logfile"; then
      echo "kafka ready on 127.0.0.1:$port (log: $logfile)"; return 0
    fi
    sleep 0.5
  done
  echo "kafka not ready after 60 s; log: $logfile" >&2; tail -n 40 "$logfile" >&2; return 1
}

up() {
  if external; then echo "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS: using the existing cluster"; return; fi
  if running; then echo "kafka already running on 127.0.0.1:$port"; return; fi
  if port_open; then
    echo "127.0.0.1:$port is taken by a process this script did not start; set KAFKA_BOOTSTRAP_SERVERS to use it," \
      "or OK_ML_KAFKA_PORT / OK_ML_KAFKA_CONTROLLER_PORT to start the local broker elsewhere" >&2
    return 1
  fi
  fetch
  write_config
  # A fresh log per start, so readiness is judged on this start's lines only.
  [ -f "$logfile" ] && mv "$logfile" "$logfile.previous"
  if [ ! -f "$state/data/meta.properties" ]; then
    java "${java_opts[@]}" kafka.tools.StorageTool format -t "ok-ml-local-kafka-0001" -c "$state/server.properties" >>"$logfile" 2>&1
  fi
  nohup java "${java_opts[@]}" kafka.Kafka "$state/server.properties" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  wait_ready
}

down() {
  if external || ! running; then rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "kafka stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) if external || running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 fetch|up|down|status" >&2; exit 2 ;;
esac
