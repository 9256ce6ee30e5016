//! What the OpenAPI document says of one operation ([`Op`], on each route of
//! [`super::routes::FUNCTIONS`]) and the schema builders the operations are written with.

use serde_json::{Map, Value, json};

/// A schema from a short type name: `string`, `integer`, `number`, `boolean`, `date`,
/// `date-time`, `object`, `array`; a trailing `?` allows null.
pub(crate) fn t(spec: &str) -> Value {
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
pub(crate) fn obj(fields: &[(&str, &str)]) -> Value {
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

pub(crate) fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A query parameter.
pub(crate) fn q(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema,
            "description": description })
}

pub(crate) fn text(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "maxLength": 200 }),
        description,
    )
}

pub(crate) fn one_of(name: &str, values: &[&str], description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "enum": values }),
        description,
    )
}

pub(crate) fn date(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "format": "date" }),
        description,
    )
}

pub(crate) fn boolean(name: &str, description: &str) -> Value {
    q(
        name,
        json!({ "type": "string", "enum": ["true", "false"] }),
        description,
    )
}

pub(crate) fn limit(max: i64, default: i64) -> Value {
    q(
        "limit",
        json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default }),
        "Page size.",
    )
}

/// `sort`: the list's sort fields, each ascending or (`-`) descending, the default first.
pub(crate) fn sort(sorts: &super::list::Sorts) -> Value {
    q(
        "sort",
        json!({ "type": "string", "enum": sorts.values(), "default": sorts.default }),
        &format!(
            "Order: a field ascending, or descending with `-`; ties by id in the same direction, nulls last. Default `{}`. A cursor is valid only with the sort it was made for.",
            sorts.default
        ),
    )
}

pub(crate) fn cursor() -> Value {
    text("cursor", "`page.nextCursor` of the previous page.")
}

pub(crate) fn facility_id() -> Value {
    q(
        "facilityId",
        json!({ "type": "integer", "minimum": 1 }),
        "Canonical facility id.",
    )
}

pub(crate) fn format_csv() -> Value {
    one_of("format", &["json", "csv"], "`csv` answers the page as CSV.")
}

pub(crate) fn area() -> Vec<Value> {
    vec![
        text("county", "County name as published (case-insensitive)."),
        text("region", "Regional board code such as `4` or `5F`."),
    ]
}

pub(crate) fn dates(what: &str) -> Vec<Value> {
    vec![
        date("dateFrom", &format!("{what} on or after (ISO date).")),
        date("dateTo", &format!("{what} on or before (ISO date).")),
    ]
}

/// `{data: [item], page, meta}` (+ `stats`).
pub(crate) fn page_of(item: Value, stats: Option<Value>) -> Value {
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
pub(crate) fn single(item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["data", "meta"],
        "properties": { "data": item, "meta": r("Meta") },
    })
}

pub(crate) fn counts() -> Value {
    json!({ "type": "object", "additionalProperties": { "type": "integer" } })
}

/// One operation as the route table declares it; [`super::openapi`] adds the path parameter,
/// the error and 503 responses and the security requirement.
pub struct Op {
    pub summary: &'static str,
    pub params: Vec<Value>,
    pub ok: Value,
    /// Extra documented statuses (400 is always documented).
    pub errors: &'static [u16],
    pub body: Option<Value>,
}

/// How a list or aggregate is answered: from which stored summary, and which filters fall back
/// to a live query (still through indexes). The `description` of its operation.
pub(crate) fn read_path(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/facilities" => {
            "Read from the stored per-facility summaries (`facility_summary`: rebuilt with every \
             publication and, for one facility, by a review action) through their indexes. \
             `page.total` of a request filtered only by county and/or region is a stored area \
             count; other filters count the matching summary rows."
        }
        "/api/facilities.geojson" => {
            "Each feature is read from the facility's stored summary row (its point, open \
             events, worst open severity and ERA Level dates; rebuilt with every publication and \
             by a review action); an area is selected through the (latitude, longitude) index \
             and `page.total` counts the summary rows it holds."
        }
        "/api/smarts/violations" => concat!(
            "The page is read through the sort's index. `stats` and `page.total` come from this ",
            "list's stored cube (counts per region, county and the list's own categories, ",
            "rebuilt with every publication) while the request filters only by `region`, ",
            "`county`, `violationType`, `status` and `seriousOnly`; any other filter (`wdid`, ",
            "`appId`, `facilityId`, `violationId`, a date) counts the current rows live, ",
            "through the table's indexes."
        ),
        "/api/smarts/enforcement" => concat!(
            "The page is read through the sort's index. `stats` and `page.total` come from this ",
            "list's stored cube (counts and sums per region, county and the list's own ",
            "categories, rebuilt with every publication) while the request filters only by ",
            "`region`, `county`, `enforcementType` and `status`; any other filter (`wdid`, ",
            "`appId`, `facilityId`, `enforcementId`, a date) counts the current rows live, ",
            "through the table's indexes."
        ),
        "/api/smarts/inspections" => concat!(
            "The page is read through the sort's index. `stats` and `page.total` come from this ",
            "list's stored cube (counts per region, county and the list's own categories, ",
            "rebuilt with every publication) while the request filters only by `region`, ",
            "`county` and `purpose`; any other filter (`wdid`, `appId`, `facilityId`, ",
            "`inspectionId`, a date) counts the current rows live, through the table's indexes."
        ),
        "/api/smarts/facilities" => concat!(
            "The page merges one branch per record table (industrial, construction), each read ",
            "through its table's index of the sort (`noiProcessedDate` newest first, `name` ",
            "A to Z, `id`; other sorts order each table's matching records). ",
            "`stats` and `page.total` come from this list's stored cube (counts per kind, ",
            "status, region and county, rebuilt with every publication) while the request ",
            "filters only by `kind`, `status`, `region` and `county`; any other filter ",
            "(`wdid`, `appId`, `q`) counts the records live, through the tables' indexes."
        ),
        "/api/violations" | "/api/violations/stats" => {
            "The page merges one index-ordered branch per kind. Totals and stats come from the \
             stored stats of each area scope (statewide, a county, a region; per source: all, \
             esmr, smarts; rebuilt with every publication and by review actions) while the \
             request filters only by `kind`, `source`, `county` or `region` and one \
             computed-event facet (`severity`, `pollutant`, `type`); any other filter counts \
             the matching rows live, through their indexes."
        }
        "/api/dashboard" => {
            "Without a date range, the statewide, per-county and per-region dashboards are \
             stored (rebuilt with every publication and for the scopes a review action \
             touches); a date range computes the dashboard live, through the tables' date \
             indexes."
        }
        _ => return None,
    })
}

/// The body of `POST /api/subscriptions` (the handler checks the rest: which fields each mode
/// and delivery take, known counties and regions, valid polygons, public webhook addresses).
pub(crate) fn subscription_body() -> Value {
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

pub(crate) fn violation_filters() -> Vec<Value> {
    [
        vec![
            one_of(
                "kind",
                super::violation_list::KINDS,
                "computed: exceedance events this service computes from monitoring results; \
                 regulatory: violations SMARTS records; all (default): both.",
            ),
            one_of(
                "source",
                super::violation_list::SOURCES,
                "Program: esmr, smarts_industrial, smarts_construction, or smarts for both \
                 SMARTS programs (all by default).",
            ),
            facility_id(),
            text(
                "pollutant",
                "Pollutant key (copper, zinc, ph, …); computed events only.",
            ),
            one_of(
                "type",
                super::violation_list::TYPES,
                "Benchmark type; computed events only.",
            ),
            one_of(
                "severity",
                super::violation_list::SEVERITIES,
                "Severity; computed events only.",
            ),
            one_of(
                "status",
                super::violation_list::STATUSES,
                "Review status of a computed event, or the SMARTS status of a regulatory \
                 violation (violation, potential, dismissed).",
            ),
            q(
                "year",
                json!({ "type": "integer", "minimum": 1990, "maximum": 2100 }),
                "Reporting year (July–June, named by its first year).",
            ),
            boolean(
                "screening",
                "Screening comparisons only (true) or like-for-like only (false); computed \
                 events only.",
            ),
            boolean(
                "includeResolved",
                "false leaves out reviewed items: resolved or dismissed events and dismissed \
                 regulatory violations (default true: the whole history).",
            ),
            text(
                "violationType",
                "SMARTS violation type; regulatory violations only.",
            ),
            text(
                "monitoringLocation",
                "Monitoring location (a SMARTS location name or an eSMR location code, any \
                 case) of an exceeding sample; computed events only.",
            ),
            boolean(
                "serious",
                "SMARTS serious-violation flag; regulatory violations only.",
            ),
        ],
        area(),
        dates("Sample date of an event, occurrence date of a regulatory violation"),
    ]
    .concat()
}
