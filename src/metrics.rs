//! Process metrics for `GET /metrics` in the Prometheus text format: requests by
//! route, method and status, and a latency histogram per route (counted by the HTTP layer);
//! provider calls, webhooks, and scheduled backups (counted by their runners). Counted in memory;
//! a restart starts from zero, as Prometheus expects of counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Latency {
    /// Cumulative counts per bucket of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
    /// Provider calls by provider and outcome (`accepted`, `retryable_error`, `final_error`).
    provider_calls: Mutex<BTreeMap<(String, String), u64>>,
    /// Provider webhooks by provider and verdict: the answer to a payment webhook (`received`,
    /// `duplicate`, `unauthenticated`, `rejected`), then what the payments worker made of the event
    /// (`applied`, `not_applied`, `deferred` for a retry, `abandoned`); delivery receipts
    /// (`accepted`, `rejected`).
    webhooks: Mutex<BTreeMap<(String, String), u64>>,
    /// Scheduled backups; shown only when they are turned on (`--backup-dir`).
    backups: Mutex<Option<BackupStats>>,
}

/// What the scheduled backups have done since start.
#[derive(Default)]
struct BackupStats {
    /// Unix seconds of the newest good backup (from the directory at start, then each success).
    last_success: Option<i64>,
    last_bytes: u64,
    succeeded: u64,
    failed: u64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one finished request. `route` is the matched template (`-` for none), so the
    /// number of series stays bounded whatever paths clients send.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" => method,
            _ => "OTHER",
        };
        *lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let entry = latency.entry(route.to_owned()).or_default();
        for (bucket, bound) in entry.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        entry.count += 1;
        entry.sum_seconds += seconds;
    }

    /// Counts one provider call. Provider names come from the configuration, never from clients.
    pub fn record_provider_call(&self, provider: &str, outcome: &str) {
        *lock(&self.provider_calls)
            .entry((provider.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// Counts one webhook request for a configured provider by what became of it.
    pub fn record_webhook(&self, provider: &str, verdict: &str) {
        *lock(&self.webhooks)
            .entry((provider.to_owned(), verdict.to_owned()))
            .or_default() += 1;
    }

    /// Turns on the backup series; `newest` is the newest backup already in the directory.
    pub fn backups_enabled(&self, newest: Option<i64>) {
        *lock(&self.backups) = Some(BackupStats {
            last_success: newest,
            ..BackupStats::default()
        });
    }

    /// Counts one good scheduled backup, taken at `at` (Unix seconds), of `bytes`.
    pub fn record_backup_success(&self, at: i64, bytes: u64) {
        let mut backups = lock(&self.backups);
        let stats = backups.get_or_insert_with(BackupStats::default);
        stats.last_success = Some(at);
        stats.last_bytes = bytes;
        stats.succeeded += 1;
    }

    /// Counts one failed scheduled backup.
    pub fn record_backup_failure(&self) {
        lock(&self.backups)
            .get_or_insert_with(BackupStats::default)
            .failed += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP crier_http_requests_total HTTP requests served, by route template, method and status.\n");
        out.push_str("# TYPE crier_http_requests_total counter\n");
        for ((route, method, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "crier_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str("# HELP crier_http_request_duration_seconds Time to serve a request, by route template.\n");
        out.push_str("# TYPE crier_http_request_duration_seconds histogram\n");
        for (route, latency) in lock(&self.latency).iter() {
            let route = escape(route);
            for (bucket, bound) in latency.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "crier_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "crier_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                latency.count
            );
            let _ = writeln!(
                out,
                "crier_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                latency.sum_seconds
            );
            let _ = writeln!(
                out,
                "crier_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                latency.count
            );
        }
        out.push_str("# HELP crier_provider_calls_total Delivery calls to providers, by provider and outcome.\n");
        out.push_str("# TYPE crier_provider_calls_total counter\n");
        for ((provider, outcome), count) in lock(&self.provider_calls).iter() {
            let _ = writeln!(
                out,
                "crier_provider_calls_total{{provider=\"{}\",outcome=\"{}\"}} {count}",
                escape(provider),
                escape(outcome)
            );
        }
        out.push_str(
            "# HELP crier_webhooks_total Provider webhooks received, by provider and verdict.\n",
        );
        out.push_str("# TYPE crier_webhooks_total counter\n");
        for ((provider, verdict), count) in lock(&self.webhooks).iter() {
            let _ = writeln!(
                out,
                "crier_webhooks_total{{provider=\"{}\",verdict=\"{}\"}} {count}",
                escape(provider),
                escape(verdict)
            );
        }
        if let Some(stats) = lock(&self.backups).as_ref() {
            out.push_str("# HELP crier_backup_last_success_timestamp_seconds When the newest good scheduled backup was taken (0: none yet).\n");
            out.push_str("# TYPE crier_backup_last_success_timestamp_seconds gauge\n");
            let _ = writeln!(
                out,
                "crier_backup_last_success_timestamp_seconds {}",
                stats.last_success.unwrap_or(0)
            );
            out.push_str("# HELP crier_backup_last_size_bytes Size of the newest scheduled backup taken since start.\n");
            out.push_str("# TYPE crier_backup_last_size_bytes gauge\n");
            let _ = writeln!(out, "crier_backup_last_size_bytes {}", stats.last_bytes);
            out.push_str(
                "# HELP crier_backups_total Scheduled backups written and verified since start.\n",
            );
            out.push_str("# TYPE crier_backups_total counter\n");
            let _ = writeln!(out, "crier_backups_total {}", stats.succeeded);
            out.push_str(
                "# HELP crier_backup_failures_total Scheduled backups that failed since start.\n",
            );
            out.push_str("# TYPE crier_backup_failures_total counter\n");
            let _ = writeln!(out, "crier_backup_failures_total {}", stats.failed);
        }
        out
    }

    /// Gauges read from the database at scrape time: messages per status, and how long the
    /// oldest due message has waited for a dispatcher.
    pub fn render_outbox(by_status: &[(String, u64)], lag_seconds: f64) -> String {
        let mut out = String::new();
        out.push_str("# HELP crier_messages Messages by status.\n");
        out.push_str("# TYPE crier_messages gauge\n");
        for (status, count) in by_status {
            let _ = writeln!(
                out,
                "crier_messages{{status=\"{}\"}} {count}",
                escape(status)
            );
        }
        out.push_str("# HELP crier_dispatcher_lag_seconds How long the oldest due queued message has waited.\n");
        out.push_str("# TYPE crier_dispatcher_lag_seconds gauge\n");
        let _ = writeln!(out, "crier_dispatcher_lag_seconds {lag_seconds}");
        out
    }

    /// Reads whose bytes may be kept between commits (the message list's pages): given what
    /// was kept, or read anew (the first after a commit, or a page not kept).
    pub fn render_remembered(given_kept: u64, read_anew: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP crier_remembered_reads_total Message list pages served, by whether the page kept since the last commit was sent (kept) or it was read anew (read).\n");
        out.push_str("# TYPE crier_remembered_reads_total counter\n");
        let _ = writeln!(
            out,
            "crier_remembered_reads_total{{outcome=\"kept\"}} {given_kept}"
        );
        let _ = writeln!(
            out,
            "crier_remembered_reads_total{{outcome=\"read\"}} {read_anew}"
        );
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latency_render_as_prometheus_text() {
        let metrics = Metrics::new();
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(2));
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(30));
        metrics.record_request("-", "BREW", 404, Duration::from_micros(100));
        let text = metrics.render();
        assert!(
            text.contains(
                "crier_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "crier_http_requests_total{route=\"-\",method=\"OTHER\",status=\"404\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "crier_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "crier_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("crier_http_request_duration_seconds_count{route=\"/healthz\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("le=\"+Inf\"} 2\n"), "{text}");
    }

    #[test]
    fn backup_series_show_only_when_backups_are_on() {
        let metrics = Metrics::new();
        assert!(!metrics.render().contains("crier_backup"));
        metrics.backups_enabled(None);
        let text = metrics.render();
        assert!(
            text.contains("crier_backup_last_success_timestamp_seconds 0\n"),
            "{text}"
        );
        assert!(text.contains("crier_backup_failures_total 0\n"), "{text}");
        metrics.record_backup_failure();
        metrics.record_backup_success(1_790_000_000, 4096);
        let text = metrics.render();
        assert!(
            text.contains("crier_backup_last_success_timestamp_seconds 1790000000\n"),
            "{text}"
        );
        assert!(
            text.contains("crier_backup_last_size_bytes 4096\n"),
            "{text}"
        );
        assert!(text.contains("crier_backups_total 1\n"), "{text}");
        assert!(text.contains("crier_backup_failures_total 1\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
