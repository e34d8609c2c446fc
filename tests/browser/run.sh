#!/usr/bin/env bash
# The console's browser test: Debian's headless Chromium, driven by playwright-core (pinned in
# package-lock.json), against target/debug/crier. Screenshots land in target/console-screenshots
# (CONSOLE_SCREENSHOTS to change it).
#
# Without Chromium or Node.js it SKIPS, loudly — unless CI=true, where it FAILS instead: CI must
# never pass without having run it (.ci/run installs what it needs).
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null || missing+=("chromium (apt-get install chromium)")
command -v node >/dev/null || missing+=("node (apt-get install nodejs npm)")
command -v npm >/dev/null || missing+=("npm (apt-get install npm)")
if ((${#missing[@]})); then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!! The console browser test cannot run: missing ${missing[*]}." >&2
    if [[ "${CI:-}" == "true" ]]; then
        echo "!! CI=true: FAILING." >&2
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
        exit 1
    fi
    echo "!! SKIPPED (outside CI). The console was NOT tested in a browser." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    exit 0
fi

echo "== cargo build (the binary the browser test drives)"
cargo build --locked --bin crier

echo "== npm ci (playwright-core, no browser download)"
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

echo "== console browser test ($("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo chromium))"
node --test --test-reporter=spec tests/browser/console.test.mjs tests/browser/campaigns.test.mjs tests/browser/billing.test.mjs tests/browser/admin.test.mjs tests/browser/webhooks.test.mjs tests/browser/settings.test.mjs
