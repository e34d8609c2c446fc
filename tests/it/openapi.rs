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
    assert_eq!(lists, 21, "the lists of the route table");
}
