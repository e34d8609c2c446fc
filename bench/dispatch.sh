#!/usr/bin/env bash
# Dispatcher throughput of the real binary: queue MESSAGES messages with the dispatchers off, then
# restart with them on and time until every message is `sent`; once to the `log` provider (SMS),
# once to a local SMTP sink (email, examples/smtp_sink.rs). Runs `crier doctor` after each run.
#
# Usage: bench/dispatch.sh CRIER_BIN        (e.g. target/release/crier)
# Environment (all optional):
#   MESSAGES=30000       messages queued per run
#   RUNS="log smtp"      which runs
#   WORKERS="4 2 8"      dispatcher counts timed per run; the first is reported as the run's
#                        RESULT line, the others as RESULT dispatch-<run>-w<count>
#   LOG_LEVEL=warn       crier's --log-level during the timed phase (info logs two lines a message)
#   DB_SYNCHRONOUS=full  crier's --db-synchronous
#   SINK_BIN=...         the sink binary (default: examples/smtp_sink next to CRIER_BIN, as
#                        `cargo build --release --example smtp_sink` leaves it)
#   MAX_SECS=300         limit on each phase (queueing, one timed run)
#   WEBHOOKS=0           1: the workspace has a webhook endpoint for every message event, on a
#                        local HTTP sink (examples/http_sink.rs, next to CRIER_BIN as `cargo build
#                        --release --example http_sink` leaves it, or HTTP_SINK_BIN), so each sent
#                        message also records an event the webhook runner delivers; the run then
#                        also waits for every delivery and reports when the last one succeeded
#   PERF_DIR=...         record a CPU profile of each timed server (`perf record -g`) into
#                        PERF_DIR/<run>-w<count>.data
#
# Prints per timed run one human line and one line another script parses:
#   RESULT dispatch-log messages=30000 secs=1.42 rate=21126
# Exits non-zero if a phase times out, a message is not sent, the sink did not receive every
# message exactly once, or doctor is not clean. Only 127.0.0.1 is contacted; every loop is bounded.
set -euo pipefail

BIN=$(realpath "${1:?usage: bench/dispatch.sh CRIER_BIN}")
HERE=$(cd "$(dirname "$0")" && pwd)
MESSAGES=${MESSAGES:-30000}
RUNS=${RUNS:-log smtp}
WORKERS=${WORKERS:-4 2 8}
LOG_LEVEL=${LOG_LEVEL:-warn}
DB_SYNCHRONOUS=${DB_SYNCHRONOUS:-full}
MAX_SECS=${MAX_SECS:-300}
WEBHOOKS=${WEBHOOKS:-0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crier-dispatch.XXXXXX")
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "dispatch.sh: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
if ! command -v wrk >/dev/null; then
  if command -v apt-get >/dev/null; then
    (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null 2>&1 \
      || die "wrk is missing and apt-get could not install it"
  else
    die "wrk is missing"
  fi
fi

if [[ " $RUNS " == *" smtp "* ]]; then
  SINK_BIN=${SINK_BIN:-$(dirname "$BIN")/examples/smtp_sink}
  [[ -x $SINK_BIN ]] || die "no SMTP sink at $SINK_BIN: cargo build --release --example smtp_sink (or set SINK_BIN)"
fi

WEBHOOK_ENV=()
if [[ $WEBHOOKS == 1 ]]; then
  HTTP_SINK_BIN=${HTTP_SINK_BIN:-$(dirname "$BIN")/examples/http_sink}
  [[ -x $HTTP_SINK_BIN ]] || die "no HTTP sink at $HTTP_SINK_BIN: cargo build --release --example http_sink (or set HTTP_SINK_BIN)"
  # One sink for the whole script: the endpoint's URL is written into each snapshot.
  "$HTTP_SINK_BIN" --max-secs $((MAX_SECS * 10)) >"$WORK/http_sink.out" &
  PIDS+=("$!")
  for _ in $(seq 100); do grep -q LISTENING "$WORK/http_sink.out" 2>/dev/null && break; sleep 0.05; done
  HOOK_URL=$(sed -n 's/^LISTENING \(127.0.0.1:[0-9]*\)$/http:\/\/\1\/hooks/p' "$WORK/http_sink.out")
  [[ -n $HOOK_URL ]] || die "the HTTP sink did not start"
  WEBHOOK_ENV=(CRIER_WEBHOOK_ALLOW_PRIVATE=true CRIER_WEBHOOK_HTTP_HOSTS=127.0.0.1)
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# count DB WHERE: one number from the database, read-only.
count() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
conn = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
print(conn.execute("SELECT count(*) FROM messages WHERE " + sys.argv[2]).fetchone()[0])
PY
}

# wait_http PORT PID: until /healthz answers (bounded), or the server died.
wait_http() {
  python3 - "$1" "$2" <<'PY' || die "the server on port $1 did not start"
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 20
while time.time() < deadline:
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/healthz" % port, timeout=1).read()
        sys.exit(0)
    except Exception:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(1)
        time.sleep(0.02)
sys.exit(1)
PY
}

# cpu_secs PID: user + system CPU seconds of a running process.
cpu_secs() {
  python3 -c 'import os,sys; f=open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split(); print("%.2f" % ((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")))' "$1" 2>/dev/null || echo "?"
}

# stop PID: SIGTERM, then wait (bounded), then SIGKILL.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# prepare DIR: a fresh data dir with a Bench workspace, a funded wallet; prints a live send key.
prepare() {
  local dir=$1 key ws
  "$BIN" migrate --data-dir "$dir" >/dev/null 2>&1
  echo 'correct horse battery staple' | "$BIN" admin create-user --data-dir "$dir" \
    --email bench@example.com --password-stdin --workspace Bench >/dev/null 2>&1
  key=$("$BIN" admin create-api-key --data-dir "$dir" --workspace Bench --name bench \
    --scopes messages:send --mode live --json | python3 -c 'import sys,json;print(json.load(sys.stdin)["key"])')
  ws=$("$BIN" admin create-api-key --data-dir "$dir" --workspace Bench --name reader \
    --scopes messages:read --mode live --json | python3 -c 'import sys,json;print(json.load(sys.stdin)["workspace_id"])')
  "$BIN" admin adjust-wallet --data-dir "$dir" --workspace "$ws" --amount-minor 900000000000 \
    --reason bench >/dev/null
  if [[ $WEBHOOKS == 1 ]]; then
    "$BIN" admin create-api-key --data-dir "$dir" --workspace Bench --name hooks \
      --scopes webhooks:write --mode live --json \
      | python3 -c 'import sys,json;print(json.load(sys.stdin)["key"])' >"$dir/hooks.key"
  fi
  echo "$key"
}

# queue DIR KEY CHANNEL: MESSAGES messages queued, dispatchers off.
queue() {
  local dir=$1 key=$2 channel=$3 port pid wrk_pid have round i
  port=$(free_port)
  env "${WEBHOOK_ENV[@]}" CRIER_DISPATCH_WORKERS=0 CRIER_API_RATE_LIMIT=0 "$BIN" serve --data-dir "$dir" --addr "127.0.0.1:$port" \
    --db-synchronous "$DB_SYNCHRONOUS" --workers 16 --log-level warn >/dev/null 2>>"$dir/queue.log" &
  pid=$!; PIDS+=("$pid")
  wait_http "$port" "$pid"
  if [[ $WEBHOOKS == 1 ]]; then
    python3 - "$port" "$(cat "$dir/hooks.key")" "$HOOK_URL" <<'PY' >&2 || die "could not register the webhook endpoint"
import json, sys, urllib.request
port, key, url = sys.argv[1:4]
body = json.dumps({"url": url, "events": ["message.sent", "message.delivered", "message.failed"]})
request = urllib.request.Request("http://127.0.0.1:%s/v1/webhook-endpoints" % port, data=body.encode(),
    headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"}, method="POST")
print("webhook endpoint:", json.load(urllib.request.urlopen(request, timeout=10))["id"], "->", url)
PY
  fi
  have=0
  # A round that stops making progress (tiny_http could leave a keep-alive connection of a
  # burst unserved) is ended, and another one sends the rest.
  for round in $(seq 10); do
    local want=$((MESSAGES - have)) last=$have idle=0
    (( want > 0 )) || break
    CRIER_KEY=$key CHANNEL=$channel QUOTA=$(( (want + 1) / 2 )) \
      wrk -t2 -c8 -d"${MAX_SECS}s" -s "$HERE/queue.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1 &
    wrk_pid=$!; PIDS+=("$wrk_pid")
    # Each wrk thread sends its quota then idles on /healthz: stop wrk once the rows are there.
    for i in $(seq $((MAX_SECS * 5))); do
      sleep 0.2
      have=$(count "$dir/crier.db" "1")
      (( have >= MESSAGES )) && break
      kill -0 "$wrk_pid" 2>/dev/null || break
      if (( have == last )); then idle=$((idle + 1)); else idle=0; last=$have; fi
      (( idle < 15 )) || break
    done
    sleep 0.5 # the last quota's in-flight requests
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
    have=$(count "$dir/crier.db" "1")
  done
  stop "$pid"
  have=$(count "$dir/crier.db" "status = 'queued'")
  # A request or two of a burst can fail (a 503 under load): the run times what was queued.
  (( have * 100 >= MESSAGES * 99 )) || die "only $have of $MESSAGES messages could be queued (see $dir/queue.log)"
  echo "$have"
}

# timed NAME SNAPSHOT WORKERS MESSAGES [VAR=VALUE…]: one timed delivery run from a copy.
timed() {
  local name=$1 snapshot=$2 workers=$3 total=$4; shift 4
  local dir="$WORK/run-$name-w$workers" port pid sink_pid="" sink_out started secs sent line
  cp -r "$snapshot" "$dir"
  port=$(free_port)
  if [[ $name == smtp ]]; then
    sink_out="$dir/sink.out"
    "$SINK_BIN" --max-secs "$MAX_SECS" >"$sink_out" &
    sink_pid=$!; PIDS+=("$sink_pid")
    for _ in $(seq 100); do grep -q LISTENING "$sink_out" 2>/dev/null && break; sleep 0.05; done
    local sink_port; sink_port=$(sed -n 's/^LISTENING 127.0.0.1:\([0-9]*\)$/\1/p' "$sink_out")
    [[ -n $sink_port ]] || die "the SMTP sink did not start"
    set -- "$@" CRIER_EMAIL_PROVIDERS=smtp CRIER_SMTP_HOST=127.0.0.1 CRIER_SMTP_PORT="$sink_port" \
      CRIER_SMTP_SECURITY=none "CRIER_EMAIL_FROM=Bench <bench@example.com>"
  fi
  started=$(date +%s.%N)
  env "${WEBHOOK_ENV[@]}" "$@" CRIER_DISPATCH_WORKERS="$workers" CRIER_API_RATE_LIMIT=0 "$BIN" serve --data-dir "$dir" \
    --addr "127.0.0.1:$port" --db-synchronous "$DB_SYNCHRONOUS" --log-level "$LOG_LEVEL" \
    >/dev/null 2>"$dir/serve.log" &
  pid=$!; PIDS+=("$pid")
  local perf_pid=""
  if [[ -n ${PERF_DIR:-} ]]; then
    mkdir -p "$PERF_DIR"
    perf record ${PERF_ARGS:--g} -p "$pid" -o "$PERF_DIR/$name-w$workers.data" >/dev/null 2>&1 &
    perf_pid=$!; PIDS+=("$perf_pid")
  fi
  # Poll the file read-only (the partial indexes make this count cheap) until nothing is left.
  secs=$(python3 - "$dir/crier.db" "$started" "$MAX_SECS" "$pid" <<'PY'
import os, sqlite3, sys, time
path, started, limit, pid = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
conn = None
while time.time() - started < limit:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    try:
        conn = conn or sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        left = conn.execute("SELECT (SELECT count(*) FROM messages WHERE status = 'queued') + "
                            "(SELECT count(*) FROM messages WHERE status = 'sending')").fetchone()[0]
        if left == 0:
            print("%.3f" % (time.time() - started))
            sys.exit(0)
    except sqlite3.Error:
        conn = None
    time.sleep(0.02)
print("timeout")
PY
)
  # With WEBHOOKS=1: until no delivery is left pending, timed from the same start.
  local hooks=""
  if [[ $WEBHOOKS == 1 && $secs != timeout ]]; then
    hooks=$(python3 - "$dir/crier.db" "$started" "$MAX_SECS" <<'PY'
import sqlite3, sys, time
path, started, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
while time.time() - started < limit:
    events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    unprepared = conn.execute("SELECT count(*) FROM events WHERE prepared_at IS NULL").fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'").fetchone()[0]
    done = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'").fetchone()[0]
    if unprepared == 0 and pending == 0 and done > 0:
        print("; webhooks: %d events delivered, the last %.3f s after the start" % (done, time.time() - started))
        sys.exit(0)
    time.sleep(0.05)
print("; webhooks: not all delivered within the limit (%d of %d)" % (done, events))
PY
)
  fi
  [[ -z $perf_pid ]] || { kill -TERM "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; }
  # CPU seconds the server (and the sink) used, user + system, to compare with the wall time.
  local cpu sink_cpu=""
  cpu=$(cpu_secs "$pid")
  [[ -z $sink_pid ]] || sink_cpu=$(cpu_secs "$sink_pid")
  stop "$pid"
  [[ $secs != timeout ]] || die "$name with $workers dispatchers: not done within ${MAX_SECS}s (see $dir/serve.log)"
  sent=$(count "$dir/crier.db" "status = 'sent'")
  (( sent == total )) || die "$name with $workers dispatchers: $sent of $total messages sent"
  local received=""
  if [[ -n $sink_pid ]]; then
    kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
    line=$(grep '^SINK' "$sink_out" || true)
    received=${line#*messages=}; received=${received%% *}
    [[ $received == "$total" ]] \
      || die "smtp with $workers dispatchers: the sink received ${received:-?} messages for $total sent"
    received=" (sink: $received messages over ${line##*connections=} connections, CPU $sink_cpu s)"
  fi
  "$BIN" doctor --data-dir "$dir" >"$dir/doctor.out" 2>&1 \
    || { cat "$dir/doctor.out" >&2; die "doctor is not clean after $name with $workers dispatchers"; }
  local rate; rate=$(python3 -c "print(round($total / $secs))")
  echo "dispatch-$name: $total messages sent in $secs s = $rate/s with $workers dispatchers (server CPU ${cpu} s), synchronous=$DB_SYNCHRONOUS, log level $LOG_LEVEL$received$hooks; doctor clean"
  local tag="dispatch-$name"
  [[ $workers == "${WORKERS%% *}" ]] || tag="$tag-w$workers"
  echo "RESULT $tag messages=$total secs=$secs rate=$rate"
  rm -rf "$dir"
}

for run in $RUNS; do
  case $run in
    log) channel=sms ;;
    smtp) channel=email ;;
    *) die "unknown run $run (log or smtp)" ;;
  esac
  snapshot="$WORK/queued-$run"
  mkdir -p "$snapshot"
  key=$(prepare "$snapshot")
  total=$(queue "$snapshot" "$key" "$channel")
  for workers in $WORKERS; do
    timed "$run" "$snapshot" "$workers" "$total"
  done
  rm -rf "$snapshot"
done
