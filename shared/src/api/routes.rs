//! The HTTP functions and their routes: one table that the Lambda mains, the local server,
//! the tests and the route checks (template.yaml, the `cargo lambda watch` router, the OpenAPI
//! document) all read, so a route cannot exist in one place and be missing in another. Each
//! route carries its handler and its OpenAPI operation ([`Op`]); [`Function::handle`] resolves
//! a request's route once and calls that route's handler.

use super::ApiState;
use super::doc::*;
use crate::http::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::collections::HashMap;
use std::pin::Pin;

/// What a handler returns: the response, borrowing the state for its lifetime.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// One route's request handler, with its path as written in the table (`super::facility::handle`;
/// the function's `main.rs` names it in its doc comment).
pub struct Handler {
    pub name: &'static str,
    pub call: for<'a> fn(&'a ApiState, Request) -> HandlerFuture<'a>,
}

/// One route: what API Gateway sends to the function, who answers it, what the document says.
pub struct Route {
    pub method: &'static str,
    /// API Gateway's `{param}` syntax.
    pub path: &'static str,
    pub handler: Handler,
    /// Its OpenAPI operation (the document adds the path parameter, errors and security).
    pub doc: fn() -> Op,
}

/// One HTTP Lambda function: its package name and the routes API Gateway sends it.
pub struct Function {
    /// Package, binary and `functions/` folder name.
    pub name: &'static str,
    pub routes: &'static [Route],
}

/// A table entry's handler: `$path`, boxed, with its name.
macro_rules! handler {
    ($path:path) => {
        Handler {
            name: stringify!($path),
            call: |state, req| Box::pin($path(state, req)),
        }
    };
}

/// Every HTTP function.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "api-health",
        routes: &[Route {
            method: "GET",
            path: "/api/health",
            handler: handler!(super::health::handle),
            doc: || Op {
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
        }],
    },
    Function {
        name: "api-facilities",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities",
            handler: handler!(super::facilities::handle),
            doc: || {
                Op {
                summary: "The facility directory: canonical facilities across SMARTS industrial, SMARTS construction and eSMR, with counts from their stored summaries. Every filter and sort reads the summaries.",
                params: [
                    vec![
                        text("county", "County (case-insensitive)."),
                        one_of("region", super::facilities::REGIONS, "Regional board."),
                        one_of(
                            "source",
                            super::facilities::SOURCES,
                            "Only facilities with a record in this dataset.",
                        ),
                        text("permitType", "A linked SMARTS record's permit type as published."),
                        one_of(
                            "status",
                            super::facilities::STATUSES,
                            "A linked SMARTS record's permit status.",
                        ),
                        text("q", "Substring of the facility name."),
                        q(
                            "sic",
                            json!({ "type": "string", "pattern": "^[0-9]{1,4}$" }),
                            "SIC code prefix of the primary SIC.",
                        ),
                        text("wdid", "A linked record's WDID."),
                        text("appId", "A linked record's APP_ID."),
                        text("placeId", "A linked eSMR facility place id."),
                        boolean(
                            "hasViolations",
                            "Facilities with (true) or without (false) a computed exceedance event or a SMARTS regulatory violation.",
                        ),
                        boolean(
                            "hasEnforcement",
                            "Facilities with (true) or without (false) a SMARTS enforcement action.",
                        ),
                        one_of(
                            "minLevel",
                            super::facilities::LEVELS,
                            "ERA Level today for at least one pollutant at least this.",
                        ),
                        text("pollutant", "Facilities with a computed event for this pollutant key."),
                        date("inspectedSince", "Last inspection on or after (ISO date)."),
                        date(
                            "windowStart",
                            "Start of the look-back window of the triage filters (ISO date; default: five years before today).",
                        ),
                        boolean(
                            "exceededInWindow",
                            "An exceedance event with a sample in the window (true), or none (false).",
                        ),
                        boolean(
                            "ongoing",
                            "An exceedance event in the current or the previous reporting year (true), or none (false).",
                        ),
                        boolean(
                            "enforcedInWindow",
                            "An enforcement action issued in the window (true), or none (false: the diligent-prosecution check).",
                        ),
                        boolean(
                            "fewerThanRequired",
                            "A judged half-year starting in the window whose industrial monitoring rows sampled fewer than the two qualifying storm events the IGP asks for (true), or none (false); see meta.sampling for what the published data cannot show.",
                        ),
                    ],
                    vec![
                        sort(&super::facilities::SORTS),
                        limit(1000, 50),
                        cursor(),
                        format_csv(),
                    ],
                ]
                .concat(),
                ok: page_of(r("DirectoryFacility"), None),
                errors: &[],
                body: None,
            }
            },
        }],
    },
    Function {
        name: "api-openapi",
        routes: &[Route {
            method: "GET",
            path: "/api/openapi.json",
            handler: handler!(super::openapi::handle),
            doc: || Op {
                summary: "This document.",
                params: vec![],
                ok: json!({ "type": "object" }),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-facility",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities/{id}",
            handler: handler!(super::facility::handle),
            doc: || Op {
                summary: "One canonical facility: profile, links, counts, ERA Level. A facility merged into another answers 308 with its Location.",
                params: vec![],
                ok: single(r("FacilityProfile")),
                errors: &[308, 404],
                body: None,
            },
        }],
    },
    Function {
        name: "api-facility-complete",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities/{id}/complete",
            handler: handler!(super::facility::handle_complete),
            doc: || Op {
                summary: "Everything both programs know about one facility.",
                params: vec![],
                ok: single(json!({ "allOf": [r("FacilityProfile"), obj(&[
                ("permitIds", "object"), ("smarts", "object"), ("esmr", "object"), ("sampling", "object"), ("violationEvents", "object"), ("nal", "object"),
            ])] })),
                errors: &[308, 404],
                body: None,
            },
        }],
    },
    Function {
        name: "api-facility-timeline",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities/{id}/timeline",
            handler: handler!(super::facility::handle_timeline),
            doc: || Op {
                summary: "One facility's dated feed, newest first (or oldest first with sort=date).",
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
                    vec![
                        limit(1000, 100),
                        sort(&super::facility::TIMELINE_SORTS),
                        cursor(),
                    ],
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
        }],
    },
    Function {
        name: "api-facility-evidence",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities/{id}/evidence",
            handler: handler!(super::evidence::handle),
            doc: || Op {
                summary: "The evidence behind a notice letter, as a ZIP (CSV + JSON): every exceedance with a sample in the window and the source rows behind it (dataset, file, line, raw and converted values), the benchmarks with their citation, NAL statistics, the Level history, monitoring completeness, the SMARTS violation, enforcement and inspection record, and a manifest saying how each number was computed. 413 when the window holds more than a response can carry.",
                params: vec![date(
                    "windowStart",
                    "Start of the look-back window (ISO date, not after today; default: five years before today).",
                )],
                ok: json!({ "type": "string", "contentMediaType": "application/zip" }),
                errors: &[308, 404, 413],
                body: None,
            },
        }],
    },
    Function {
        name: "api-feed",
        routes: &[Route {
            method: "GET",
            path: "/api/feed.atom",
            handler: handler!(super::feed::handle),
            doc: || Op {
                summary: "An Atom feed (RFC 4287) of new and escalated exceedance events and newly published SMARTS enforcement actions, newest first, statewide or for a county, a region or one of your subscriptions (credentials required for that one); each entry links to the API document it summarises.",
                params: [
                    area(),
                    vec![
                        q(
                            "subscription",
                            json!({ "type": "integer", "minimum": 1 }),
                            "The area of one of your active subscriptions (API key or JWT).",
                        ),
                        limit(super::feed::MAX_LIMIT, 50),
                    ],
                ]
                .concat(),
                ok: json!({ "type": "string", "contentMediaType": "application/atom+xml" }),
                errors: &[401, 404, 409],
                body: None,
            },
        }],
    },
    Function {
        name: "api-facilities-geojson",
        routes: &[Route {
            method: "GET",
            path: "/api/facilities.geojson",
            handler: handler!(super::geojson::handle),
            doc: || {
                Op {
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
                vec![limit(1000, 500), sort(&super::geojson::SORTS), cursor()],
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
        }
            },
        }],
    },
    Function {
        name: "api-dashboard",
        routes: &[Route {
            method: "GET",
            path: "/api/dashboard",
            handler: handler!(super::dashboard::handle),
            doc: || Op {
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
        }],
    },
    Function {
        name: "api-smarts-violations",
        routes: &[Route {
            method: "GET",
            path: "/api/smarts/violations",
            handler: handler!(super::smarts::handle_violations),
            doc: || Op {
                summary: "SMARTS regulatory violations.",
                params: [
                    vec![
                        text("violationId", "SMARTS violation id."),
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
                    vec![
                        limit(1000, 50),
                        sort(&super::smarts::VIOLATION_SORTS),
                        cursor(),
                        format_csv(),
                    ],
                ]
                .concat(),
                ok: page_of(
                    r("SmartsViolation"),
                    Some(
                        json!({ "type": "object", "required": ["serious", "withEnforcement", "byType"],
                    "properties": { "serious": t("integer"), "withEnforcement": t("integer"),
                                    "byType": counts(), "byStatus": counts() } }),
                    ),
                ),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-smarts-enforcement",
        routes: &[Route {
            method: "GET",
            path: "/api/smarts/enforcement",
            handler: handler!(super::smarts::handle_enforcement),
            doc: || Op {
                summary: "SMARTS enforcement actions.",
                params: [
                    vec![
                        text("enforcementId", "SMARTS enforcement action id."),
                        text("wdid", "WDID."),
                        text("appId", "APP_ID."),
                        facility_id(),
                        text(
                            "enforcementType",
                            "Enforcement type as published (NOV, NNC, …).",
                        ),
                        text("status", "Enforcement status (Active, Historical, …)."),
                    ],
                    area(),
                    dates("Issuance date"),
                    vec![
                        limit(1000, 50),
                        sort(&super::smarts::ENFORCEMENT_SORTS),
                        cursor(),
                        format_csv(),
                    ],
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
        }],
    },
    Function {
        name: "api-smarts-inspections",
        routes: &[Route {
            method: "GET",
            path: "/api/smarts/inspections",
            handler: handler!(super::smarts::handle_inspections),
            doc: || Op {
                summary: "SMARTS inspections with their linked violations.",
                params: [
                    vec![
                        text("inspectionId", "SMARTS inspection id."),
                        text("wdid", "WDID."),
                        text("appId", "APP_ID."),
                        facility_id(),
                        text("purpose", "Inspection purpose (case-insensitive)."),
                    ],
                    area(),
                    dates("Inspection date"),
                    vec![
                        limit(1000, 50),
                        sort(&super::smarts::INSPECTION_SORTS),
                        cursor(),
                        format_csv(),
                    ],
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
        }],
    },
    Function {
        name: "api-smarts-facilities",
        routes: &[Route {
            method: "GET",
            path: "/api/smarts/facilities",
            handler: handler!(super::smarts::handle_facilities),
            doc: || Op {
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
                    vec![
                        limit(1000, 50),
                        sort(&super::smarts::FACILITY_SORTS),
                        cursor(),
                        format_csv(),
                    ],
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
                    Some(
                        json!({ "type": "object", "properties": { "byKind": counts(), "byStatus": counts() } }),
                    ),
                ),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-violations",
        routes: &[Route {
            method: "GET",
            path: "/api/violations",
            handler: handler!(super::violation_list::handle),
            doc: || Op {
                summary: "One feed of violations: exceedance events computed from eSMR and SMARTS monitoring results (kind=computed) and the violations SMARTS records (kind=regulatory), newest first; both by default.",
                params: [
                    violation_filters(),
                    vec![
                        limit(1000, 50),
                        sort(&super::violation_list::SORTS),
                        cursor(),
                        format_csv(),
                    ],
                ]
                .concat(),
                ok: page_of(r("Violation"), None),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-violations-stats",
        routes: &[Route {
            method: "GET",
            path: "/api/violations/stats",
            handler: handler!(super::violation_list::handle_stats),
            doc: || Op {
                summary: "Aggregates of the violations feed under the same filters (both kinds by default).",
                params: violation_filters(),
                ok: single(obj(&[
                    ("total", "integer"),
                    ("byKind", "object"),
                    ("events", "integer"),
                    ("facilities", "integer"),
                    ("bySeverity", "object"),
                    ("byStatus", "object"),
                    ("byType", "object"),
                    ("bySource", "object"),
                    ("byPollutant", "object"),
                    ("byReportingYear", "object"),
                    ("serious", "integer"),
                    ("byViolationType", "object"),
                ])),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-violation",
        routes: &[Route {
            method: "GET",
            path: "/api/violations/{id}",
            handler: handler!(super::violations::handle),
            doc: || Op {
                summary: "One exceedance event with its samples, source rows, statistics and history.",
                params: vec![],
                ok: json!({ "type": "object", "required": ["data"], "properties": { "data": t("object") } }),
                errors: &[404],
                body: None,
            },
        }],
    },
    Function {
        name: "api-violation-status",
        routes: &[Route {
            method: "PATCH",
            path: "/api/violations/{id}/status",
            handler: handler!(super::violations::handle_status),
            doc: || Op {
                summary: "Change an event's review status (credentials required).",
                params: vec![],
                ok: json!({ "type": "object", "required": ["data"] }),
                errors: &[401, 404, 409, 413],
                body: Some(
                    json!({ "type": "object", "required": ["status"], "properties": {
                "status": { "type": "string", "enum": ["open", "under_review", "resolved", "dismissed"] },
                "notes": { "type": "string", "maxLength": 4000 },
                "expectedStatus": { "type": "string", "enum": ["open", "under_review", "resolved", "dismissed"] } } }),
                ),
            },
        }],
    },
    Function {
        name: "api-facility-links",
        routes: &[Route {
            method: "POST",
            path: "/api/facilities/{id}/links",
            handler: handler!(super::facility_links::handle),
            doc: || Op {
                summary: "Record a reviewer's link or unlink of a source record and this facility (credentials required); the linker reruns and replays it on every later run.",
                params: vec![],
                ok: json!({ "type": "object", "required": ["data", "meta"] }),
                errors: &[401, 404, 409, 413],
                body: Some(
                    json!({ "type": "object", "required": ["action", "source", "sourceKey"],
                "additionalProperties": false, "properties": {
                "action": { "type": "string", "enum": ["link", "unlink"] },
                "source": { "type": "string", "enum": super::facility_links::SOURCES },
                "sourceKey": { "type": "string", "minLength": 1, "maxLength": 200 },
                "notes": { "type": "string", "maxLength": 4000 } } }),
                ),
            },
        }],
    },
    Function {
        name: "api-facility-link-list",
        routes: &[Route {
            method: "GET",
            path: "/api/facility-links",
            handler: handler!(super::facility_link_list::handle),
            doc: || Op {
                summary: "Links between source records and canonical facilities for review: proposed (default), linked or rejected; with each link's method, confidence and reason.",
                params: [
                    vec![
                        one_of(
                            "status",
                            super::facility_link_list::STATUSES,
                            "Link status (default proposed).",
                        ),
                        one_of(
                            "method",
                            super::facility_link_list::METHODS,
                            "How the link was made.",
                        ),
                        one_of(
                            "source",
                            super::facility_links::SOURCES,
                            "Source of the record.",
                        ),
                        q(
                            "minConfidence",
                            json!({ "type": "number", "minimum": 0, "maximum": 1 }),
                            "Confidence at least this.",
                        ),
                        facility_id(),
                    ],
                    area(),
                    vec![
                        limit(1000, 100),
                        sort(&super::facility_link_list::SORTS),
                        cursor(),
                    ],
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
                        ("createdAt", "date-time"),
                    ]),
                    None,
                ),
                errors: &[],
                body: None,
            },
        }],
    },
    Function {
        name: "api-nal-levels",
        routes: &[Route {
            method: "GET",
            path: "/api/nal-levels",
            handler: handler!(super::nal_levels::handle),
            doc: || Op {
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
                    vec![limit(1000, 100), sort(&super::nal_levels::SORTS), cursor()],
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
        }],
    },
    Function {
        name: "api-subscriptions",
        routes: &[
            Route {
                method: "POST",
                path: "/api/subscriptions",
                handler: handler!(super::subscriptions::handle_create),
                doc: || Op {
                    summary: "Create an alert subscription (credentials required). Webhook URLs must be https and reach only public addresses; at most MAX_ACTIVE_SUBSCRIPTIONS (default 100) active subscriptions per owner (409 beyond); bodies over 64 KiB are a 413.",
                    params: vec![],
                    ok: json!({ "type": "object", "required": ["data"], "properties": { "data": t("object") } }),
                    errors: &[201, 401, 409, 413],
                    body: Some(subscription_body()),
                },
            },
            Route {
                method: "GET",
                path: "/api/subscriptions",
                handler: handler!(super::subscriptions::handle_list),
                doc: || Op {
                    summary: "Your subscriptions, newest first (credentials required): active ones unless includeInactive=true.",
                    params: vec![
                        boolean("includeInactive", "Also list deactivated subscriptions."),
                        limit(100, 50),
                        sort(&super::subscriptions::SORTS),
                        cursor(),
                    ],
                    ok: json!({ "type": "object", "required": ["data", "page"], "properties": {
                "data": { "type": "array", "items": t("object") }, "page": r("Page") } }),
                    errors: &[401],
                    body: None,
                },
            },
            Route {
                method: "DELETE",
                path: "/api/subscriptions/{id}",
                handler: handler!(super::subscriptions::handle_delete),
                doc: || Op {
                    summary: "Deactivate a subscription (credentials required).",
                    params: vec![],
                    ok: json!({ "type": "object" }),
                    errors: &[401, 404],
                    body: None,
                },
            },
        ],
    },
    Function {
        name: "sync-status",
        routes: &[
            Route {
                method: "GET",
                path: "/api/sync/status",
                handler: handler!(super::sync_status::handle_recent),
                doc: || Op {
                    summary: "Recent sync runs with their files.",
                    params: vec![limit(100, 10)],
                    ok: json!({ "type": "object", "required": ["data", "meta"], "properties": {
                "data": { "type": "array" }, "meta": r("Meta") } }),
                    errors: &[],
                    body: None,
                },
            },
            Route {
                method: "GET",
                path: "/api/sync/runs/{id}",
                handler: handler!(super::sync_status::handle_run),
                doc: || Op {
                    summary: "One sync run with its files and chunks.",
                    params: vec![],
                    ok: json!({ "type": "object", "required": ["data"] }),
                    errors: &[404],
                    body: None,
                },
            },
        ],
    },
];

impl Function {
    /// Answers one request API Gateway sent this function. The route is resolved once: from the
    /// event's `routeKey` (`GET /api/facilities/{id}`), or, for a request made without one, from
    /// its method and path. The handler reads the path parameters from the event (filled from
    /// the path when the request has none) and gets a request whose query the route's operation
    /// declares (any other parameter is a 400 naming it).
    pub async fn handle(&self, state: &ApiState, req: Request) -> Response<Body> {
        let Some((route, params)) = self.route_of(&req) else {
            let path = req.uri().path();
            let error = if self.routes.iter().any(|r| matches(r.path, path).is_some()) {
                ApiError::MethodNotAllowed
            } else {
                ApiError::NotFound(format!("{} serves no route {path}", self.name))
            };
            return error.into_response();
        };
        let req = if req.path_parameters().is_empty() && !params.is_empty() {
            req.with_path_parameters(params)
        } else {
            req
        };
        if let Err(e) = super::openapi::check_query(route, &req) {
            return e.into_response();
        }
        (route.handler.call)(state, req).await
    }

    /// The route of `req` among this function's, and the path parameters its path gives.
    fn route_of(&self, req: &Request) -> Option<(&'static Route, HashMap<String, String>)> {
        let key = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
            _ => None,
        };
        let method = req.method().as_str();
        let path = req.uri().path();
        self.routes.iter().find_map(|r| {
            let params = matches(r.path, path);
            match key.as_deref().and_then(|k| k.split_once(' ')) {
                // API Gateway says which route; the path gives the parameters.
                Some((m, p)) => {
                    (m == r.method && p == r.path).then(|| (r, params.unwrap_or_default()))
                }
                None if r.method.eq_ignore_ascii_case(method) => params.map(|p| (r, p)),
                None => None,
            }
        })
    }
}

/// The parameters `path` gives `pattern`'s `{param}` segments, or `None` when it is not a path
/// of `pattern` (a trailing `/` is ignored).
fn matches(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let pat: Vec<&str> = pattern.split('/').collect();
    if pat.len() != segments.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (p, s) in pat.iter().zip(&segments) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !s.is_empty() => {
                params.insert(name.to_owned(), (*s).to_owned());
            }
            None if p == s => {}
            _ => return None,
        }
    }
    Some(params)
}

/// The function called `name`.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Every route with its function.
pub fn routes() -> impl Iterator<Item = (&'static Route, &'static Function)> {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.routes.iter().map(move |r| (r, f)))
}

/// Every `(method, path, function)`.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    routes().map(|(r, f)| (r.method, r.path, f.name))
}

/// The function and route serving `method` `path` (a concrete path such as
/// `/api/facilities/42`), matching `{param}` segments against any non-empty segment.
pub fn resolve(method: &str, path: &str) -> Option<(&'static Function, &'static str)> {
    routes()
        .find(|(r, _)| r.method.eq_ignore_ascii_case(method) && matches(r.path, path).is_some())
        .map(|(r, f)| (f, r.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, route_key: Option<&str>) -> Request {
        let req = lambda_http::http::Request::builder()
            .method("GET")
            .uri(path)
            .body(Body::Empty)
            .unwrap();
        match route_key {
            None => req,
            Some(k) => {
                let mut ctx = aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
                ctx.route_key = Some(k.to_owned());
                req.with_request_context(RequestContext::ApiGatewayV2(ctx))
            }
        }
    }

    #[test]
    fn a_request_resolves_once_to_a_route_of_its_function_with_its_path_parameters() {
        let f = function("sync-status").unwrap();
        let (r, params) = f.route_of(&get("/api/sync/runs/42/", None)).unwrap();
        assert_eq!((r.method, r.path), ("GET", "/api/sync/runs/{id}"));
        assert_eq!(params["id"], "42");
        let (r, params) = f.route_of(&get("/api/sync/status", None)).unwrap();
        assert_eq!(r.path, "/api/sync/status");
        assert!(params.is_empty());
        // API Gateway's routeKey names the route; the path only gives the parameters.
        let (r, _) = f
            .route_of(&get("/api/sync/status", Some("GET /api/sync/status")))
            .unwrap();
        assert_eq!(r.path, "/api/sync/status");
        assert!(
            f.route_of(&get("/api/sync/status", Some("GET /api/health")))
                .is_none()
        );
        let wrong_method = lambda_http::http::Request::builder()
            .method("DELETE")
            .uri("/api/sync/status")
            .body(Body::Empty)
            .unwrap();
        assert!(f.route_of(&wrong_method).is_none());
    }

    #[test]
    fn function_names_are_unique_and_routes_resolve_to_their_function() {
        let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
        for (method, path, name) in all() {
            let concrete = path.replace("{id}", "7");
            let (f, pattern) = resolve(method, &concrete).expect(path);
            assert_eq!((f.name, pattern), (name, path));
        }
        assert!(resolve("GET", "/api/facilities/7/nope").is_none());
        assert!(resolve("PUT", "/api/facilities").is_none());
        // A literal segment wins where it is listed first.
        assert_eq!(
            resolve("GET", "/api/violations/stats").unwrap().0.name,
            "api-violations-stats"
        );
    }
}

#[cfg(test)]
mod deployment_tests {
    use super::*;
    use std::collections::BTreeSet;

    fn read(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(name),
        )
        .unwrap()
    }

    fn table() -> BTreeSet<(String, String, String)> {
        all()
            .map(|(m, p, f)| (m.to_owned(), p.to_owned(), f.to_owned()))
            .collect()
    }

    #[test]
    fn template_routes_are_the_route_table() {
        // `Binary:` names the function; each HttpApi event has `Path:` then `Method:`.
        let mut binary = String::new();
        let mut path = String::new();
        let mut routes = BTreeSet::new();
        for line in read("template.yaml").lines() {
            let t = line.trim();
            if let Some(b) = t.strip_prefix("Binary: ") {
                binary = b.to_owned();
            } else if let Some(p) = t.strip_prefix("Path: ") {
                path = p.to_owned();
            } else if let Some(m) = t.strip_prefix("Method: ") {
                routes.insert((m.to_owned(), std::mem::take(&mut path), binary.clone()));
            }
        }
        assert_eq!(routes, table());
    }

    #[test]
    fn the_local_watch_router_is_the_route_table() {
        let cargo = read("Cargo.toml");
        let section = cargo
            .split("[workspace.metadata.lambda.watch.router]")
            .nth(1)
            .unwrap();
        let router: BTreeSet<(String, String)> = section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| l.split_once(" = "))
            .map(|(p, f)| {
                (
                    p.trim_matches('"').to_owned(),
                    f.trim_matches('"').to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> =
            table().into_iter().map(|(_, p, f)| (p, f)).collect();
        assert_eq!(router, expected);
        // Every HTTP function has its package, whose doc comment names its routes' handlers.
        for f in FUNCTIONS {
            let main = read(&format!("functions/{}/src/main.rs", f.name));
            assert!(
                main.contains("stormwater::lambda::serve_http(env!(\"CARGO_PKG_NAME\"))"),
                "{}",
                f.name
            );
            for r in f.routes {
                let handler = r.handler.name.replace("super::", "stormwater::api::");
                let doc: String = main.lines().filter(|l| l.starts_with("//!")).collect();
                assert!(
                    doc.contains(&format!("[`{handler}`]")),
                    "{}: {handler}",
                    f.name
                );
            }
        }
    }
}
