// The console's one way to the JSON API: the session cookie rides along (same origin), writes
// carry the session's CSRF token, and every error comes back as an `ApiError` made from the
// envelope `{"error": {"code", "message", "details"}, "request_id"}`.

let csrfToken = null;
let onUnauthenticated = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

/// What to do when the session is gone (401 `unauthenticated`): the app shows the login page.
export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

export class ApiError extends Error {
  constructor(status, code, message, details, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.requestId = requestId || null;
  }

  /// Field name → reason, for a 422 `validation_failed`.
  get fields() {
    return this.details.fields || {};
  }
}

/// A fresh Idempotency-Key for one user action (a retry of the same action reuses it).
export function newIdempotencyKey() {
  return crypto.randomUUID();
}

/// `api("POST", "/v1/messages", body, {idempotencyKey})` → the decoded JSON (null for 204).
/// With `{contentType: "text/csv"}` the body (a File, a Blob) is sent as it is, not as JSON.
export async function api(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  const raw = Boolean(options.contentType);
  if (body !== undefined) headers["Content-Type"] = options.contentType || "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, "network", null, {}, null);
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch (err) {
    payload = null;
  }
  if (response.ok) return payload;
  const error = (payload && payload.error) || {};
  const failure = new ApiError(
    response.status,
    error.code || "http_" + response.status,
    error.message || null,
    error.details,
    payload && payload.request_id,
  );
  if (response.status === 401 && failure.code === "unauthenticated" && !options.quietUnauthenticated) {
    onUnauthenticated(failure);
  }
  throw failure;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body, options);

/// `query({status: "sent", channel: ""})` → `?status=sent` (empty values left out).
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? "?" + text : "";
}
