//! `GET /api/openapi.json`: the OpenAPI 3.1 document, built here from the route table
//! ([`super::routes::FUNCTIONS`]) and the parameter and response declarations below.
//!
//! The document is also enforced: every request that goes through the route table is checked
//! against its operation's query parameters ([`check_query`]), so a parameter the document
//! does not declare is a 400 naming it (a typo never silently widens a query), and the fuzz
//! test (schemathesis, in `./dev test`) checks every response against the document.

use super::ApiState;
use super::routes;
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

/// 400 when the request has a query parameter its operation does not declare.
pub fn check_query(req: &Request) -> Result<(), ApiError> {
    let Some((_, pattern)) = routes::resolve(req.method().as_str(), req.uri().path()) else {
        return Ok(());
    };
    let op = &DOCUMENT["paths"][pattern][req.method().as_str().to_lowercase()];
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

/// A schema from a short type name: `string`, `integer`, `number`, `boolean`, `date`,
/// `date-time`, `object`, `array`; a trailing `?` allows null.
fn t(spec: &str) -> Value {
    let (name, nullable) = match spec.strip_suffix('?') {
        Some(n) => (n, true),
        None => (spec, false),
    };
    let (kind, format) = match name {
        "date" => ("string", Some("date")),
        "date-time" => ("string", None),
        other => (other, None),
    };
    let mut s = if nullable {
        json!({ "type": [kind, "null"] })
    } else {
        json!({ "type": kind })
    };
    if let Some(f) = format {
        s["format"] = json!(f);
    }
    s
}

/// An object schema whose listed properties are always present.
fn obj(fields: &[(&str, &str)]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), t(v)))
        .collect();
    json!({
        "type": "object",
        "required": fields.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "properties": props,
    })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A query parameter.
fn q(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema,
            "description": description })
}

fn text(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "maxLength": 200 }),
        description,
    )
}

fn one_of(name: &str, values: &[&str], description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "enum": values }),
        description,
    )
}

fn date(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "format": "date" }),
        description,
    )
}

fn boolean(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "enum": ["true", "false"] }),
        description,
    )
}

fn limit(max: i64, default: i64) -> Value {
    q(
        "limit",
        json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default }),
        "Page size.",
    )
}

fn cursor() -> Value {
    text("cursor", "`page.nextCursor` of the previous page.")
}

fn facility_id() -> Value {
    q(
        "facilityId",
        json!({ "type": "integer", "minimum": 1 }),
        "Canonical facility id.",
    )
}

fn format_csv() -> Value {
    one_of("format", &["json", "csv"], "`csv` answers the page as CSV.")
}

fn area() -> Vec<Value> {
    vec![
        text("county", "County name as published (case-insensitive)."),
        text("region", "Regional board code such as `4` or `5F`."),
    ]
}

fn dates(what: &str) -> Vec<Value> {
    vec![
        date("dateFrom", &format!("{what} on or after (ISO date).")),
        date("dateTo", &format!("{what} on or before (ISO date).")),
    ]
}

/// `{data: [item], page, meta}` (+ `stats`).
fn page_of(item: Value, stats: Option<Value>) -> Value {
    let mut s = json!({
        "type": "object",
        "required": ["data", "page", "meta"],
        "properties": {
            "data": { "type": "array", "items": item },
            "page": r("Page"),
            "meta": r("Meta"),
        },
    });
    if let Some(st) = stats {
        if let Some(a) = s["required"].as_array_mut() {
            a.push(json!("stats"));
        }
        s["properties"]["stats"] = st;
    }
    s
}

/// `{data: item, meta}`.
fn single(item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["data", "meta"],
        "properties": { "data": item, "meta": r("Meta") },
    })
}

fn counts() -> Value {
    json!({ "type": "object", "additionalProperties": { "type": "integer" } })
}

struct Op {
    summary: &'static str,
    params: Vec<Value>,
    ok: Value,
    /// Extra documented statuses (400 is always documented).
    errors: &'static [u16],
    body: Option<Value>,
}

fn operation(method: &str, path: &str) -> Op {
    match (method, path) {
        ("GET", "/api/health") => Op {
            summary: "Is the database reachable, is the cache.",
            params: vec![],
            ok: obj(&[
                ("status", "string"),
                ("database", "string"),
                ("cache", "string"),
                ("version", "string"),
            ]),
            errors: &[],
            body: None,
        },
        ("GET", "/api/openapi.json") => Op {
            summary: "This document.",
            params: vec![],
            ok: json!({ "type": "object" }),
            errors: &[],
            body: None,
        },
        ("GET", "/api/facilities") => Op {
            summary: "SMARTS industrial facility records with filters.",
            params: [
                vec![
                    text("county", "County (case-insensitive)."),
                    one_of("region", super::facilities::REGIONS, "Regional board."),
                    text("permitType", "Permit type as published."),
                    one_of("status", super::facilities::STATUSES, "Permit status."),
                    text("q", "Substring of the facility or operator name."),
                    q(
                        "sic",
                        json!({ "type": "string", "pattern": "^[0-9]{1,4}$" }),
                        "SIC code prefix.",
                    ),
                    text("wdid", "WDID."),
                    text("appId", "APP_ID."),
                ],
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(r("SmartsIndustrialRecord"), None),
            errors: &[],
            body: None,
        },
        ("GET", "/api/facilities/{id}") => Op {
            summary: "One canonical facility: profile, links, counts, ERA Level. A facility merged into another answers 308 with its Location.",
            params: vec![],
            ok: single(r("FacilityProfile")),
            errors: &[308, 404],
            body: None,
        },
        ("GET", "/api/facilities/{id}/complete") => Op {
            summary: "Everything both programs know about one facility.",
            params: vec![],
            ok: single(json!({ "allOf": [r("FacilityProfile"), obj(&[
                ("smarts", "object"), ("esmr", "object"), ("violationEvents", "object"), ("nal", "object"),
            ])] })),
            errors: &[308, 404],
            body: None,
        },
        ("GET", "/api/facilities/{id}/timeline") => Op {
            summary: "One facility's dated feed, newest first.",
            params: [
                vec![one_of(
                    "kind",
                    &[
                        "exceedance",
                        "violation",
                        "inspection",
                        "enforcement",
                        "penalty",
                    ],
                    "Only this kind of entry.",
                )],
                dates("Entry date"),
                vec![limit(1000, 100), cursor()],
            ]
            .concat(),
            ok: page_of(
                obj(&[
                    ("date", "date"),
                    ("kind", "string"),
                    ("id", "integer"),
                    ("detail", "object"),
                ]),
                None,
            ),
            errors: &[308, 404],
            body: None,
        },
        ("GET", "/api/facilities.geojson") => Op {
            summary: "Canonical facilities as GeoJSON points.",
            params: [
                vec![
                    q(
                        "bbox",
                        json!({ "type": "string", "pattern": "^-?[0-9.]+,-?[0-9.]+,-?[0-9.]+,-?[0-9.]+$" }),
                        "minLon,minLat,maxLon,maxLat",
                    ),
                    q(
                        "lat",
                        json!({ "type": "number", "minimum": -90, "maximum": 90 }),
                        "Centre latitude (with lon, radiusKm).",
                    ),
                    q(
                        "lon",
                        json!({ "type": "number", "minimum": -180, "maximum": 180 }),
                        "Centre longitude.",
                    ),
                    q(
                        "radiusKm",
                        json!({ "type": "number", "minimum": 0, "maximum": 500 }),
                        "Radius in km.",
                    ),
                    boolean(
                        "withViolations",
                        "Only facilities with open exceedance events.",
                    ),
                ],
                area(),
                vec![limit(1000, 500), cursor()],
            ]
            .concat(),
            ok: json!({
                "type": "object",
                "required": ["type", "features", "page", "meta"],
                "properties": {
                    "type": { "const": "FeatureCollection" },
                    "features": { "type": "array", "items": obj(&[
                        ("type", "string"), ("id", "integer"), ("geometry", "object"), ("properties", "object"),
                    ]) },
                    "page": r("Page"),
                    "meta": r("Meta"),
                },
            }),
            errors: &[],
            body: None,
        },
        ("GET", "/api/dashboard") => Op {
            summary: "Overview for the state, a county or a region over a period.",
            params: [area(), dates("Record date")].concat(),
            ok: single(obj(&[
                ("summary", "object"),
                ("violations", "object"),
                ("enforcement", "object"),
                ("recentActivity", "array"),
                ("topOffenders", "array"),
                ("timeline", "array"),
            ])),
            errors: &[],
            body: None,
        },
        ("GET", "/api/smarts/violations") => Op {
            summary: "SMARTS regulatory violations.",
            params: [
                vec![
                    text("wdid", "WDID."),
                    text("appId", "APP_ID."),
                    facility_id(),
                    text("violationType", "Violation type as published."),
                    one_of(
                        "status",
                        &["Violation", "Potential", "Dismissed"],
                        "Violation status.",
                    ),
                    boolean("seriousOnly", "Only serious violations."),
                ],
                area(),
                dates("Occurrence date"),
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(
                r("SmartsViolation"),
                Some(json!({ "type": "object", "required": ["serious", "withEnforcement", "byType"],
                    "properties": { "serious": t("integer"), "withEnforcement": t("integer"),
                                    "byType": counts(), "byStatus": counts() } })),
            ),
            errors: &[],
            body: None,
        },
        ("GET", "/api/smarts/enforcement") => Op {
            summary: "SMARTS enforcement actions.",
            params: [
                vec![
                    text("wdid", "WDID."),
                    text("appId", "APP_ID."),
                    facility_id(),
                    text("enforcementType", "Enforcement type as published (NOV, NNC, …)."),
                    text("status", "Enforcement status (Active, Historical, …)."),
                ],
                area(),
                dates("Issuance date"),
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(
                r("SmartsEnforcement"),
                Some(json!({ "type": "object",
                    "required": ["active", "byType", "totalAssessed", "totalReceived"],
                    "properties": { "active": t("integer"), "byType": counts(),
                                    "totalAssessed": t("number"), "totalReceived": t("number") } })),
            ),
            errors: &[],
            body: None,
        },
        ("GET", "/api/smarts/inspections") => Op {
            summary: "SMARTS inspections with their linked violations.",
            params: [
                vec![
                    text("wdid", "WDID."),
                    text("appId", "APP_ID."),
                    facility_id(),
                    text("purpose", "Inspection purpose (case-insensitive)."),
                ],
                area(),
                dates("Inspection date"),
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(
                r("SmartsInspection"),
                Some(json!({ "type": "object", "properties": {
                    "withViolations": t("integer"), "byPurpose": counts() } })),
            ),
            errors: &[],
            body: None,
        },
        ("GET", "/api/smarts/facilities") => Op {
            summary: "SMARTS industrial and construction facility records.",
            params: [
                vec![
                    one_of("kind", &["industrial", "construction"], "Permit program."),
                    text("wdid", "WDID."),
                    text("appId", "APP_ID."),
                    text("status", "Status (case-insensitive)."),
                    text("q", "Substring of the name."),
                ],
                area(),
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(
                obj(&[
                    ("id", "string"),
                    ("kind", "string"),
                    ("facilityId", "integer?"),
                    ("wdid", "string?"),
                    ("appId", "string?"),
                    ("name", "string?"),
                    ("status", "string?"),
                    ("county", "string?"),
                    ("latitude", "number?"),
                    ("longitude", "number?"),
                ]),
                Some(json!({ "type": "object", "properties": { "byKind": counts(), "byStatus": counts() } })),
            ),
            errors: &[],
            body: None,
        },
        ("GET", "/api/violations") => Op {
            summary: "Computed exceedance events of both programs.",
            params: [
                violation_filters(),
                vec![limit(1000, 50), cursor(), format_csv()],
            ]
            .concat(),
            ok: page_of(r("ViolationEvent"), None),
            errors: &[],
            body: None,
        },
        ("GET", "/api/violations/stats") => Op {
            summary: "Aggregates of the computed exceedance events.",
            params: violation_filters(),
            ok: single(obj(&[
                ("events", "integer"),
                ("facilities", "integer"),
                ("bySeverity", "object"),
                ("byStatus", "object"),
                ("byType", "object"),
                ("bySource", "object"),
                ("byPollutant", "object"),
                ("byReportingYear", "object"),
            ])),
            errors: &[],
            body: None,
        },
        ("GET", "/api/violations/{id}") => Op {
            summary: "One exceedance event with its samples, source rows, statistics and history.",
            params: vec![],
            ok: json!({ "type": "object", "required": ["data"], "properties": { "data": t("object") } }),
            errors: &[404],
            body: None,
        },
        ("PATCH", "/api/violations/{id}/status") => Op {
            summary: "Change an event's review status (credentials required).",
            params: vec![],
            ok: json!({ "type": "object", "required": ["data"] }),
            errors: &[401, 404, 409, 413],
            body: Some(json!({ "type": "object", "required": ["status"], "properties": {
                "status": { "type": "string", "enum": ["open", "under_review", "resolved", "dismissed"] },
                "notes": { "type": "string", "maxLength": 4000 },
                "expectedStatus": { "type": "string", "enum": ["open", "under_review", "resolved", "dismissed"] } } })),
        },
        ("POST", "/api/facilities/{id}/links") => Op {
            summary: "Record a reviewer's link or unlink of a source record and this facility (credentials required); the linker reruns and replays it on every later run.",
            params: vec![],
            ok: json!({ "type": "object", "required": ["data", "meta"] }),
            errors: &[401, 404, 409, 413],
            body: Some(json!({ "type": "object", "required": ["action", "source", "sourceKey"],
                "additionalProperties": false, "properties": {
                "action": { "type": "string", "enum": ["link", "unlink"] },
                "source": { "type": "string", "enum": super::facility_links::SOURCES },
                "sourceKey": { "type": "string", "minLength": 1, "maxLength": 200 },
                "notes": { "type": "string", "maxLength": 4000 } } })),
        },
        ("GET", "/api/facility-links") => Op {
            summary: "Links between source records and canonical facilities for review: proposed (default), linked or rejected; with each link's method, confidence and reason.",
            params: [
                vec![
                    one_of("status", super::facility_link_list::STATUSES, "Link status (default proposed)."),
                    one_of("method", super::facility_link_list::METHODS, "How the link was made."),
                    one_of("source", super::facility_links::SOURCES, "Source of the record."),
                    q("minConfidence", json!({ "type": "number", "minimum": 0, "maximum": 1 }), "Confidence at least this."),
                    facility_id(),
                ],
                area(),
                vec![limit(1000, 100), cursor()],
            ]
            .concat(),
            ok: page_of(
                obj(&[
                    ("id", "integer"),
                    ("source", "string"),
                    ("sourceKey", "string"),
                    ("record", "object?"),
                    ("facility", "object"),
                    ("method", "string"),
                    ("confidence", "number"),
                    ("status", "string"),
                    ("notes", "string?"),
                    ("verifiedBy", "string?"),
                    ("verifiedAt", "date-time?"),
                ]),
                None,
            ),
            errors: &[],
            body: None,
        },
        ("GET", "/api/nal-levels") => Op {
            summary: "IGP ERA Level per facility and pollutant.",
            params: [
                vec![
                    text("pollutant", "Pollutant key (copper, zinc, …)."),
                    one_of(
                        "level",
                        &["baseline", "level_1", "level_2"],
                        "ERA Level today.",
                    ),
                    facility_id(),
                ],
                area(),
                vec![limit(1000, 100), cursor()],
            ]
            .concat(),
                        ok: page_of(
                obj(&[
                    ("facility", "object"),
                    ("pollutant", "string"),
                    ("level", "string"),
                    ("level1Since", "date"),
                    ("level2Since", "date?"),
                ]),
                None,
            ),
            errors: &[],
            body: None,
        },
        ("POST", "/api/subscriptions") => Op {
            summary: "Create an alert subscription (credentials required). Webhook URLs must be https and reach only public addresses; at most MAX_ACTIVE_SUBSCRIPTIONS (default 100) active subscriptions per owner (409 beyond); bodies over 64 KiB are a 413.",
            params: vec![],
            ok: json!({ "type": "object", "required": ["data"], "properties": { "data": t("object") } }),
            errors: &[201, 401, 409, 413],
            body: Some(subscription_body()),
        },
        ("GET", "/api/subscriptions") => Op {
            summary: "Your subscriptions, newest first (credentials required): active ones unless includeInactive=true.",
            params: vec![
                boolean("includeInactive", "Also list deactivated subscriptions."),
                limit(100, 50),
                cursor(),
            ],
            ok: json!({ "type": "object", "required": ["data", "page"], "properties": {
                "data": { "type": "array", "items": t("object") }, "page": r("Page") } }),
            errors: &[401],
            body: None,
        },
        ("DELETE", "/api/subscriptions/{id}") => Op {
            summary: "Deactivate a subscription (credentials required).",
            params: vec![],
            ok: json!({ "type": "object" }),
            errors: &[401, 404],
            body: None,
        },
        ("GET", "/api/sync/status") => Op {
            summary: "Recent sync runs with their files.",
            params: vec![limit(100, 10)],
            ok: json!({ "type": "object", "required": ["data", "meta"], "properties": {
                "data": { "type": "array" }, "meta": r("Meta") } }),
            errors: &[],
            body: None,
        },
        ("GET", "/api/sync/runs/{id}") => Op {
            summary: "One sync run with its files and chunks.",
            params: vec![],
            ok: json!({ "type": "object", "required": ["data"] }),
            errors: &[404],
            body: None,
        },
        _ => Op {
            summary: "Undocumented route.",
            params: vec![],
            ok: json!({}),
            errors: &[],
            body: None,
        },
    }
}

/// The body of `POST /api/subscriptions` (the handler checks the rest: which fields each mode
/// and delivery take, known counties and regions, valid polygons, public webhook addresses).
fn subscription_body() -> Value {
    use crate::alerts::area;
    let place = |max: usize| {
        json!({ "type": "array", "maxItems": max,
        "items": { "type": "string", "maxLength": 100 } })
    };
    json!({ "type": "object", "required": ["name", "mode", "delivery"],
        "additionalProperties": false, "properties": {
        "name": { "type": "string", "minLength": 1,
                  "maxLength": super::subscriptions::MAX_NAME_CHARS },
        "mode": { "type": "string", "enum": ["polygon", "buffer", "jurisdiction"] },
        "polygon": { "type": "object", "description": format!(
            "GeoJSON Polygon or MultiPolygon ([longitude, latitude]), valid, at most {} positions, {} polygons and {} bytes.",
            area::MAX_POLYGON_POSITIONS, area::MAX_POLYGON_PARTS, area::MAX_POLYGON_BYTES) },
        "center": { "type": "object", "required": ["lat", "lon"], "additionalProperties": false,
                    "properties": { "lat": t("number"), "lon": t("number") } },
        "radiusM": { "type": "number", "exclusiveMinimum": 0, "maximum": area::MAX_RADIUS_M },
        "counties": place(area::COUNTIES.len()),
        "regions": { "type": "array", "maxItems": area::REGIONS.len(),
                     "items": { "type": "string", "maxLength": 100 },
                     "description": format!("Regional board codes: {}.", area::REGIONS.join(", ")) },
        "minRatio": { "type": "number", "exclusiveMinimum": 0 },
        "repeatThreshold": { "type": "integer", "minimum": 1 },
        "minSeverity": { "type": "string", "enum": ["low", "moderate", "high", "critical"] },
        "level": { "type": "string", "enum": ["level_1", "level_2"] },
        "delivery": { "type": "string", "enum": ["email", "webhook"] },
        "email": { "type": "string", "maxLength": super::subscriptions::MAX_EMAIL_BYTES },
        "webhookUrl": { "type": "string", "maxLength": crate::outbound::MAX_URL_LEN,
                        "description": "https URL of a public host (no internal, private or metadata addresses); redirects are not followed." },
        "webhookSecret": { "type": "string",
                           "minLength": *super::subscriptions::SECRET_CHARS.start(),
                           "maxLength": *super::subscriptions::SECRET_CHARS.end() } } })
}

fn violation_filters() -> Vec<Value> {
    [
        vec![
            one_of(
                "source",
                super::violation_list::SOURCES,
                "Program whose results were evaluated.",
            ),
            facility_id(),
            text("pollutant", "Pollutant key (copper, zinc, ph, …)."),
            one_of("type", super::violation_list::TYPES, "Benchmark type."),
            one_of("severity", super::violation_list::SEVERITIES, "Severity."),
            one_of("status", super::violation_list::STATUSES, "Review status."),
            q(
                "year",
                json!({ "type": "integer", "minimum": 1990, "maximum": 2100 }),
                "Reporting year (July–June, named by its first year).",
            ),
            boolean(
                "screening",
                "Screening comparisons only (true) or like-for-like only (false).",
            ),
        ],
        area(),
        dates("Sample date"),
    ]
    .concat()
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
                "properties": { "limit": t("integer"), "nextCursor": t("string?"), "total": t("integer") },
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
            "SmartsIndustrialRecord": obj(&[
                ("id", "string"), ("facilityId", "integer?"), ("appId", "string?"), ("wdid", "string?"),
                ("name", "string?"), ("status", "string?"), ("county", "string?"), ("location", "object?"),
                ("sources", "object"), ("provenance", "object"),
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
            "ViolationEvent": obj(&[
                ("id", "integer"), ("facilityId", "integer"), ("facilityName", "string"),
                ("source", "string"), ("pollutant", "string"), ("reportingYear", "integer"),
                ("benchmarkType", "string"), ("value", "number?"), ("maxRatio", "number?"),
                ("severity", "string?"), ("status", "string"), ("firstDate", "date?"),
                ("lastDate", "date?"), ("screening", "boolean"), ("unverified", "boolean"),
            ]),
        },
        "securitySchemes": {
            "apiKey": { "type": "apiKey", "in": "header", "name": crate::auth::API_KEY_HEADER },
        },
    })
}

fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, function) in routes::all() {
        let op = operation(method, path);
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
