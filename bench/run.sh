#!/usr/bin/env bash
# Measures crier the way users meet it — the real release binary, wrk, keep-alive, every
# connection opened at start — next to the limits probe when shared/perf is there, and prints
# one table. See bench/README.md.
#
#   bench/run.sh                        build crier (cargo build --release) and measure
#   CRIER_BIN=target/release/crier DUR=3 bench/run.sh
#
# Knobs: DUR (wrk seconds per row, 10), WORKERS (HTTP workers of crier and the probe alike, 8;
# crier's own default is 32), CRIER_BIN (skip the build), LIMITS_DIR (the limits probe's
# source, default ../shared/perf/limits next to the repo), PROBE_BIN (an http_send
# already built from it), CONNS ("16 64 256"), BENCH_TMPDIR (where data dirs go; a real disk),
# DISPATCH_TIMEOUT (seconds for bench/dispatch.sh, 900), STRICT=1 (exit 1 if a target is missed).
# Exit status: 0 when everything ran and `crier doctor` is clean, 1 otherwise.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TOOLS=$HERE/tools.py

DUR=${DUR:-10}
CONNS=${CONNS:-16 64 256}
READ_CONNS=64
THREADS=2          # wrk threads
WORKERS=${WORKERS:-8}
LIMITS_DIR=${LIMITS_DIR:-$REPO/../shared/perf/limits}
PROBE_BIN=${PROBE_BIN:-}
DISPATCH_TIMEOUT=${DISPATCH_TIMEOUT:-900}
STRICT=${STRICT:-0}
WALLET_MINOR=900000000000
PASSWORD='correct horse battery'

log() { printf '== %s\n' "$*" >&2; }
note() { printf '\n!!\n!! %s\n!!\n\n' "$*" >&2; }
die() {
  printf 'bench/run.sh: %s\n' "$*" >&2
  exit 1
}

[[ $DUR =~ ^[1-9][0-9]*$ ]] || die "DUR must be a whole number of seconds, not '$DUR'"
for c in $CONNS; do
  if ! [[ $c =~ ^[0-9]+$ ]] || ((c < THREADS)); then
    die "CONNS must be numbers >= $THREADS, not '$c'"
  fi
done
command -v python3 >/dev/null || die "python3 is required (JSON and HTTP helpers)"

# The user's CRIER_* settings would change what is measured: only CRIER_BIN is ours.
GIVEN_BIN=${CRIER_BIN:-}
while read -r name; do
  unset "$name"
done < <(compgen -e | grep '^CRIER_' || true)

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crier-bench.XXXXXX")
OUT=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crier-bench-results.XXXXXX") # kept
RESULTS=$OUT/results.txt
: >"$RESULTS"
SERVERS=() # wrappers of servers still running (a stopped one leaves: its pid may be reused)

# The process a `timeout` wrapper started (empty if none).
child_of() {
  local children
  children=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
  printf '%s' "${children%% *}"
}

# Stops a server started by start_server: one SIGTERM to the server itself (to the `timeout`
# wrapper, crier would get two: timeout passes a signal on to its child and to its process group,
# and a second SIGTERM makes crier exit at once, 143); after 15 s, SIGKILL to the wrapper's
# process group (timeout runs in a group of its own). Sets STOP_RC (the server's exit status)
# and STOP_SECS.
stop_server() {
  local pid=$1 waited=0 child
  STOP_RC=0
  child=$(child_of "$pid")
  kill -TERM "${child:-$pid}" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < 150)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || STOP_RC=$?
  local left=() p
  for p in "${SERVERS[@]}"; do
    [[ $p == "$pid" ]] || left+=("$p")
  done
  SERVERS=("${left[@]}")
  STOP_SECS=$(awk -v w="$waited" 'BEGIN { printf "%.1f", w / 10 }')
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${SERVERS[@]}"; do
    stop_server "$pid"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server LOG BOUND_SECS CMD... : in the background, bounded by `timeout`; sets SERVER_PID.
start_server() {
  local log=$1 bound=$2
  shift 2
  timeout -k 5 "$bound" "$@" </dev/null >/dev/null 2>>"$log" &
  SERVER_PID=$!
  SERVERS+=("$SERVER_PID")
}

# ---------------------------------------------------------------------------------- tools

if ! command -v wrk >/dev/null; then
  log "wrk is missing: installing it from Debian (apt-get install -y wrk)"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "wrk is missing and this is not root: install wrk (apt-get install -y wrk)"
    sudo=(sudo -n)
  fi
  if ! { "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; } >&2; then
    die "could not install wrk with apt-get; install it by hand (apt-get install -y wrk) and rerun"
  fi
  command -v wrk >/dev/null || die "apt-get installed no wrk"
fi

fs=$(stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
if [[ $fs == tmpfs || $fs == ramfs ]]; then
  note "$WORK is on $fs: fsync costs nothing there, so the figures flatter both servers. Set BENCH_TMPDIR to a directory on a real disk."
fi

# cargo_exe DIR NAME CARGO_ARGS... : builds in DIR and prints the path of executable NAME.
cargo_exe() {
  local dir=$1 name=$2
  shift 2
  (cd "$dir" && cargo build --release --message-format=json-render-diagnostics "$@") |
    python3 "$TOOLS" cargo-exe "$name"
}

if [[ -n $GIVEN_BIN ]]; then
  BIN=$(realpath "$GIVEN_BIN")
  [[ -x $BIN ]] || die "CRIER_BIN=$GIVEN_BIN is not an executable"
  log "crier: $BIN (CRIER_BIN)"
else
  log "building crier: cargo build --release --locked"
  BIN=$(cargo_exe "$REPO" crier --locked) || die "cargo build --release failed"
  log "crier: $BIN"
fi
# bench/dispatch.sh looks for the SMTP sink next to the binary (SINK_BIN overrides it).
if [[ -z ${SINK_BIN:-} && ! -x $(dirname "$BIN")/examples/smtp_sink ]]; then
  log "building the SMTP sink: cargo build --release --example smtp_sink"
  SINK_BIN=$(cargo_exe "$REPO" smtp_sink --locked --example smtp_sink) || die "building examples/smtp_sink failed"
  export SINK_BIN
fi

LIMITS_WRK=""
if [[ -d $LIMITS_DIR ]]; then
  cp -r "$LIMITS_DIR" "$WORK/limits"
  chmod -R u+w "$WORK/limits" # shared/ is read-only; the copy must take a target/ folder
  LIMITS_WRK=$WORK/limits/scripts/wrk
  [[ -f $LIMITS_WRK/send.lua ]] || die "$LIMITS_DIR has no scripts/wrk/send.lua"
  if [[ -n $PROBE_BIN ]]; then
    PROBE_BIN=$(realpath "$PROBE_BIN")
    [[ -x $PROBE_BIN ]] || die "PROBE_BIN=$PROBE_BIN is not an executable"
  else
    # Built from the copy, into a target dir that outlives it, so that later runs reuse the build.
    probe_target=${CARGO_TARGET_DIR:-$REPO/target}/limits-probe
    log "building the limits probe (a copy of $LIMITS_DIR): cargo build --release --bin http_send, in $probe_target"
    PROBE_BIN=$(CARGO_TARGET_DIR=$probe_target cargo_exe "$WORK/limits" http_send --bin http_send) ||
      die "building the limits probe failed"
  fi
  log "probe: $PROBE_BIN"
else
  PROBE_BIN=""
  note "No limits probe: $LIMITS_DIR does not exist (set LIMITS_DIR to shared/perf/limits). The probe and ratio columns will be '-': send rows are judged on latency only."
fi

CRIER_PORT=$(python3 "$TOOLS" free-port)
PROBE_PORT=$(python3 "$TOOLS" free-port)
while [[ $PROBE_PORT == "$CRIER_PORT" ]]; do PROBE_PORT=$(python3 "$TOOLS" free-port); done

# ------------------------------------------------------------------------------ crier setup

# setup_crier DIR: a data dir with a user, workspace "Bench", a wallet credited far beyond any run,
# and a live key allowed to send, read messages and read billing; writes DIR/key and DIR/workspace.
setup_crier() {
  local dir=$1 data=$1/data
  mkdir -p "$dir"
  "$BIN" migrate --data-dir "$data" >>"$dir/setup.log" 2>&1 || die "crier migrate failed: $(cat "$dir/setup.log")"
  printf '%s\n' "$PASSWORD" |
    "$BIN" admin create-user --data-dir "$data" --email bench@example.com --password-stdin \
      --workspace Bench --json >>"$dir/setup.log" 2>&1 || die "crier admin create-user failed: $(cat "$dir/setup.log")"
  "$BIN" admin create-api-key --data-dir "$data" --workspace Bench --name bench \
    --scopes messages:send,messages:read,billing:read --mode live --json >"$dir/key.json" 2>>"$dir/setup.log" ||
    die "crier admin create-api-key failed: $(cat "$dir/setup.log")"
  python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); print(k["key"]); print(k["workspace_id"], file=open(sys.argv[2], "w"))' \
    "$dir/key.json" "$dir/workspace" >"$dir/key"
  "$BIN" admin adjust-wallet --data-dir "$data" --workspace "$(cat "$dir/workspace")" \
    --amount-minor "$WALLET_MINOR" --reason bench >>"$dir/setup.log" 2>&1 ||
    die "crier admin adjust-wallet failed: $(cat "$dir/setup.log")"
}

# start_crier DIR LABEL: `crier serve` as the send rows measure it, logging to DIR/serve-LABEL.log;
# waits for GET /readyz 200.
start_crier() {
  local dir=$1
  CRIER_LOG=$dir/serve-$2.log
  start_server "$CRIER_LOG" $((4 * DUR + 300)) \
    env CRIER_DISPATCH_WORKERS=0 CRIER_API_RATE_LIMIT=0 "$BIN" serve --data-dir "$dir/data" --addr "127.0.0.1:$CRIER_PORT" \
    --db-synchronous full --workers "$WORKERS" --log-level warn
  python3 "$TOOLS" wait-ready "$CRIER_PORT" 30 || die "crier serve did not become ready: $(tail -5 "$CRIER_LOG")"
}

# stop_crier LABEL: SIGTERM, records how it exited, its RSS and what it logged.
stop_crier() {
  local label=$1 vm child
  child=$(child_of "$SERVER_PID")
  vm=$(python3 "$TOOLS" vm "${child:-0}")
  stop_server "$SERVER_PID"
  printf 'RESULT {"bench":"shutdown","variant":"%s","exit":%d,"secs":%s,"vm_kb":%s}\n' \
    "$label" "$STOP_RC" "$STOP_SECS" "$vm" >>"$RESULTS"
  python3 - "$CRIER_LOG" "$label" >>"$RESULTS" <<'EOF'
import json, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1], errors="replace") if l.strip()]
print("RESULT " + json.dumps({"bench": "crier-warnings", "variant": sys.argv[2],
                              "count": len(lines), "first": lines[0][:300] if lines else None}))
EOF
}

# run_wrk BENCH VARIANT CONNS SCRIPT URL [VAR=VALUE...]: one bounded wrk run, RESULT kept.
run_wrk() {
  local bench=$1 variant=$2 conns=$3 script=$4 url=$5 out
  shift 5
  out=$WORK/wrk-$bench-$variant.txt
  # --timeout above the run's length: wrk drops a request slower than --timeout from its latency
  # figures (counting a "timeout" error instead), which would hide the slowest ones from max.
  if ! env "$@" BENCH="$bench" VARIANT="$variant" BENCH_DIR="$HERE" \
    BENCH_CONNS_PER_THREAD=$((conns / THREADS)) \
    timeout -k 5 $((DUR + 60)) wrk -t"$THREADS" -c"$conns" -d"${DUR}s" --timeout "$((DUR + 10))s" \
    -s "$script" "$url" >"$out" 2>&1; then
    cat "$out" >&2
    die "wrk failed ($bench $variant)"
  fi
  grep '^RESULT ' "$out" >>"$RESULTS" || {
    cat "$out" >&2
    die "wrk printed no RESULT line ($bench $variant)"
  }
  python3 - "$out" <<'EOF' >&2
import json, sys
r = json.loads(next(l for l in open(sys.argv[1]) if l.startswith("RESULT "))[7:])
errs = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
print(f"   {r['bench']} {r['variant']}: {r['rps']:.0f} req/s, p50 {r['p50_us'] / 1e3:.2f} ms, "
      f"p99 {r['p99_us'] / 1e3:.2f} ms, max {r['max_us'] / 1e3:.1f} ms, "
      f"non-2xx {r.get('non_2xx_seen', r['non_2xx'])}, socket errors {errs}")
EOF
}

# ------------------------------------------------------------------------------ measuring

log "start-to-ready and idle RSS (crier serve with default settings, 5 starts)"
setup_crier "$WORK/startup"
python3 "$TOOLS" startup --bin "$BIN" --data-dir "$WORK/startup/data" --empty-dir "$WORK/startup/empty" \
  --runs 5 --idle-secs 3 --log "$WORK/startup/serve.log" >>"$RESULTS"
rm -rf "$WORK/startup"

log "binary size"
size=$(stat -c %s "$BIN")
stripped=null
debug_info=false
if readelf -S "$BIN" 2>/dev/null | grep -q '\.debug_'; then debug_info=true; fi
if command -v strip >/dev/null && strip -o "$WORK/crier.stripped" "$BIN" 2>/dev/null; then
  stripped=$(stat -c %s "$WORK/crier.stripped")
fi
profile_debug=$(awk '/^\[profile.release\]/ { p = 1; next } /^\[/ { p = 0 } p && $1 == "debug" { print $3 }' \
  "$REPO/Cargo.toml" | tr -d '"')
printf 'RESULT {"bench":"size","bytes":%s,"stripped_bytes":%s,"debug_info":%s,"profile_debug":"%s"}\n' \
  "$size" "$stripped" "$debug_info" "${profile_debug:-}" >>"$RESULTS"

MSG_BODY='{"channel":"sms","to":"+237677123456","text":"Bench setup message"}'
last_dir=""
for c in $CONNS; do
  log "c$c: POST /v1/messages, ${DUR}s each: ${PROBE_BIN:+the limits probe, then }crier"
  if [[ -n $PROBE_BIN ]]; then
    pdir=$WORK/probe-c$c
    mkdir -p "$pdir"
    start_server "$pdir/server.log" $((DUR + 120)) \
      "$PROBE_BIN" --port "$PROBE_PORT" --workers "$WORKERS" --writer group --sync full \
      --ckpt background --dir "$pdir" --max-secs $((DUR + 90))
    python3 "$TOOLS" wait-port "$PROBE_PORT" 30 || die "the probe did not start: $(tail -5 "$pdir/server.log")"
    run_wrk probe-send "c$c" "$c" "$HERE/probe_send.lua" "http://127.0.0.1:$PROBE_PORT/v1/messages" \
      WRK_DIR="$LIMITS_WRK"
    stop_server "$SERVER_PID"
    rm -rf "$pdir" # its WAL grows without bound under --ckpt background
  fi

  dir=$WORK/crier-c$c
  setup_crier "$dir"
  key=$(cat "$dir/key")
  start_crier "$dir" "send-c$c"
  # One message before the load: proves the key can send, and is the id the read rows fetch.
  python3 "$TOOLS" call POST "http://127.0.0.1:$CRIER_PORT/v1/messages" --data "$MSG_BODY" \
    -H "Authorization: Bearer $key" -H "Idempotency-Key: bench-setup" --expect 201 --field id \
    >"$dir/message_id" || die "the setup send failed"
  run_wrk crier-send "c$c" "$c" "$HERE/send.lua" "http://127.0.0.1:$CRIER_PORT/v1/messages" \
    CRIER_KEY="$key"
  stop_crier "send c$c"
  last_dir=$dir
done

if [[ -n $last_dir ]]; then
  log "reads at c$READ_CONNS (crier only, on the c${CONNS##* } send run's data)"
  key=$(cat "$last_dir/key")
  msg=$(cat "$last_dir/message_id")
  start_crier "$last_dir" reads
  base=http://127.0.0.1:$CRIER_PORT
  python3 "$TOOLS" call GET "$base/v1/messages?limit=50" -H "Authorization: Bearer $key" --expect 200 \
    >"$WORK/list.json" || die "GET /v1/messages failed"
  page=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print(len(b.get("data", b.get("items", []))))' "$WORK/list.json")
  ((page == 50)) || note "GET /v1/messages?limit=50 returned $page messages, not a full page of 50"
  python3 "$TOOLS" call GET "$base/v1/billing" -H "Authorization: Bearer $key" --expect 200 >/dev/null ||
    die "GET /v1/billing failed (does the key lack a scope?)"
  for read in "message /v1/messages/$msg" "list /v1/messages?limit=50" "billing /v1/billing"; do
    run_wrk crier-read "${read%% *}" "$READ_CONNS" "$HERE/get.lua" "$base/" \
      CRIER_KEY="$key" BENCH_PATH="${read#* }"
  done
  # The same page with every request a page of its own: what reading and writing 50 messages
  # costs when no kept page can answer (as when sends commit between two reads).
  run_wrk crier-read list-rendered "$READ_CONNS" "$HERE/get.lua" "$base/" \
    CRIER_KEY="$key" BENCH_PATH="/v1/messages?limit=50" BENCH_UNIQUE_PAGES=1
  stop_crier reads
fi

log "bench/dispatch.sh (up to ${DISPATCH_TIMEOUT}s)"
rc=0
timeout -k 10 "$DISPATCH_TIMEOUT" bash "$HERE/dispatch.sh" "$BIN" >"$WORK/dispatch.txt" 2>"$WORK/dispatch.err" || rc=$?
if ! grep '^RESULT dispatch-' "$WORK/dispatch.txt" >>"$RESULTS"; then
  printf 'RESULT dispatch-error reason=no-RESULT-lines\n' >>"$RESULTS"
fi
if ((rc != 0)); then
  tail -20 "$WORK/dispatch.err" >&2
  printf 'RESULT dispatch-error reason=exit-%d\n' "$rc" >>"$RESULTS"
fi

log "crier doctor on each send run's data dir"
doctor_failed=0
for c in $CONNS; do
  dir=$WORK/crier-c$c
  [[ -d $dir/data ]] || continue
  rc=0
  timeout -k 5 300 "$BIN" doctor --data-dir "$dir/data" >"$dir/doctor.txt" 2>&1 || rc=$?
  ok=true
  if ((rc != 0)) || grep -q 'FAIL' "$dir/doctor.txt"; then
    ok=false
    doctor_failed=1
    printf 'crier doctor (c%s) is not clean (exit %d):\n' "$c" "$rc" >&2
    cat "$dir/doctor.txt" >&2
  fi
  printf 'RESULT {"bench":"doctor","variant":"c%s","ok":%s,"exit":%d}\n' "$c" "$ok" "$rc" >>"$RESULTS"
done

echo
echo "crier bench: $(date -u +%FT%TZ), ${DUR}s per wrk row, wrk -t$THREADS keep-alive, $WORKERS HTTP workers, synchronous=FULL"
echo "crier: $BIN"
[[ -n $PROBE_BIN ]] && echo "probe: limits http_send --writer group --sync full --ckpt background"
echo
table_rc=0
if [[ $STRICT == 1 ]]; then
  python3 "$TOOLS" table "$RESULTS" --strict || table_rc=$?
else
  python3 "$TOOLS" table "$RESULTS" || table_rc=$?
fi
echo
echo "raw RESULT lines: $RESULTS"
if ((doctor_failed)); then
  die "crier doctor found problems after the load (see above)"
fi
exit "$table_rc"
