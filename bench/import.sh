#!/usr/bin/env bash
# Contact import benchmark (bench/import.py): builds the release binary unless CRIER_BIN is given,
# then imports ROWS generated contacts (default 1,000,000) while sending messages; prints a table.
#   bench/import.sh
#   ROWS=200000 CRIER_BIN=target/release/crier bench/import.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [[ -z ${CRIER_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked >&2)
  CRIER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/crier
fi
export CRIER_BIN
exec timeout -k 10 1800 python3 "$HERE/import.py"
