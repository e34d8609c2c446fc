//! Helpers for the auth tests: a first-run setup, console sessions that send their cookie and
//! CSRF token, API keys used as Bearer credentials, and a second user in a second workspace.

use serde_json::{Value, json};

use crate::harness::{TestResponse, TestServer};

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// The server clock's start as the API writes it.
pub const EPOCH: &str = "2026-11-25T09:30:00.000Z";

/// A logged-in console user: the session cookie's value, its CSRF token, who and where.
pub struct Console<'s> {
    pub server: &'s TestServer,
    pub session: String,
    pub csrf_token: String,
    pub user_id: String,
    /// The active workspace when the session was made (null on a login without memberships).
    pub workspace_id: Option<String>,
}

impl<'s> Console<'s> {
    /// The session a successful setup, login or invitation acceptance handed out.
    pub fn from_response(server: &'s TestServer, response: &TestResponse) -> Console<'s> {
        let body = response.json();
        Console {
            server,
            session: session_cookie(response).expect("a crier_session cookie"),
            csrf_token: body["csrf_token"].as_str().expect("csrf_token").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
            workspace_id: body["workspace"]["id"].as_str().map(str::to_owned),
        }
    }

    pub fn workspace_id(&self) -> &str {
        self.workspace_id.as_deref().expect("an active workspace")
    }

    pub fn cookie(&self) -> String {
        format!("crier_session={}", self.session)
    }

    /// Sends the cookie and the given CSRF header (none when `csrf` is None).
    pub fn request_with_csrf(
        &self,
        method: &str,
        path: &str,
        csrf: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let cookie = self.cookie();
        let mut headers = vec![("Cookie", cookie.as_str())];
        if let Some(csrf) = csrf {
            headers.push(("X-CSRF-Token", csrf));
        }
        send(self.server, method, path, headers, body)
    }

    /// Sends the cookie and the right CSRF token.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> TestResponse {
        self.request_with_csrf(method, path, Some(&self.csrf_token), body)
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.request("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> TestResponse {
        self.request("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> TestResponse {
        self.request("DELETE", path, None)
    }

    /// The active workspace's members as (user id, role).
    pub fn members(&self) -> Vec<(String, String)> {
        let response = self.get("/v1/workspace/members");
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|member| {
                (
                    member["user"]["id"].as_str().unwrap().to_owned(),
                    member["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The active workspace's API keys (ApiKeyView), newest first.
    pub fn keys(&self) -> Vec<Value> {
        let response = self.get("/v1/api-keys");
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["data"].as_array().unwrap().clone()
    }
}

/// One request with an optional JSON body (and its Content-Type).
pub fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    mut headers: Vec<(&str, &str)>,
    body: Option<&Value>,
) -> TestResponse {
    let bytes = body.map(|body| body.to_string().into_bytes());
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    server.request(method, path, &headers, bytes.as_deref().unwrap_or_default())
}

/// The value of the `crier_session` cookie a response sets, if any.
pub fn session_cookie(response: &TestResponse) -> Option<String> {
    let header = set_cookie(response)?;
    let pair = header.split(';').next()?.trim();
    pair.strip_prefix("crier_session=").map(str::to_owned)
}

/// The whole `Set-Cookie` header for `crier_session`, attributes included.
pub fn set_cookie(response: &TestResponse) -> Option<&str> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, value)| value.as_str())
        .find(|value| value.trim_start().starts_with("crier_session="))
}

pub fn setup_body() -> Value {
    json!({
        "email": OWNER_EMAIL,
        "password": PASSWORD,
        "name": "Olive Owner",
        "workspace_name": "Acme",
    })
}

/// Runs first-run setup: the owner of workspace "Acme", logged in.
pub fn setup(server: &TestServer) -> Console<'_> {
    let response = server.post_json("/v1/setup", &setup_body().to_string());
    assert_eq!(response.status, 201, "{}", response.text());
    Console::from_response(server, &response)
}

pub fn try_login(server: &TestServer, email: &str, password: &str) -> TestResponse {
    let body = json!({"email": email, "password": password});
    server.post_json("/v1/auth/login", &body.to_string())
}

pub fn login<'s>(server: &'s TestServer, email: &str, password: &str) -> Console<'s> {
    let response = try_login(server, email, password);
    assert_eq!(response.status, 200, "{}", response.text());
    Console::from_response(server, &response)
}

/// Creates a key in the console's active workspace: (id, key).
pub fn create_key(console: &Console<'_>, scopes: &[&str], mode: &str) -> (String, String) {
    let response = console.post(
        "/v1/api-keys",
        &json!({"name": "test key", "scopes": scopes, "mode": mode}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let body = response.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

/// A request authenticated with `Authorization: Bearer <key>`.
pub fn bearer(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> TestResponse {
    let authorization = format!("Bearer {key}");
    send(
        server,
        method,
        path,
        vec![("Authorization", authorization.as_str())],
        body,
    )
}

/// Invites `email` with `role` to the console's active workspace; returns the invitation body.
pub fn invite(console: &Console<'_>, email: &str, role: &str) -> Value {
    let response = console.post(
        "/v1/workspace/invitations",
        &json!({"email": email, "role": role}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

/// Accepts an invitation as a new user, who is then logged in.
pub fn accept_as_new_user<'s>(server: &'s TestServer, token: &str, name: &str) -> Console<'s> {
    let body = json!({"token": token, "name": name, "password": PASSWORD});
    let response = server.post_json("/v1/invitations/accept", &body.to_string());
    assert_eq!(response.status, 200, "{}", response.text());
    Console::from_response(server, &response)
}

/// A new user who joins the console's active workspace with `role`.
pub fn add_member<'s>(console: &Console<'s>, email: &str, role: &str) -> Console<'s> {
    let invitation = invite(console, email, role);
    accept_as_new_user(
        console.server,
        invitation["token"].as_str().unwrap(),
        "Invited",
    )
}

/// A second user who owns a second workspace, "Globex", and belongs to nothing else: invited to
/// the console's workspace, they leave it, create their own and switch to it.
pub fn second_tenant<'s>(console: &Console<'s>, email: &str) -> Console<'s> {
    let mut other = add_member(console, email, "member");
    let left = other.delete(&format!("/v1/workspace/members/{}", other.user_id));
    assert_eq!(left.status, 204, "{}", left.text());
    let created = other.post("/v1/workspaces", &json!({"name": "Globex"}));
    assert_eq!(created.status, 201, "{}", created.text());
    let workspace_id = created.json()["id"].as_str().unwrap().to_owned();
    let activated = other.request(
        "POST",
        &format!("/v1/workspaces/{workspace_id}/activate"),
        None,
    );
    assert_eq!(activated.status, 200, "{}", activated.text());
    other.workspace_id = Some(workspace_id);
    other
}

/// A count from the database, e.g. `count(&server, "SELECT count(*) FROM users")`.
pub fn count(server: &TestServer, sql: &str) -> i64 {
    server.db().query_row(sql, [], |row| row.get(0)).unwrap()
}

/// The response body with its request id removed, for comparing two answers.
pub fn without_request_id(response: &TestResponse) -> Value {
    let mut body = response.json();
    body.as_object_mut().unwrap().remove("request_id");
    body
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a cursor in a query).
pub fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every item of the list at `path`, walked `limit` at a time by following `next_cursor`.
/// Checks each page on the way: at most `limit` items, and full whenever another page follows.
pub fn walk_pages(console: &Console<'_>, path: &str, limit: usize) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let first = format!("{path}{separator}limit={limit}");
    let mut url = first.clone();
    let mut items = Vec::new();
    for _ in 0..100 {
        let response = console.get(&url);
        assert_eq!(response.status, 200, "{url}: {}", response.text());
        let page = response.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit, "{url}: {page}");
        items.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(data.len(), limit, "{url}: a page before another is full");
                url = format!("{first}&cursor={}", encode_query_value(cursor));
            }
            None => return items,
        }
    }
    panic!("{path} did not end within 100 pages");
}

/// The list at `path` answers a bad `limit` (0, not a number, over 100) with 422 naming `limit`.
pub fn assert_bad_limits_are_422(console: &Console<'_>, path: &str) {
    let separator = if path.contains('?') { '&' } else { '?' };
    for limit in ["0", "abc", "101"] {
        let url = format!("{path}{separator}limit={limit}");
        let envelope = console.get(&url).assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"]["limit"].is_string(),
            "{url}: {envelope}"
        );
    }
}

/// An API key's view of the API: each call sends its bearer token. Test files add the helpers
/// of their area in their own `impl Caller` blocks.
pub struct Caller<'s> {
    pub server: &'s TestServer,
    pub key: String,
}

impl Caller<'_> {
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> TestResponse {
        bearer(self.server, &self.key, method, path, body)
    }

    pub fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call("POST", path, Some(&body))
    }

    pub fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.call("PATCH", path, Some(&body))
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.call("GET", path, None)
    }

    pub fn delete(&self, path: &str) -> TestResponse {
        self.call("DELETE", path, None)
    }
}

/// The arguments of `crier admin adjust-wallet` crediting (or debiting) `workspace` (an id or a
/// name) by `amount` minor units with `reason`; callers add `--json` or data-dir settings.
pub fn adjust_wallet_args<'a>(
    workspace: &'a str,
    amount: &'a str,
    reason: &'a str,
) -> Vec<&'a str> {
    vec![
        "admin",
        "adjust-wallet",
        "--workspace",
        workspace,
        "--amount-minor",
        amount,
        "--reason",
        reason,
    ]
}
