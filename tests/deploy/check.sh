#!/usr/bin/env bash
# Checks deploy/ with the tools that will run it:
#   - deploy/crier.service: `systemd-analyze verify` (syntax, every key known, ExecStart an
#     executable: the crier binary just built, at the path the unit names replaced by its own)
#     and `systemd-analyze security --offline` (the sandbox's exposure score stays "OK");
#   - deploy/nginx.conf: `nginx -t` on a configuration that includes it, with a self-signed
#     certificate made now (openssl) in place of the Let's Encrypt paths it names, and its body
#     limits equal to crier's defaults (`crier serve --help`).
# Nothing else in the files is changed for the check.
#
# Without systemd-analyze, nginx or openssl it SKIPS, loudly — unless CI=true, where it FAILS:
# CI must never pass without having run it (.ci/run installs them from Debian).
set -euo pipefail
cd "$(dirname "$0")/../.."

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
missing=()
command -v systemd-analyze >/dev/null || missing+=("systemd-analyze (apt-get install systemd)")
[[ -x $NGINX ]] || missing+=("nginx (apt-get install nginx)")
command -v openssl >/dev/null || missing+=("openssl (apt-get install openssl)")
if ((${#missing[@]})); then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!! The deploy/ check cannot run: missing ${missing[*]}." >&2
    if [[ "${CI:-}" == "true" ]]; then
        echo "!! CI=true: FAILING." >&2
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
        exit 1
    fi
    echo "!! SKIPPED (outside CI). deploy/crier.service and deploy/nginx.conf were NOT checked." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The binary the unit starts: the one cargo built (CRIER_BIN to use another).
bin=${CRIER_BIN:-target/debug/crier}
if [[ ! -x $bin ]]; then
    echo "== cargo build (the binary the unit starts)"
    cargo build --locked --bin crier
fi
bin=$(realpath "$bin")

echo "== systemd-analyze verify deploy/crier.service ($(systemd-analyze --version | head -n1))"
grep -q '^ExecStart=/usr/local/bin/crier serve$' deploy/crier.service ||
    fail "deploy/crier.service: expected ExecStart=/usr/local/bin/crier serve"
sed "s#^ExecStart=/usr/local/bin/crier #ExecStart=$bin #" deploy/crier.service >"$work/crier.service"
# verify prints a line for any problem (an unknown key is only a warning to it): any output fails.
verify_output=$(systemd-analyze verify "$work/crier.service" 2>&1) || {
    echo "$verify_output" >&2
    fail "systemd-analyze verify"
}
if [[ -n $verify_output ]]; then
    echo "$verify_output" >&2
    fail "systemd-analyze verify printed warnings"
fi
echo "   ok"

echo "== systemd-analyze security --offline=yes deploy/crier.service"
security=$(systemd-analyze security --offline=yes --no-pager "$work/crier.service" 2>&1) || {
    echo "$security" >&2
    fail "systemd-analyze security"
}
verdict=$(grep -o 'Overall exposure level for .*' <<<"$security" || true)
echo "   $verdict"
[[ $verdict =~ :\ ([0-9.]+)\ (OK|SAFE) ]] || {
    echo "$security" >&2
    fail "the unit's exposure level is not OK or SAFE"
}

echo "== nginx -t on deploy/nginx.conf ($("$NGINX" -v 2>&1))"
help=$("$bin" serve --help | tr -s ' \n' ' ')
default_of() {
    grep -o -- "--$1 <[A-Z_]*>[^]]*][^]]*]" <<<"$help" | grep -o '[0-9]*]$' | tr -d ']'
}
[[ $(default_of max-body-bytes) == 1048576 ]] || fail "crier's --max-body-bytes default changed: update deploy/nginx.conf"
[[ $(default_of max-import-bytes) == 1073741824 ]] || fail "crier's --max-import-bytes default changed: update deploy/nginx.conf"
grep -q '^    client_max_body_size 1m;$' deploy/nginx.conf || fail "deploy/nginx.conf: the JSON limit is not 1m (1048576)"
grep -q '^        client_max_body_size 1g;$' deploy/nginx.conf || fail "deploy/nginx.conf: the import limit is not 1g (1073741824)"

mkdir "$work/tls" "$work/nginx"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=crier.example.com" \
    -keyout "$work/tls/privkey.pem" -out "$work/tls/fullchain.pem" 2>/dev/null
sed "s#/etc/letsencrypt/live/crier.example.com/#$work/tls/#g" deploy/nginx.conf >"$work/crier.conf"
grep -q "$work/tls/fullchain.pem" "$work/crier.conf" || fail "deploy/nginx.conf: no certificate path to replace"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/crier.conf;
}
CONF
nginx_output=$("$NGINX" -t -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx.conf" 2>&1) || {
    echo "$nginx_output" >&2
    fail "nginx -t"
}
sed 's/^/   /' <<<"$nginx_output"
echo "deploy/ checked: systemd unit and nginx configuration are valid."
