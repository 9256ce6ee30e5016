//! `GET /api/openapi.json`: the OpenAPI 3.1 document. Each operation is declared on its route
//! in the route table ([`super::routes::FUNCTIONS`]); this file is the document's frame: the
//! path parameter, the error and 503 responses, security, and the shared schemas.
//!
//! The document is also enforced: every request that goes through the route table is checked
//! against its operation's query parameters ([`check_query`]), so a parameter the document
//! does not declare is a 400 naming it (a typo never silently widens a query), and the fuzz
//! test (schemathesis, in `./dev test`) checks every response against the document.

use super::ApiState;
use super::doc::{obj, r, t};
use super::routes::{self, Route};
use crate::http::{ApiError, json_response};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// `GET /api/openapi.json`.
pub async fn handle(_state: &ApiState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return ApiError::MethodNotAllowed.into_response();
    }
    json_response(StatusCode::OK, &*DOCUMENT, "public, max-age=3600")
}

/// The document (built once).
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// 400 when the request has a query parameter its route's operation does not declare.
pub fn check_query(route: &Route, req: &Request) -> Result<(), ApiError> {
    let op = &DOCUMENT["paths"][route.path][route.method.to_lowercase()];
    let declared: Vec<&str> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    let params = req.query_string_parameters();
    let mut unknown: Vec<&str> = params
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !declared.contains(k))
        .collect();
    unknown.sort_unstable();
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(ApiError::bad(
            name,
            format!(
                "unknown parameter; this endpoint takes: {}",
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            ),
        )),
    }
}

fn components() -> Value {
    json!({
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"],
                "properties": { "error": {
                    "type": "object", "required": ["status", "code", "message"],
                    "properties": { "status": t("integer"), "code": t("string"),
                                    "message": t("string"), "parameter": t("string") } } },
            },
            "Page": {
                "type": "object", "required": ["limit", "nextCursor"],
                "properties": { "limit": t("integer"), "nextCursor": t("string?"), "total": t("integer"), "sort": t("string") },
            },
            "Meta": {
                "type": "object", "required": ["freshness"],
                "properties": { "freshness": {
                    "type": "object",
                    "description": "Per dataset: the last successful sync and the source extract date.",
                    "additionalProperties": obj(&[
                        ("lastSuccessfulSync", "string?"), ("sourceUrl", "string"),
                        ("sourceExtractDate", "date?"), ("rows", "integer?"),
                    ]) } },
            },
            "FacilityProfile": obj(&[
                ("id", "integer"), ("name", "string"), ("county", "string?"), ("region", "string?"),
                ("location", "object?"), ("links", "array"), ("sources", "object"),
                ("counts", "object"), ("nalLevel", "string"),
            ]),
            "DirectoryFacility": obj(&[
                ("id", "integer"), ("name", "string"), ("county", "string?"), ("region", "string?"),
                ("address", "object"), ("location", "object?"), ("sources", "object"),
                ("records", "object"), ("permitIds", "object"), ("nalLevel", "string"),
                ("pollutants", "array"), ("counts", "object"), ("penalties", "object"),
                ("dates", "object"), ("sampling", "object"), ("summaryComputedAt", "string"),
            ]),
            "SmartsViolation": obj(&[
                ("id", "integer"), ("violationId", "string?"), ("facilityId", "integer?"),
                ("wdid", "string?"), ("appId", "string?"), ("violationType", "string?"),
                ("serious", "boolean?"), ("occurrenceDate", "date?"), ("status", "string?"),
                ("enforcementIds", "array"), ("place", "object"), ("provenance", "object"),
            ]),
            "SmartsEnforcement": obj(&[
                ("id", "integer"), ("enforcementId", "string?"), ("facilityId", "integer?"),
                ("wdid", "string?"), ("enforcementType", "string?"), ("status", "string?"),
                ("issuanceDate", "date?"), ("totalAssessment", "number?"), ("receivedAmount", "number?"),
                ("violations", "array"), ("place", "object"), ("provenance", "object"),
            ]),
            "SmartsInspection": obj(&[
                ("id", "integer"), ("inspectionId", "string?"), ("facilityId", "integer?"),
                ("wdid", "string?"), ("inspectionDate", "date?"), ("purpose", "string?"),
                ("violations", "array"), ("place", "object"), ("provenance", "object"),
            ]),
            "ViolationEvent": tagged("computed", obj(&[
                ("id", "integer"), ("facilityId", "integer"), ("facilityName", "string"),
                ("source", "string"), ("pollutant", "string"), ("reportingYear", "integer"),
                ("benchmarkType", "string"), ("value", "number?"), ("maxRatio", "number?"),
                ("severity", "string?"), ("status", "string"), ("firstDate", "date?"),
                ("lastDate", "date?"), ("screening", "boolean"), ("unverified", "boolean"),
                ("links", "object"),
            ])),
            "RegulatoryViolation": tagged("regulatory", obj(&[
                ("id", "integer"), ("facilityId", "integer?"), ("facilityName", "string?"),
                ("county", "string?"), ("region", "string?"), ("source", "string"),
                ("violationId", "string?"), ("wdid", "string?"), ("appId", "string?"),
                ("type", "string?"), ("seriousViolation", "boolean?"), ("priority", "string?"),
                ("status", "string?"), ("description", "string?"), ("occurrenceDate", "date?"),
                ("discoveryDate", "date?"), ("firstDate", "date?"), ("lastDate", "date?"),
                ("reportingYear", "integer?"), ("links", "object"), ("provenance", "object"),
            ])),
            "Violation": { "oneOf": [r("ViolationEvent"), r("RegulatoryViolation")],
                           "discriminator": { "propertyName": "kind", "mapping": {
                               "computed": "#/components/schemas/ViolationEvent",
                               "regulatory": "#/components/schemas/RegulatoryViolation" } } },
        },
        "securitySchemes": {
            "apiKey": { "type": "apiKey", "in": "header", "name": crate::auth::API_KEY_HEADER },
        },
    })
}

fn document() -> Value {
    let mut paths = Map::new();
    for (route, function) in routes::routes() {
        let (method, path, function) = (route.method, route.path, function.name);
        let op = (route.doc)();
        let mut params = op.params;
        if path.contains("{id}") {
            params.insert(
                0,
                json!({ "name": "id", "in": "path", "required": true,
                        "schema": { "type": "integer", "minimum": 1 } }),
            );
        }
        let ok_status = if op.errors.contains(&201) {
            "201"
        } else {
            "200"
        };
        let mut content = Map::new();
        let media = if path.ends_with(".geojson") {
            "application/geo+json"
        } else if path.ends_with("/evidence") {
            "application/zip"
        } else if path.ends_with(".atom") {
            "application/atom+xml"
        } else {
            "application/json"
        };
        content.insert(media.to_owned(), json!({ "schema": op.ok.clone() }));
        if params.iter().any(|p| p["name"] == "format") {
            content.insert(
                "text/csv".to_owned(),
                json!({ "schema": { "type": "string" } }),
            );
        }
        let mut responses = Map::new();
        responses.insert(
            ok_status.to_owned(),
            json!({ "description": "OK", "content": content }),
        );
        for status in std::iter::once(&400).chain(op.errors.iter().filter(|s| **s != 201)) {
            responses.insert(
                status.to_string(),
                json!({ "description": "Error", "content": { "application/json": { "schema": r("Error") } } }),
            );
        }
        // Every operation that reads the database answers 503 while it is unavailable (health
        // with its own body, the others with the error shape).
        if path != "/api/openapi.json" {
            let schema = if path == "/api/health" {
                op.ok.clone()
            } else {
                r("Error")
            };
            responses.insert(
                "503".to_owned(),
                json!({
                    "description": "The database is unavailable (down, restarting or out of connections); retry after `Retry-After` seconds.",
                    "headers": { "Retry-After": {
                        "description": "Seconds to wait before retrying.",
                        "schema": { "type": "integer", "minimum": 1 } } },
                    "content": { "application/json": { "schema": schema } },
                }),
            );
        }
        let mut operation = json!({
            "operationId": format!("{function}-{}", method.to_lowercase()),
            "summary": op.summary,
            "parameters": params,
            "responses": responses,
            "x-function": function,
        });
        if let Some(text) = super::doc::read_path(path) {
            operation["description"] = json!(text);
        }
        if let Some(body) = op.body {
            operation["requestBody"] = json!({ "required": true,
                "content": { "application/json": { "schema": body } } });
        }
        if ["POST", "PATCH", "DELETE"].contains(&method) || path == "/api/subscriptions" {
            operation["security"] = json!([{ "apiKey": [] }]);
        }
        paths
            .entry(path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .and_then(|o| o.insert(method.to_lowercase(), operation));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stormwater Watch API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "California stormwater compliance data (SMARTS and eSMR): facilities, computed NAL exceedances, regulatory violations, enforcement, inspections. Every list: cursor paging (`limit` ≤ 1000), `meta.freshness`; errors share one JSON shape.",
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": components(),
    })
}

/// `schema` (an object) with a required `kind` that is always `kind`.
fn tagged(kind: &str, mut schema: Value) -> Value {
    schema["properties"]["kind"] = json!({ "type": "string", "enum": [kind] });
    if let Some(required) = schema["required"].as_array_mut() {
        required.push(json!("kind"));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_documented_operation_and_nothing_else_is_documented() {
        let doc = &*DOCUMENT;
        let mut documented = 0;
        for (method, path, _) in routes::all() {
            let op = &doc["paths"][path][method.to_lowercase()];
            assert!(op.is_object(), "{method} {path}");
            assert_ne!(op["summary"], "Undocumented route.", "{method} {path}");
            assert!(op["responses"]["400"].is_object());
            documented += 1;
        }
        let in_doc: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(in_doc, documented);
    }

    #[test]
    fn list_operations_declare_paging_and_enums_match_the_handlers() {
        let doc = &*DOCUMENT;
        let params = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        for path in [
            "/api/violations",
            "/api/smarts/violations",
            "/api/smarts/enforcement",
            "/api/smarts/inspections",
            "/api/smarts/facilities",
            "/api/facilities",
        ] {
            let p = params(path);
            assert!(p.contains(&"limit".to_owned()) && p.contains(&"cursor".to_owned()));
        }
        // Every list and aggregate says what it is read from (`doc::read_path`, keyed by path).
        for path in [
            "/api/violations",
            "/api/violations/stats",
            "/api/smarts/violations",
            "/api/smarts/enforcement",
            "/api/smarts/inspections",
            "/api/smarts/facilities",
            "/api/facilities",
            "/api/facilities.geojson",
            "/api/dashboard",
        ] {
            let text = doc["paths"][path]["get"]["description"].as_str();
            assert!(text.is_some_and(|t| t.contains("stored")), "{path}");
        }
        // 503 (database unavailable) is documented wherever it can occur, with Retry-After.
        for (method, path, _) in routes::all() {
            let r503 = &doc["paths"][path][method.to_lowercase()]["responses"]["503"];
            assert_eq!(
                r503.is_object(),
                path != "/api/openapi.json",
                "{method} {path}"
            );
            if r503.is_object() {
                assert!(
                    r503["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
            }
        }
        let limit = doc["paths"]["/api/violations"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["maximum"], 1000);
    }
}
