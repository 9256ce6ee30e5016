//! `GET /api/facilities.geojson`: the directory's facilities (canonical, with a current record)
//! that have trusted-or-published coordinates, as a GeoJSON FeatureCollection of points, for
//! maps. Each feature is read from the facility's stored summary row (`facility_summary`: its
//! point, open events, worst open severity and ERA Level dates), so a page reads one table
//! through its indexes.
//!
//! Area: `bbox=minLon,minLat,maxLon,maxLat` or `lat`, `lon` and `radiusKm` (≤ 500, great-circle
//! distance); also `county`, `region`, `withViolations=true` (only facilities with open or
//! under-review exceedance events). Paged by facility id (`limit` ≤ 1000, cursor); `page` and
//! `meta` are foreign members of the collection.

use super::list::{self, Arg, Conditions, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.195;

fn number(name: &str, raw: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64, ApiError> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && range.contains(v))
        .ok_or_else(|| {
            ApiError::bad(
                name,
                format!("must be a number from {} to {}", range.start(), range.end()),
            )
        })
}

fn area(q: &Query, c: &mut Conditions) -> Result<Value, ApiError> {
    let bbox = q.text("bbox")?;
    let (lat, lon, radius) = (q.text("lat")?, q.text("lon")?, q.text("radiusKm")?);
    if bbox.is_some() && (lat.is_some() || lon.is_some() || radius.is_some()) {
        return Err(ApiError::bad(
            "bbox",
            "give either bbox or lat/lon/radiusKm, not both",
        ));
    }
    if let Some(b) = bbox {
        let parts: Vec<&str> = b.split(',').collect();
        if parts.len() != 4 {
            return Err(ApiError::bad("bbox", "must be minLon,minLat,maxLon,maxLat"));
        }
        let min_lon = number("bbox", parts[0], -180.0..=180.0)?;
        let min_lat = number("bbox", parts[1], -90.0..=90.0)?;
        let max_lon = number("bbox", parts[2], -180.0..=180.0)?;
        let max_lat = number("bbox", parts[3], -90.0..=90.0)?;
        if min_lon > max_lon || min_lat > max_lat {
            return Err(ApiError::bad(
                "bbox",
                "minimums must not exceed maximums (minLon,minLat,maxLon,maxLat)",
            ));
        }
        c.when("s.latitude >= ", Some(Arg::Float(min_lat)), "")
            .when("s.latitude <= ", Some(Arg::Float(max_lat)), "")
            .when("s.longitude >= ", Some(Arg::Float(min_lon)), "")
            .when("s.longitude <= ", Some(Arg::Float(max_lon)), "");
        return Ok(json!({ "bbox": [min_lon, min_lat, max_lon, max_lat] }));
    }
    match (lat, lon, radius) {
        (None, None, None) => Ok(Value::Null),
        (Some(lat), Some(lon), Some(r)) => {
            let lat = number("lat", &lat, -90.0..=90.0)?;
            let lon = number("lon", &lon, -180.0..=180.0)?;
            let r = number("radiusKm", &r, 0.0..=500.0)?;
            // A bounding box first (index), then the exact great-circle distance.
            let dlat = r / KM_PER_DEGREE;
            let dlon = r / (KM_PER_DEGREE * lat.to_radians().cos().max(0.01));
            c.when("s.latitude >= ", Some(Arg::Float(lat - dlat)), "")
                .when("s.latitude <= ", Some(Arg::Float(lat + dlat)), "")
                .when("s.longitude >= ", Some(Arg::Float(lon - dlon)), "")
                .when("s.longitude <= ", Some(Arg::Float(lon + dlon)), "")
                .when(
                    "(select 2 * 6371.0088 * asin(least(1, sqrt(
                         power(sin(radians(s.latitude - p[1]) / 2), 2)
                         + cos(radians(p[1])) * cos(radians(s.latitude))
                           * power(sin(radians(s.longitude - p[2]) / 2), 2)))) <= p[3]
                       from (select ",
                    Some(Arg::Floats(vec![lat, lon, r])),
                    "::float8[] as p) center)",
                );
            Ok(json!({ "center": [lon, lat], "radiusKm": r }))
        }
        _ => Err(ApiError::bad(
            "radiusKm",
            "lat, lon and radiusKm go together",
        )),
    }
}

/// The sorts of the features.
pub(crate) static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::required("id", "s.facility_id", "bigint"),
        list::SortField::required("name", "s.name", "text"),
    ],
    default: "id",
};

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    let mut resp = list::respond(state, &req, "facilities-geojson", HOT, None, |q| {
        collection(state, q)
    })
    .await;
    if resp.status().is_success() {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/geo+json"),
        );
    }
    resp
}

async fn collection(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let mut c = Conditions::default();
    c.always("s.latitude is not null");
    let area = area(&q, &mut c)?;
    c.facility_area(&q, "s")?;
    if list::flag(&q, "withViolations")? == Some(true) {
        c.always("s.open_events > 0");
    }
    let limit = q.limit(500, 1000)?;
    let listing = list::Listing {
        route: "GET /api/facilities.geojson",
        item: FEATURE,
        from: "facility_summary s",
        id: "s.facility_id",
        sort: SORTS.parse(&q)?,
        conditions: &c,
        limit,
        known_total: None,
    };
    let (features, page) = list::page(state, &listing, &q).await?;
    Ok(json!({
        "type": "FeatureCollection",
        "features": features,
        "page": page,
        "meta": { "area": area, "freshness": freshness(&state.pool).await? },
    }))
}

/// One feature, from the summary `s`: open events are those open or under review, the ERA
/// Level is today's.
const FEATURE: &str = concat!(
    "jsonb_build_object('type', 'Feature', 'id', s.facility_id,
     'geometry', jsonb_build_object('type', 'Point',
         'coordinates', jsonb_build_array(s.longitude, s.latitude)),
     'properties', jsonb_build_object('id', s.facility_id, 'name', s.name, 'county', s.county,
         'region', s.region, 'coordinatesTrusted', s.coordinates_trusted,
         'openViolationEvents', s.open_events, 'maxSeverity', s.max_open_severity,
         'nalLevel', ",
    super::facilities::nal_level_today!(),
    "))"
);
