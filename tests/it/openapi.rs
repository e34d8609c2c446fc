//! The OpenAPI document and the route table must describe the same API.

use std::collections::BTreeSet;

use crier::web::router::Router;

use crate::harness::TestServer;

/// The keys of an OpenAPI path item that are operations (the others: parameters, summary, …).
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn openapi_document_lists_exactly_the_routes_that_exist() {
    let server = TestServer::start();
    let response = server.get("/openapi.json");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let document = response.json();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "not OpenAPI 3.1"
    );

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|key| HTTP_METHODS.contains(&key.as_str()))
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = Router::standard()
        .routes()
        .iter()
        .map(|route| (route.method.as_str().to_owned(), route.path.to_owned()))
        .collect();

    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let nonexistent: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        nonexistent.is_empty(),
        "documented but not routed: {nonexistent:?}"
    );
}

#[test]
fn every_operation_has_a_unique_id_and_responses() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut ids = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let operations = operations.as_object().unwrap().iter();
        for (method, operation) in
            operations.filter(|(key, _)| HTTP_METHODS.contains(&key.as_str()))
        {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no responses"
            );
        }
    }
}

#[test]
fn every_documented_reference_resolves() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(
            document.pointer(pointer).is_some(),
            "$ref {reference} points nowhere"
        );
    }
}

fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", serde_json::Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

/// Every documented list (a 200 body with `next_cursor`) takes `limit` and `cursor` and can have
/// a next page.
#[test]
fn every_documented_list_is_paginated() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut lists = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        let Some(operation) = operations.get("get") else {
            continue;
        };
        let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(reference) => document
                .pointer(reference.strip_prefix('#').unwrap())
                .unwrap(),
            None => schema,
        };
        let Some(next_cursor) = schema["properties"].get("next_cursor") else {
            continue;
        };
        lists += 1;
        assert_eq!(
            next_cursor["type"],
            serde_json::json!(["string", "null"]),
            "GET {path}"
        );
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|parameters| {
                parameters
                    .iter()
                    .filter_map(|parameter| parameter["$ref"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for wanted in [
            "#/components/parameters/Limit",
            "#/components/parameters/Cursor",
        ] {
            assert!(parameters.contains(&wanted), "GET {path} lacks {wanted}");
        }
    }
    assert_eq!(lists, 24, "the lists of the route table");
}

/// The operations whose request bodies come from someone else's format (a provider's webhook,
/// a mail client's one-click unsubscribe): those bodies stay open to fields crier ignores.
fn body_is_foreign(path: &str) -> bool {
    path.starts_with("/v1/webhooks/") || path.starts_with("/u/")
}

fn operations(
    document: &serde_json::Value,
) -> impl Iterator<Item = (&String, &String, &serde_json::Value)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .iter()
                .filter(|(key, _)| HTTP_METHODS.contains(&key.as_str()))
                .map(move |(method, operation)| (path, method, operation))
        })
}

fn resolve<'d>(
    document: &'d serde_json::Value,
    value: &'d serde_json::Value,
) -> &'d serde_json::Value {
    match value["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.strip_prefix('#').unwrap())
            .unwrap(),
        None => value,
    }
}

/// The contract lists every status each operation can answer: a catch-all `default` would let
/// an undocumented status through (the fuzz run, tests/fuzz/run.sh, checks the statuses).
#[test]
fn no_operation_hides_its_statuses_behind_default() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    for (path, method, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            !responses.contains_key("default"),
            "{method} {path} documents a `default` response"
        );
        for status in responses.keys() {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                "{method} {path}: {status} is not a status code"
            );
        }
        assert!(
            responses.contains_key("503"),
            "{method} {path} lacks 503 (the database busy, or shutting down)"
        );
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["$ref"].as_str()).collect())
            .unwrap_or_default();
        if let Some(body) = operation.get("requestBody") {
            assert!(
                responses.contains_key("413"),
                "{method} {path} takes a body but lacks 413"
            );
            if body["content"].get("application/json").is_some() {
                for status in ["400", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} takes JSON but lacks {status}"
                    );
                }
            }
        }
        if parameters.iter().any(|p| p.contains("IdempotencyKey")) {
            assert!(
                responses.contains_key("400"),
                "{method} {path} takes Idempotency-Key but lacks 400"
            );
        }
        if !path.starts_with("/v1/") {
            continue;
        }
        let secured = operation["security"]
            .as_array()
            .is_none_or(|requirements| !requirements.is_empty());
        if secured && !body_is_foreign(path) {
            assert!(responses.contains_key("401"), "{method} {path} lacks 401");
        }
        let takes_key = operation["security"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r.get("apiKey").is_some()));
        if takes_key {
            assert!(responses.contains_key("429"), "{method} {path} lacks 429");
        }
    }
}

/// A route that reads no body (`Route::without_body`) still refuses one that says anything —
/// 400, 415 or 422 — so its operation lists those statuses too, as one that reads JSON does.
#[test]
fn operations_that_read_no_body_list_how_a_body_is_refused() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut checked = 0;
    for route in Router::standard().routes().iter().filter(|r| !r.takes_body) {
        let method = route.method.as_str().to_ascii_lowercase();
        let responses = document["paths"][route.path][&method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {} is not in the document", route.path));
        for status in ["400", "415", "422"] {
            assert!(
                responses.contains_key(status),
                "{method} {} reads no body but lacks {status}",
                route.path
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no route reads no body");
}

/// Every error status answers in the one envelope (`Error`), whatever its description says.
#[test]
fn every_error_response_is_the_envelope() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut checked = 0;
    for (path, method, operation) in operations(&document) {
        // The pages outside /v1/ (unsubscribe, short links) answer people with HTML.
        if !path.starts_with("/v1/") && !path.ends_with(".json") {
            continue;
        }
        for (status, response) in operation["responses"].as_object().unwrap() {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = resolve(&document, response);
            let content = response["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status} has no content"));
            for (media_type, body) in content {
                assert_eq!(
                    body["schema"]["$ref"], "#/components/schemas/Error",
                    "{method} {path} {status} {media_type} is not the error envelope"
                );
            }
            assert!(
                content.contains_key("application/json"),
                "{method} {path} {status}"
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} error responses");
}

/// A request body the server decodes with `deny_unknown_fields` says so: `additionalProperties:
/// false`, so an unknown field is a schema violation a client's tooling sees before the 422.
#[test]
fn every_json_request_body_refuses_unknown_fields() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    let mut bodies = 0;
    for (path, method, operation) in operations(&document) {
        let Some(body) = operation.get("requestBody") else {
            continue;
        };
        if body_is_foreign(path) {
            continue;
        }
        let Some(json) = body["content"].get("application/json") else {
            continue;
        };
        let schema = resolve(&document, &json["schema"]);
        assert_eq!(
            schema["additionalProperties"], false,
            "{method} {path}: the body schema allows unknown fields"
        );
        assert_eq!(schema["type"], "object", "{method} {path}");
        bodies += 1;
    }
    assert!(bodies >= 36, "only {bodies} JSON request bodies");
}

/// The header the server refuses with 400 when malformed carries the server's own rule.
#[test]
fn idempotency_keys_have_the_servers_pattern() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    for name in ["IdempotencyKey", "IdempotencyKeyRequired"] {
        let schema = &document["components"]["parameters"][name]["schema"];
        assert_eq!(
            schema["pattern"], r#"^([!#-~][!-~]{0,254}|"([!#-\[\]-~]|\\["\\]){1,255}")$"#,
            "{name}"
        );
    }
}

/// The routes open without credentials are limited per client IP (`--public-rate-limit`), so
/// each of their operations documents the 429 that limit answers.
#[test]
fn open_routes_document_their_rate_limit() {
    let document: serde_json::Value =
        serde_json::from_str(crier::web::system::OPENAPI_JSON).unwrap();
    for path in crier::web::router::OPEN_ROUTES {
        let operations = document["paths"][*path]
            .as_object()
            .unwrap_or_else(|| panic!("{path} is not documented"));
        let mut checked = 0;
        for (method, operation) in operations {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            assert!(
                operation["responses"].get("429").is_some(),
                "{method} {path} lacks 429"
            );
            checked += 1;
        }
        assert!(checked > 0, "{path} has no operation");
    }
}
