#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  tools.py free-port                       a free TCP port on 127.0.0.1
  tools.py wait-port PORT SECS             until something accepts on 127.0.0.1:PORT
  tools.py wait-ready PORT SECS            until GET /readyz answers 200
  tools.py call METHOD URL [-H 'K: V']... [--data BODY] [--expect CODE] [--field a.b]
                                           one HTTP request; prints the body (or one JSON field)
  tools.py cargo-exe NAME                  the executable named NAME in `cargo --message-format=json`
  tools.py startup --bin B --data-dir D --runs N --idle-secs S [--empty-dir E]
                                           start-to-ready and idle RSS of `crier serve`; prints RESULT
  tools.py vm PID                          VmRSS/VmHWM of a process as JSON (kB)
  tools.py table RESULTS [--strict]        the final table from the RESULT lines
"""

import argparse
import http.client
import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.005)
    return False


def readyz(port):
    """Status of GET /readyz, or None if nothing answered."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/readyz")
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def wait_ready(port, secs, proc=None):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if readyz(port) == 200:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.001)
    return False


def call(method, url, headers, data):
    m = re.match(r"http://([^/:]+):(\d+)(/.*)$", url)
    if not m:
        sys.exit(f"call: cannot parse {url}")
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=30)
    body = data.encode() if data is not None else None
    hdrs = {}
    for h in headers:
        name, _, value = h.partition(":")
        hdrs[name.strip()] = value.strip()
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, m.group(3), body=body, headers=hdrs)
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace")


def field(value, path):
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def vm_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def stop(proc, secs=15):
    """SIGTERM, then wait; returns (exit code, seconds to exit)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return code, time.monotonic() - started


def start_once(binary, data_dir, idle_secs, log):
    """Starts `crier serve` (default settings, a free port), times exec -> GET /readyz 200."""
    port = free_port()
    cmd = [binary, "serve", "--data-dir", data_dir, "--addr", f"127.0.0.1:{port}",
           "--log-level", "warn"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                            start_new_session=True)
    try:
        ready = wait_ready(port, 10, proc)
        ready_ms = (time.perf_counter() - started) * 1000
        if not ready:
            return None, {}, proc.poll()
        vm = {}
        if idle_secs > 0:
            time.sleep(idle_secs)
            vm = vm_status(proc.pid)
        code, _ = stop(proc)
        return ready_ms, vm, code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def startup(args):
    log = open(args.log, "ab") if args.log else subprocess.DEVNULL
    result = {"bench": "startup", "runs": args.runs, "idle_secs": args.idle_secs}
    problems = []
    if args.empty_dir:
        # First start on an empty data dir: creates the database and applies every migration.
        first_ms, _, code = start_once(args.bin, args.empty_dir, 0, log)
        result["first_start_ms"] = round(first_ms, 1) if first_ms is not None else None
        if first_ms is None or code != 0:
            problems.append(f"first start on an empty dir: ready={first_ms} exit={code}")
    times = []
    for run in range(args.runs):
        idle = args.idle_secs if run == args.runs - 1 else 0
        ready_ms, vm, code = start_once(args.bin, args.data_dir, idle, log)
        if ready_ms is None or code != 0:
            problems.append(f"start {run + 1}: ready={ready_ms} exit={code}")
            continue
        times.append(ready_ms)
        if vm:
            result["rss_kb"] = vm.get("VmRSS")
            result["hwm_kb"] = vm.get("VmHWM")
    result["ready_ms"] = [round(t, 1) for t in times]
    result["ready_ms_median"] = round(statistics.median(times), 1) if times else None
    result["ready_ms_max"] = round(max(times), 1) if times else None
    result["problems"] = problems
    print("RESULT " + json.dumps(result, separators=(",", ":")))


def cargo_exe(name):
    exe = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg.get("target", {}).get("name") == name:
            exe = msg["executable"]
    if not exe:
        sys.exit(f"cargo built no executable named {name}")
    print(exe)


# ---------------------------------------------------------------- the table

SEND_RATIO = 0.90
SEND_P99_US = 25_000
SEND_MAX_US = 100_000
READ_P99_US = 5_000
RSS_BYTES = 20_000_000
READY_MS = 100
SIZE_BYTES = 20_000_000
DISPATCH_TARGETS = {"dispatch-log": 20_000, "dispatch-smtp": 15_000}


def ms(us):
    if us is None:
        return "-"
    if us >= 1_000_000:
        return f"{us / 1e6:.2f} s"
    if us >= 100_000:
        return f"{us / 1e3:.0f} ms"
    if us >= 10_000:
        return f"{us / 1e3:.1f} ms"
    return f"{us / 1e3:.2f} ms"


def mb(n):
    return f"{n / 1e6:.1f} MB"


def rate(n, unit="req/s"):
    return f"{n:,.0f} {unit}"


def parse_results(path):
    """RESULT {json} lines and RESULT name k=v ... lines (bench/dispatch.sh)."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("RESULT "):
                continue
            rest = line[len("RESULT "):]
            if rest.startswith("{"):
                try:
                    rows.append(json.loads(rest))
                except ValueError:
                    rows.append({"bench": "unparsable", "line": line})
                continue
            name, *pairs = rest.split()
            row = {"bench": name, "line": line}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if sep:
                    try:
                        row[key] = float(value)
                    except ValueError:
                        row[key] = value
            rows.append(row)
    return rows


def first(rows, bench, variant=None):
    found = [r for r in rows if r.get("bench") == bench
             and (variant is None or r.get("variant") == variant)]
    return found[-1] if found else None


def honest_max(r):
    """wrk's max, or the age of a request still unanswered at the end if that is larger."""
    return max(r["max_us"], r.get("oldest_pending_us") or 0)


def sock_errors(r):
    return r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]


def failed_requests(r):
    """The misses every wrk row shares: answers that were not 2xx, and socket errors."""
    return (["non-2xx"] if non_2xx(r) else []) + (["socket errors"] if sock_errors(r) else [])


def non_2xx(r):
    # wrk's own count is of status >= 400; the scripts here count every status outside 2xx.
    return r.get("non_2xx_seen", r["non_2xx"])


def first_cell(r):
    slow = r.get("first_over_100ms")
    if slow is None:
        return "?"
    cell = f"{slow}/{r['conns']}"
    if r.get("unanswered_first"):
        cell += f" ({r['unanswered_first']} never answered)"
    elif slow:
        cell += f" (max {ms(r['first_max_us'])})"
    return cell


def note_wrk_row(notes, row, r):
    if r.get("oldest_pending_us") and r["oldest_pending_us"] > r["max_us"]:
        never = r.get("unanswered_first") or 0
        what = (f"{never} of {r['conns']} connections never got a first response"
                if never else "a request was still unanswered when wrk stopped")
        notes.append(f"{row}: {what}; max is the oldest unanswered request's age "
                     f"(wrk's own max, over answered requests only: {ms(r['max_us'])}).")
    if non_2xx(r):
        notes.append(f"{row}: statuses {r.get('statuses')}")


def verdict(misses):
    return "yes" if not misses else "NO: " + ", ".join(misses)


def build_table(rows):
    out, notes, failed = [], [], []

    def add(row, crier="-", probe="-", ratio="-", p50="-", p99="-", mx="-", bad="-", errs="-",
            firsts="-", target="-", ok="-"):
        out.append([row, crier, probe, ratio, p50, p99, mx, bad, errs, firsts, target, ok])
        if ok.startswith("NO"):
            failed.append(row)

    sends = [r for r in rows if r.get("bench") == "crier-send"]
    for r in sends:
        v = r["variant"]
        p = first(rows, "probe-send", v)
        misses = []
        ratio = "-"
        if p and p["rps"] > 0:
            ratio = f"{r['rps'] / p['rps'] * 100:.1f} %"
            if r["rps"] < SEND_RATIO * p["rps"]:
                misses.append("rate")
        if r["p99_us"] >= SEND_P99_US:
            misses.append("p99")
        if honest_max(r) >= SEND_MAX_US:
            misses.append("max")
        misses += failed_requests(r)
        if r.get("first_over_100ms"):
            misses.append("first response")
        target = ("≥ 90 % probe, " if p else "") + "p99 < 25 ms, max < 100 ms"
        # The probe's own p99 beside its rate: what the machine allowed in the same minute.
        probe = f"{rate(p['rps'])}, p99 {ms(p['p99_us'])}" if p else "-"
        add(f"POST /v1/messages {v}", rate(r["rps"]), probe, ratio,
            ms(r["p50_us"]), ms(r["p99_us"]), ms(honest_max(r)), str(non_2xx(r)),
            str(sock_errors(r)), first_cell(r), target, verdict(misses))
        note_wrk_row(notes, f"POST /v1/messages {v}", r)

    for key, path in (("message", "GET /v1/messages/{id}"), ("list", "GET /v1/messages?limit=50"),
                      ("billing", "GET /v1/billing")):
        r = first(rows, "crier-read", key)
        if not r:
            continue
        misses = []
        if r["p99_us"] >= READ_P99_US:
            misses.append("p99")
        misses += failed_requests(r)
        if r.get("unanswered_first"):
            misses.append("never answered")
        note_wrk_row(notes, f"{path} c{r['conns']}", r)
        add(f"{path} c{r['conns']}", rate(r["rps"]), p50=ms(r["p50_us"]),
            p99=ms(r["p99_us"]), mx=ms(honest_max(r)), bad=str(non_2xx(r)),
            errs=str(sock_errors(r)), firsts=first_cell(r), target="p99 < 5 ms",
            ok=verdict(misses))
    r = first(rows, "crier-read", "list-rendered")
    if r:
        row = f"GET /v1/messages?limit=50, each page rendered (info) c{r['conns']}"
        note_wrk_row(notes, row, r)
        add(row, rate(r["rps"]), p50=ms(r["p50_us"]), p99=ms(r["p99_us"]),
            mx=ms(honest_max(r)), bad=str(non_2xx(r)), errs=str(sock_errors(r)),
            firsts=first_cell(r), ok=verdict(failed_requests(r)))

    dispatch = [r for r in rows if r.get("bench", "").startswith("dispatch-")]
    for r in dispatch:
        name = r["bench"]
        goal = DISPATCH_TARGETS.get(name)
        got = r.get("rate")
        if name == "dispatch-error":
            add("bench/dispatch.sh", str(r.get("reason", "failed")).replace("-", " "),
                ok="NO: it failed")
            continue
        ok = "-"
        if goal is not None:
            ok = verdict([] if isinstance(got, float) and got >= goal else ["rate"])
        detail = ""
        if "messages" in r and "secs" in r:
            detail = f" ({r['messages']:,.0f} in {r['secs']:g} s)"
        add(name, (rate(got, "msg/s") if isinstance(got, float) else "?") + detail,
            target=f"≥ {goal:,} msg/s" if goal else "-", ok=ok)

    s = first(rows, "startup")
    if s:
        if s.get("rss_kb") is not None:
            rss = s["rss_kb"] * 1024
            add("idle RSS (crier serve, defaults)", mb(rss), target="< 20 MB",
                ok=verdict([] if rss < RSS_BYTES else ["RSS"]))
        else:
            add("idle RSS (crier serve, defaults)", "?", ok="NO: not measured")
        med = s.get("ready_ms_median")
        if med is not None:
            add(f"start → /readyz 200 (median of {len(s['ready_ms'])})",
                f"{med:.1f} ms (max {s['ready_ms_max']:.1f})", target="< 100 ms",
                ok=verdict([] if med < READY_MS else ["slow"]))
        else:
            add("start → /readyz 200", "?", ok="NO: never ready")
        if s.get("first_start_ms") is not None:
            add("first start, empty data dir (info)", f"{s['first_start_ms']:.1f} ms")
        for problem in s.get("problems", []):
            notes.append(f"startup: {problem}")

    z = first(rows, "size")
    if z:
        add("release binary, as built", mb(z["bytes"]), target="< 20 MB",
            ok=verdict([] if z["bytes"] < SIZE_BYTES else ["size"]))
        if z.get("stripped_bytes"):
            add("release binary, stripped (info)", mb(z["stripped_bytes"]))
        if z.get("debug_info"):
            notes.append("the release profile keeps debug info (Cargo.toml [profile.release] "
                         f"debug = {z.get('profile_debug') or '?'}); `strip` removes it.")

    loaded = [r for r in rows if r.get("bench") == "shutdown" and r.get("vm_kb", {}).get("VmHWM")]
    if loaded:
        peak = max(loaded, key=lambda r: r["vm_kb"]["VmHWM"])
        add(f"peak RSS under load (info, {peak['variant']})", mb(peak["vm_kb"]["VmHWM"] * 1024))

    doctors = [r for r in rows if r.get("bench") == "doctor"]
    if doctors:
        bad = [r["variant"] for r in doctors if not r["ok"]]
        add("crier doctor after the load", f"{len(doctors) - len(bad)}/{len(doctors)} clean",
            target="clean", ok=verdict([f"not clean: {', '.join(bad)}"] if bad else []))

    for r in rows:
        if r.get("bench") == "shutdown" and r.get("exit") != 0:
            notes.append(f"crier serve ({r['variant']}) exited {r['exit']} on SIGTERM "
                         f"after {r['secs']:.1f} s (expected 0).")
        if r.get("bench") == "crier-warnings" and r.get("count"):
            notes.append(f"crier logged {r['count']} warn/error lines during {r['variant']}; "
                         f"first: {r['first']}")
    return out, notes, failed


def print_table(out):
    head = ["row", "crier", "probe", "ratio", "p50", "p99", "max", "non-2xx", "sock err",
            "1st resp > 100 ms", "target", "ok?"]
    widths = [max(len(str(r[i])) for r in [head] + out) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in out:
        print(line(r))


def table(args):
    rows = parse_results(args.results)
    out, notes, failed = build_table(rows)
    print_table(out)
    if notes:
        print()
        for n in notes:
            print(f"- {n}")
    if failed:
        print()
        print(f"{len(failed)} row(s) miss their target: {'; '.join(failed)}")
    return 1 if (args.strict and failed) else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    p = sub.add_parser("wait-port")
    p.add_argument("port", type=int)
    p.add_argument("secs", type=float)
    p = sub.add_parser("wait-ready")
    p.add_argument("port", type=int)
    p.add_argument("secs", type=float)
    p = sub.add_parser("call")
    p.add_argument("method")
    p.add_argument("url")
    p.add_argument("-H", dest="headers", action="append", default=[])
    p.add_argument("--data")
    p.add_argument("--expect", type=int)
    p.add_argument("--field")
    p = sub.add_parser("cargo-exe")
    p.add_argument("name")
    p = sub.add_parser("startup")
    p.add_argument("--bin", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--empty-dir")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle-secs", type=float, default=3)
    p.add_argument("--log")
    p = sub.add_parser("vm")
    p.add_argument("pid", type=int)
    p = sub.add_parser("table")
    p.add_argument("results")
    p.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    if args.cmd == "free-port":
        print(free_port())
    elif args.cmd == "wait-port":
        sys.exit(0 if wait_port(args.port, args.secs) else 1)
    elif args.cmd == "wait-ready":
        sys.exit(0 if wait_ready(args.port, args.secs) else 1)
    elif args.cmd == "call":
        status, body = call(args.method, args.url, args.headers, args.data)
        if args.expect is not None and status != args.expect:
            sys.exit(f"{args.method} {args.url}: {status} (expected {args.expect}): {body[:500]}")
        print(field(json.loads(body), args.field) if args.field else body)
    elif args.cmd == "cargo-exe":
        cargo_exe(args.name)
    elif args.cmd == "startup":
        startup(args)
    elif args.cmd == "vm":
        print(json.dumps(vm_status(args.pid)))
    elif args.cmd == "table":
        sys.exit(table(args))


if __name__ == "__main__":
    main()
