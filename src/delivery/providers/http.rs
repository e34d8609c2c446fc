//! The HTTP client every HTTP provider shares: synchronous (ureq), one connection pool, the
//! configured timeout on every call.

use std::time::Duration;

#[derive(Clone)]
pub struct HttpClient {
    pub agent: ureq::Agent,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> HttpClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        HttpClient { agent }
    }
}
