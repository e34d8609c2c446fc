//! `ApiResponse`: what a handler returns, as a plain value. Only `http::edge` turns it into a
//! hyper response, so handlers can be called and inspected without a socket.

use std::fmt;
use std::io::Write;

use bytes::Bytes;
use serde::Serialize;

use crate::error::AppError;

#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    /// Shared, so that bytes kept ready (a remembered page) are sent without a copy.
    pub body: Bytes,
    /// A body too large to build in memory (an export), written after `body` by a thread of its
    /// own while the client reads (see `ApiResponse::streamed`).
    pub stream: Option<BodyWriter>,
    /// Set on a response whose outcome is not known yet (see `ApiResponse::later`): then the
    /// rest of this value is a placeholder, and the edge answers with what `Later` brings.
    pub later: Option<Later>,
}

/// The outcome of a request whose work the writer's job thread does: it arrives once that
/// work has committed (or failed). The worker that ran the handler is free meanwhile; the edge
/// waits for it with the connection.
#[derive(Debug)]
pub struct Later(pub tokio::sync::oneshot::Receiver<Result<ApiResponse, AppError>>);

/// Writes a streamed body, chunk by chunk, into whatever `Write` the edge gives it. An error
/// (the client went away, the database failed) ends the response without its final chunk, so
/// the client can tell an incomplete body from a whole one.
pub struct BodyWriter(pub Box<WriteBody>);

/// What a `BodyWriter` runs: it writes the whole body, or fails part-way.
pub type WriteBody = dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send;

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyWriter(..)")
    }
}

pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";
pub const CSV: &str = "text/csv; charset=utf-8";
/// Sent before a CSV body so that spreadsheets read it as UTF-8.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl ApiResponse {
    /// A JSON body. Serialising our own response types cannot fail; if it ever did, the client
    /// gets a 500 envelope rather than a half-written body.
    pub fn json(status: u16, body: &impl Serialize) -> Result<ApiResponse, AppError> {
        let mut bytes = JsonBytes(Vec::with_capacity(256));
        serde_json::to_writer(&mut bytes, body).map_err(AppError::internal)?;
        Ok(ApiResponse::bytes(status, JSON, bytes.0))
    }

    /// A body kept elsewhere (a remembered page, `db::Db::read_remembered`), sent without a
    /// copy.
    pub fn shared(
        status: u16,
        content_type: &'static str,
        body: std::sync::Arc<Vec<u8>>,
    ) -> ApiResponse {
        ApiResponse::bytes(status, content_type, Bytes::from_owner(SharedBody(body)))
    }

    /// 204 with no body.
    pub fn no_content() -> ApiResponse {
        ApiResponse::bytes(204, JSON, Vec::new())
    }

    pub fn bytes(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> ApiResponse {
        ApiResponse {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            stream: None,
            later: None,
        }
    }

    /// A 200 whose body `write` produces while the client reads it (chunked transfer). `write`
    /// runs on a thread of its own, never on a worker: it may take as long as the client does.
    pub fn streamed(
        content_type: &'static str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    ) -> ApiResponse {
        ApiResponse {
            stream: Some(BodyWriter(Box::new(write))),
            ..ApiResponse::bytes(200, content_type, Vec::new())
        }
    }

    /// A response whose outcome `later` brings (`Later`); a closed channel is answered 503.
    pub fn later(later: Later) -> ApiResponse {
        ApiResponse {
            later: Some(later),
            ..ApiResponse::bytes(503, JSON, Vec::new())
        }
    }

    /// Bytes sent before a streamed body.
    pub fn with_prefix(mut self, prefix: &[u8]) -> ApiResponse {
        let mut body = Vec::with_capacity(self.body.len() + prefix.len());
        body.extend_from_slice(&self.body);
        body.extend_from_slice(prefix);
        self.body = body.into();
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> ApiResponse {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A shared body as `Bytes` see it.
struct SharedBody(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The buffer a JSON body is written into. serde_json writes a body in many small pieces (a
/// quote, a colon, a key, a comma: ~15,000 for a page of 50 messages); through `Vec`'s own
/// `Write` each was a call that copied with `memcpy`, a quarter of the instructions of the page.
/// Here the one-byte pieces are pushed and short ones copied byte by byte, inline.
struct JsonBytes(Vec<u8>);

/// A 200 page of a list, `{"data": [...], "next_cursor": …}`, written item by item while the
/// rows are read, so an item may borrow from its row (`GET /v1/messages`: nothing is copied out
/// of SQLite first). Rows come as fetched for `PageRequest::fetch`: the one past the page's
/// limit only tells that there is more. `request::page_response` writes its collected items
/// through it too (`JsonPage::of_items`).
pub struct JsonPage {
    bytes: JsonBytes,
    limit: usize,
    shown: usize,
    /// The id of the page's last item once the page is full: the next page's cursor if more.
    last_id: String,
    more: bool,
}

impl JsonPage {
    pub fn new(limit: usize) -> JsonPage {
        // About a kilobyte per item (a message is ~900 bytes of JSON): a full page is not
        // copied over and over as the buffer doubles from nothing.
        let mut bytes = JsonBytes(Vec::with_capacity(64 + limit * 1024));
        bytes.0.extend_from_slice(b"{\"data\":[");
        JsonPage {
            bytes,
            limit,
            shown: 0,
            last_id: String::new(),
            more: false,
        }
    }

    /// Whether the row read now is shown: `false` once the page is full, and then that row (the
    /// one past the limit) only tells that there is more, so it need not be made into an item.
    pub fn shows_next(&mut self) -> bool {
        if self.shown < self.limit {
            return true;
        }
        self.more = true;
        false
    }

    /// Adds `item`, whose id (the cursor that follows it) is `id` (nothing past the limit).
    pub fn push(&mut self, id: &str, item: &impl Serialize) -> Result<(), AppError> {
        if !self.shows_next() {
            return Ok(());
        }
        self.write_item(item)?;
        if self.shown == self.limit {
            id.clone_into(&mut self.last_id);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<ApiResponse, AppError> {
        Ok(ApiResponse::bytes(200, JSON, self.finish_body()?))
    }

    /// `finish`'s body alone, for a page kept as bytes (`db::Db::read_remembered`).
    pub fn finish_body(mut self) -> Result<Vec<u8>, AppError> {
        let last_id = std::mem::take(&mut self.last_id);
        let more = self.more;
        self.close(more.then_some(last_id.as_str()))
    }

    /// The page of `items` already collected, followed by `next_cursor`.
    pub fn of_items<V: Serialize>(
        items: &[V],
        next_cursor: Option<&str>,
    ) -> Result<ApiResponse, AppError> {
        let mut page = JsonPage::new(items.len());
        for item in items {
            page.write_item(item)?;
        }
        Ok(ApiResponse::bytes(200, JSON, page.close(next_cursor)?))
    }

    fn write_item(&mut self, item: &impl Serialize) -> Result<(), AppError> {
        if self.shown > 0 {
            self.bytes.0.push(b',');
        }
        serde_json::to_writer(&mut self.bytes, item).map_err(AppError::internal)?;
        self.shown += 1;
        Ok(())
    }

    fn close(mut self, next_cursor: Option<&str>) -> Result<Vec<u8>, AppError> {
        self.bytes.0.extend_from_slice(b"],\"next_cursor\":");
        serde_json::to_writer(&mut self.bytes, &next_cursor).map_err(AppError::internal)?;
        self.bytes.0.push(b'}');
        Ok(self.bytes.0)
    }
}

impl Write for JsonBytes {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if buf.len() <= 8 {
            for byte in buf {
                self.0.push(*byte);
            }
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorView,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorView {
    code: &'static str,
    message: String,
    /// Only for errors that have more to say (the fields of a validation failure, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

/// Sent in place of an envelope that could not be serialised (which strings cannot cause).
const FALLBACK_ERROR_BODY: &[u8] =
    br#"{"error":{"code":"internal","message":"An internal error occurred."},"request_id":null}"#;

/// The one error envelope:
/// `{"error": {"code", "message", "details"?}, "request_id"}` plus the headers the error needs.
pub fn error_response(err: &AppError, request_id: &str) -> ApiResponse {
    let envelope = ErrorEnvelope {
        error: ErrorView {
            code: err.code(),
            message: err.public_message(),
            details: err.details(),
        },
        request_id,
    };
    // Strings and an already-built JSON value: serialising cannot fail, but if it ever did the
    // client still gets a well-formed envelope.
    let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| FALLBACK_ERROR_BODY.to_vec());
    let mut response = ApiResponse::bytes(err.status(), JSON, body);
    for (name, value) in err.headers() {
        response = response.with_header(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrors;
    use crate::web::request::{PageRequest, page_response};

    #[test]
    fn a_page_written_item_by_item_is_the_page_made_from_collected_rows() {
        #[derive(Serialize)]
        struct Item {
            id: String,
            note: &'static str,
        }
        let page = PageRequest {
            limit: 3,
            cursor: None,
        };
        // Fewer rows than the page holds, exactly a page, and a page plus the row that tells
        // there is more (what `fetch()` asks for): the cursor only then.
        for fetched in 0..=page.fetch() {
            let rows: Vec<Item> = (1..=fetched)
                .map(|n| Item {
                    id: format!("msg_{n}"),
                    note: "a \"quoted\"\nline",
                })
                .collect();
            let mut written = JsonPage::new(page.limit);
            for row in &rows {
                written.push(&row.id, row).unwrap();
            }
            let written = written.finish().unwrap();
            let (shown, next_cursor) = page.split(rows, |row| row.id.as_str());
            let collected = page_response(&shown, next_cursor).unwrap();
            assert_eq!(
                String::from_utf8(written.body.to_vec()).unwrap(),
                String::from_utf8(collected.body.to_vec()).unwrap(),
                "{fetched} rows fetched"
            );
            assert_eq!((written.status, written.content_type), (200, JSON));
        }
        let mut full = JsonPage::new(1);
        full.push("msg_1", &1).unwrap();
        full.push("msg_2", &2).unwrap();
        assert_eq!(
            &full.finish().unwrap().body[..],
            &br#"{"data":[1],"next_cursor":"msg_1"}"#[..]
        );
    }

    #[test]
    fn validation_errors_carry_fields_in_the_envelope() {
        let mut fields = FieldErrors::new();
        fields.add("name", "is required");
        let response = error_response(&AppError::Validation(fields), "req_1");
        assert_eq!(response.status, 422);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": {
                    "code": "validation_failed",
                    "message": "Some fields are invalid; see details.fields.",
                    "details": {"fields": {"name": "is required"}}
                },
                "request_id": "req_1"
            })
        );
    }

    #[test]
    fn unavailable_sets_retry_after() {
        let err = AppError::Unavailable {
            retry_after_secs: 2,
            detail: "pool".into(),
        };
        let response = error_response(&err, "req_2");
        assert_eq!(response.status, 503);
        assert_eq!(response.header("retry-after"), Some("2"));
        assert!(!String::from_utf8_lossy(&response.body).contains("pool"));
    }
}
