//! `GET /api/facilities.geojson`: canonical facilities with trusted-or-published coordinates
//! as a GeoJSON FeatureCollection of points, for maps.
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
        c.when("f.latitude >= ", Some(Arg::Float(min_lat)), "")
            .when("f.latitude <= ", Some(Arg::Float(max_lat)), "")
            .when("f.longitude >= ", Some(Arg::Float(min_lon)), "")
            .when("f.longitude <= ", Some(Arg::Float(max_lon)), "");
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
            c.when("f.latitude >= ", Some(Arg::Float(lat - dlat)), "")
                .when("f.latitude <= ", Some(Arg::Float(lat + dlat)), "")
                .when("f.longitude >= ", Some(Arg::Float(lon - dlon)), "")
                .when("f.longitude <= ", Some(Arg::Float(lon + dlon)), "")
                .when(
                    "(select 2 * 6371.0088 * asin(least(1, sqrt(
                         power(sin(radians(f.latitude - p[1]) / 2), 2)
                         + cos(radians(p[1])) * cos(radians(f.latitude))
                           * power(sin(radians(f.longitude - p[2]) / 2), 2)))) <= p[3]
                       from (select ",
                    Some(Arg::Floats(vec![lat, lon, r])),
                    "::float8[] as p) s)",
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
        list::SortField::required("id", "f.id", "bigint"),
        list::SortField::required("name", "f.name", "text"),
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
    // Canonical facilities only: one merged into another is the same site, one point.
    c.always("f.latitude is not null")
        .always("f.merged_into is null");
    let area = area(&q, &mut c)?;
    c.when(
        "lower(f.county) = lower(",
        q.text("county")?.map(Arg::Text),
        ")",
    )
    .when(
        "upper(f.region) = upper(",
        q.text("region")?.map(Arg::Text),
        ")",
    );
    if list::flag(&q, "withViolations")? == Some(true) {
        c.always(
            "exists (select 1 from violation_event e where e.facility_id = f.id
                      and e.retracted_at is null and e.status in ('open', 'under_review'))",
        );
    }
    let limit = q.limit(500, 1000)?;
    let item = "jsonb_build_object('type', 'Feature', 'id', f.id,
         'geometry', jsonb_build_object('type', 'Point',
             'coordinates', jsonb_build_array(f.longitude, f.latitude)),
         'properties', jsonb_build_object('id', f.id, 'name', f.name, 'county', f.county,
             'region', f.region, 'coordinatesTrusted', f.coordinates_trusted,
             'openViolationEvents', (select count(*) from violation_event e
                  where e.facility_id = f.id and e.retracted_at is null
                    and e.status in ('open', 'under_review')),
             'maxSeverity', (select e.severity from violation_event e
                  where e.facility_id = f.id and e.retracted_at is null
                    and e.status in ('open', 'under_review')
                  order by array_position(array['low', 'moderate', 'high', 'critical'], e.severity) desc nulls last
                  limit 1),
             'nalLevel', coalesce((select max(l.level) from nal_level_current l
                  where l.facility_id = f.id), 'baseline')))";
    let listing = list::Listing {
        route: "GET /api/facilities.geojson",
        item,
        from: "facility f",
        id: "f.id",
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
