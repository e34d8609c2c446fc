//! Log output: one line per event on standard error, as text or JSON.
//!
//! Code logs through the `log` facade with key-values (`log::info!(status = 200; "request")`);
//! this module only formats and writes. Standard output is left to commands whose output is data
//! (`crier admin … --json`). Never log secrets or message bodies: callers pass ids, not payloads.

use std::io::Write;

use log::kv::{self, Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};

use crate::clock::{Clock, SystemClock, format_timestamp};
use crate::config::LogFormat;

struct Logger {
    format: LogFormat,
    level: LevelFilter,
}

/// Installs the process-wide logger. A second call (tests start many servers) keeps the first.
pub fn init(format: LogFormat, level: LevelFilter) {
    let installed = log::set_boxed_logger(Box::new(Logger { format, level }));
    if installed.is_ok() {
        log::set_max_level(level);
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Libraries (refinery, r2d2) narrate at info; only their warnings and errors matter here.
        let level = if metadata.target().starts_with("crier") {
            self.level
        } else {
            self.level.min(LevelFilter::Warn)
        };
        metadata.level() <= level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_record(self.format, &format_timestamp(SystemClock.now()), record);
        // One write per line so concurrent threads never interleave within a line. A failed
        // write to stderr has nowhere to be reported.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Renders one record as a complete line, newline included.
fn format_record(format: LogFormat, timestamp: &str, record: &Record<'_>) -> String {
    let mut fields = Fields(Vec::new());
    // Visiting our own in-memory collector cannot fail.
    let _ = record.key_values().visit(&mut fields);
    let level = record.level().as_str();
    // One event, one line: a multi-line message (a library's, a panic's) is folded.
    let message = record.args().to_string().replace('\n', " ");
    match format {
        LogFormat::Text => {
            let mut line = format!("{timestamp} {level:<5} {message}");
            for (key, value) in &fields.0 {
                let shown = match value {
                    serde_json::Value::String(text) if needs_quotes(text) => format!("{text:?}"),
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                line.push_str(&format!(" {key}={shown}"));
            }
            line.push('\n');
            line
        }
        LogFormat::Json => {
            let mut object = serde_json::Map::new();
            object.insert("ts".into(), timestamp.into());
            object.insert("level".into(), level.to_ascii_lowercase().into());
            object.insert("msg".into(), message.into());
            object.insert("target".into(), record.target().into());
            for (key, value) in fields.0 {
                object.insert(key, value);
            }
            format!("{}\n", serde_json::Value::Object(object))
        }
    }
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=')
}

/// Collects key-values as JSON values: numbers and booleans stay typed, the rest is text.
struct Fields(Vec<(String, serde_json::Value)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let json = if let Some(number) = value.to_u64() {
            number.into()
        } else if let Some(number) = value.to_i64() {
            number.into()
        } else if let Some(number) = value.to_f64() {
            serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, Into::into)
        } else if let Some(flag) = value.to_bool() {
            flag.into()
        } else {
            let text = value.to_string();
            // An empty value means "not applicable here" (no error on a 200): leave it out.
            if text.is_empty() {
                return Ok(());
            }
            text.into()
        };
        self.0.push((key.as_str().to_owned(), json));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: LogFormat) -> String {
        let kvs: [(&str, Value<'_>); 4] = [
            ("status", Value::from(404u16)),
            ("path", Value::from("/v1/x y")),
            ("ok", Value::from(false)),
            ("error", Value::from("")),
        ];
        let args = format_args!("request");
        let record = Record::builder()
            .level(log::Level::Info)
            .target("crier::http")
            .args(args)
            .key_values(&kvs)
            .build();
        format_record(format, "2026-11-25T00:00:00.000Z", &record)
    }

    #[test]
    fn text_lines_quote_values_with_spaces() {
        assert_eq!(
            render(LogFormat::Text),
            "2026-11-25T00:00:00.000Z INFO  request status=404 path=\"/v1/x y\" ok=false\n"
        );
    }

    #[test]
    fn json_lines_keep_types() {
        let line = render(LogFormat::Json);
        assert!(line.ends_with('\n'));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "ts": "2026-11-25T00:00:00.000Z", "level": "info", "msg": "request",
                "target": "crier::http", "status": 404, "path": "/v1/x y", "ok": false
            })
        );
    }
}
