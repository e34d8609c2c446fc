#!/usr/bin/env python3
"""Contact import benchmark: the real release binary imports a generated CSV of ROWS contacts
(default 1,000,000) while a few clients keep sending `POST /v1/messages`; prints one table.

    bench/import.sh                      # builds crier (release), 1,000,000 rows
    ROWS=200000 CRIER_BIN=target/release/crier bench/import.sh

Measures: the upload (HTTP, streamed to the spool file), the import's rows/s (the job's
`started_at` → `finished_at`), crier's RSS growth (the highest VmRSS sampled every 100 ms during
the upload and import, minus VmRSS before it), and the latency of the concurrent sends (SENDERS
clients, each sending one request after another, SEND_RATE requests/s in all), p50/p99/max.
Targets: ≥ 55,000 rows/s, RSS growth < 50 MB, send p99 < 100 ms.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tools  # noqa: E402  (bench/tools.py: free ports, readiness, VmRSS)

ROWS = int(os.environ.get("ROWS", "1000000"))
SENDERS = int(os.environ.get("SENDERS", "4"))
SEND_RATE = float(os.environ.get("SEND_RATE", "200"))
BIN = os.environ["CRIER_BIN"]
PASSWORD = "bench password, long enough"
SEND_BODY = json.dumps({"channel": "sms", "to": "+237677123456",
                        "text": "Your verification code is 482913."}).encode()


def admin(data, *args, stdin=""):
    out = subprocess.run([BIN, "admin", *args, "--data-dir", data], input=stdin.encode(),
                         capture_output=True, check=True)
    return json.loads(out.stdout) if b"{" in out.stdout else None


def generate(path, rows):
    """name,first_name,last_name,phone,email,language: every row valid and distinct."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("name,phone,email,language\r\n")
        for n in range(rows):
            f.write(f"Person Number {n},+2376{n + 50000000:08d},person{n}@example.com,fr\r\n")


def vm_rss_kb(pid):
    return tools.vm_status(pid).get("VmRSS", 0)


def request(port, method, path, key, body=None, content_type="application/json", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    all_headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    all_headers.update(headers or {})
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def sender(port, key, stop, latencies, errors, index):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    interval = SENDERS / SEND_RATE
    seq = 0
    next_at = time.monotonic()
    while not stop.is_set():
        seq += 1
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Idempotency-Key": f"bench-{index}-{seq}-{time.time_ns()}"}
        started = time.monotonic()
        try:
            conn.request("POST", "/v1/messages", body=SEND_BODY, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 202 and response.status != 201:
                errors.append(response.status)
        except (OSError, http.client.HTTPException) as err:
            errors.append(str(err))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies.append(time.monotonic() - started)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def cpu_secs(pid, thread_name=None):
    """CPU time (user + system) of the process, or of its threads called `thread_name`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    paths = [f"/proc/{pid}/stat"] if thread_name is None else [
        f"/proc/{pid}/task/{tid}/stat" for tid in os.listdir(f"/proc/{pid}/task")]
    for path in paths:
        try:
            with open(path) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if thread_name is not None and name != thread_name:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def main():
    work = tempfile.mkdtemp(prefix="crier-import-bench.", dir=os.environ.get("BENCH_TMPDIR"))
    server = None
    try:
        data = os.path.join(work, "data")
        csv_path = os.path.join(work, "contacts.csv")
        t = time.monotonic()
        generate(csv_path, ROWS)
        size = os.path.getsize(csv_path)
        print(f"generated {ROWS} rows, {size / 1e6:.1f} MB in {time.monotonic() - t:.1f}s",
              file=sys.stderr)
        subprocess.run([BIN, "migrate", "--data-dir", data], capture_output=True, check=True)
        admin(data, "create-user", "--email", "bench@example.com", "--password-stdin",
              "--workspace", "Bench", "--json", stdin=PASSWORD + "\n")
        key_info = admin(data, "create-api-key", "--workspace", "Bench", "--name", "bench",
                         "--scopes", "contacts:read,contacts:write,messages:send", "--mode",
                         "live", "--json")
        key = key_info["key"]
        admin(data, "adjust-wallet", "--workspace", key_info["workspace_id"],
              "--amount-minor", "100000000000", "--reason", "bench")
        port = tools.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env["CRIER_DISPATCH_WORKERS"] = "0"
        env["CRIER_API_RATE_LIMIT"] = "0"  # the probe's sends measure the server, not the limit
        log = open(os.path.join(work, "serve.log"), "w")
        server = subprocess.Popen([BIN, "serve", "--data-dir", data, "--addr",
                                   f"127.0.0.1:{port}", "--log-level", "warn"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
        if not tools.wait_ready(port, 30, server):
            raise SystemExit("crier did not become ready")
        # Warm the send path, then take the baseline RSS.
        for _ in range(20):
            request(port, "POST", "/v1/messages", key, SEND_BODY,
                    headers={"Idempotency-Key": f"warm-{time.time_ns()}"})
        baseline = vm_rss_kb(server.pid)
        peak = [baseline]
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                peak[0] = max(peak[0], vm_rss_kb(server.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        stop_sending = threading.Event()
        latencies, errors = [], []
        senders = [threading.Thread(target=sender,
                                    args=(port, key, stop_sending, latencies, errors, i))
                   for i in range(SENDERS)]
        for thread in senders:
            thread.start()
        upload_started = time.monotonic()
        cpu_before = cpu_secs(server.pid)
        with open(csv_path, "rb") as body:
            status, answer = request(port, "POST", "/v1/contacts/imports?mode=upsert", key,
                                     body, content_type="text/csv",
                                     headers={"Content-Length": str(size)})
        upload_secs = time.monotonic() - upload_started
        if status != 202:
            raise SystemExit(f"import refused: {status} {answer[:300]!r}")
        job_id = json.loads(answer)["id"]
        while True:
            status, answer = request(port, "GET", f"/v1/contacts/imports/{job_id}", key)
            job = json.loads(answer)
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.25)
        end_to_end = time.monotonic() - upload_started
        server_cpu = cpu_secs(server.pid) - cpu_before
        import_cpu = cpu_secs(server.pid, "imports")
        stop_sending.set()
        for thread in senders:
            thread.join()
        stop_sampling.set()
        sampler.join()
        from datetime import datetime
        started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
        import_secs = (finished - started).total_seconds()
        rate = job["rows_read"] / import_secs if import_secs > 0 else float("nan")
        growth_mb = (peak[0] - baseline) * 1024 / 1e6
        p50, p99 = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
        worst = max(latencies) * 1e3 if latencies else float("nan")
        ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
        rows = [
            ("job", f"{job['status']}: {job['rows_read']} rows, {job['created']} created, "
                    f"{job['rejected']} rejected", ""),
            ("upload", f"{size / 1e6:.1f} MB in {upload_secs:.2f} s", ""),
            ("import rows/s", f"{rate:,.0f} ({import_secs:.1f} s)", ok(rate >= 55000) + " (≥ 55,000)"),
            ("end to end", f"{end_to_end:.1f} s, {ROWS / end_to_end:,.0f} rows/s", ""),
            ("CPU per row", f"{server_cpu / ROWS * 1e6:.1f} µs in the server ({import_cpu / ROWS * 1e6:.1f} µs "
                            f"in the import's writing thread)", ""),
            ("RSS growth", f"{growth_mb:.1f} MB ({baseline / 1024:.1f} → {peak[0] / 1024:.1f} MiB)",
             ok(growth_mb < 50) + " (< 50 MB)"),
            ("sends during import", f"{len(latencies)} sent, {len(errors)} failed", ok(not errors)),
            ("send p50 / p99 / max", f"{p50:.1f} / {p99:.1f} / {worst:.1f} ms",
             ok(p99 < 100) + " (p99 < 100 ms)"),
        ]
        print(f"crier import bench: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
              f"{ROWS} rows, {SENDERS} senders at {SEND_RATE:.0f} req/s, {os.cpu_count()} CPUs")
        width = max(len(r[0]) for r in rows)
        vwidth = max(len(r[1]) for r in rows)
        for name, value, verdict in rows:
            print(f"| {name:<{width}} | {value:<{vwidth}} | {verdict}")
        if errors:
            print(f"first send errors: {errors[:5]}", file=sys.stderr)
    finally:
        if server is not None:
            tools.stop(server)
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
