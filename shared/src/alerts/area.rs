//! Subscription areas: a drawn polygon, a radius around a point, or a list of counties and
//! Regional Water Board regions, and the test of whether a place falls inside one.
//!
//! Coordinates are WGS84. GeoJSON positions are `[longitude, latitude]`; everything else here
//! takes latitude first, as people write it.

use geo::{
    BoundingRect, Distance, Haversine, Intersects, MultiPolygon, Point, Polygon, Validation,
};
use geojson::{GeoJson, GeometryValue, PolygonType, Position};
use serde::Deserialize;

/// Largest accepted buffer radius, in metres.
pub const MAX_RADIUS_M: f64 = 500_000.0;
/// Most positions a polygon may have, over all its rings.
pub const MAX_POLYGON_POSITIONS: usize = 2_000;
/// Most polygons a MultiPolygon may have.
pub const MAX_POLYGON_PARTS: usize = 20;
/// Largest polygon, as compact JSON: a page of 100 subscriptions stays well within a Lambda
/// response.
pub const MAX_POLYGON_BYTES: usize = 32 * 1024;

/// California's 58 counties, spelled as the SMARTS data spells them (`COUNTY` of the
/// industrial facilities file, without " County").
pub const COUNTIES: &[&str] = &[
    "Alameda",
    "Alpine",
    "Amador",
    "Butte",
    "Calaveras",
    "Colusa",
    "Contra Costa",
    "Del Norte",
    "El Dorado",
    "Fresno",
    "Glenn",
    "Humboldt",
    "Imperial",
    "Inyo",
    "Kern",
    "Kings",
    "Lake",
    "Lassen",
    "Los Angeles",
    "Madera",
    "Marin",
    "Mariposa",
    "Mendocino",
    "Merced",
    "Modoc",
    "Mono",
    "Monterey",
    "Napa",
    "Nevada",
    "Orange",
    "Placer",
    "Plumas",
    "Riverside",
    "Sacramento",
    "San Benito",
    "San Bernardino",
    "San Diego",
    "San Francisco",
    "San Joaquin",
    "San Luis Obispo",
    "San Mateo",
    "Santa Barbara",
    "Santa Clara",
    "Santa Cruz",
    "Shasta",
    "Sierra",
    "Siskiyou",
    "Solano",
    "Sonoma",
    "Stanislaus",
    "Sutter",
    "Tehama",
    "Trinity",
    "Tulare",
    "Tuolumne",
    "Ventura",
    "Yolo",
    "Yuba",
];

/// Regional Water Board codes as the SMARTS data writes them (`REGION_BOARD`; Central Valley
/// is split into 5F / 5R / 5S and Lahontan into 6A / 6B).
pub const REGIONS: &[&str] = &[
    "1", "2", "3", "4", "5F", "5R", "5S", "6A", "6B", "7", "8", "9",
];

/// The data's spelling of a county given as people write it (`"los angeles county"` →
/// `"Los Angeles"`), or `None` when it is not a California county.
pub fn canonical_county(s: &str) -> Option<&'static str> {
    let wanted = normalize_county(s);
    COUNTIES
        .iter()
        .find(|c| normalize_county(c) == wanted)
        .copied()
}

/// The data's spelling of a regional board code (`"Region 5f"` → `"5F"`), or `None`.
pub fn canonical_region(s: &str) -> Option<&'static str> {
    let wanted = normalize_region(s);
    REGIONS
        .iter()
        .find(|r| normalize_region(r) == wanted)
        .copied()
}

/// Why an area definition was rejected.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error("polygon: {0}")]
    Polygon(String),
    #[error("buffer: {0}")]
    Buffer(String),
}

/// The area a subscription watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    /// A drawn area; points on its boundary count as inside.
    Polygon(MultiPolygon<f64>),
    /// Everything within `radius_m` metres (great-circle distance) of a point.
    Buffer { lat: f64, lon: f64, radius_m: f64 },
    /// Places in any of these counties or Regional Water Board regions.
    Jurisdiction {
        counties: Vec<String>,
        regions: Vec<String>,
    },
}

/// A subscription's area as stored (`subscription.mode` and the columns of that mode); `None`
/// when the stored columns do not make a valid area.
pub fn from_stored(
    mode: &str,
    polygon: Option<&serde_json::Value>,
    center: Option<(f64, f64)>,
    radius_m: Option<f64>,
    counties: Option<&[String]>,
    regions: Option<&[String]>,
) -> Option<Area> {
    match mode {
        "polygon" => parse_polygon(polygon?).ok().map(Area::Polygon),
        "buffer" => {
            let (lat, lon) = center?;
            buffer(lat, lon, radius_m?).ok()
        }
        "jurisdiction" => Some(Area::Jurisdiction {
            counties: counties.unwrap_or_default().to_vec(),
            regions: regions.unwrap_or_default().to_vec(),
        }),
        _ => None,
    }
}

/// What is known about where something (a facility, a sample site) is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Place<'a> {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub county: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl Place<'_> {
    /// The place as a geo point (x = lon, y = lat), if it has usable coordinates.
    ///
    /// Missing, non-finite and `(0, 0)` coordinates are unusable: `(0, 0)` is the usual
    /// placeholder for "unknown" in the source data, not a site in the Gulf of Guinea.
    fn point(&self) -> Option<Point<f64>> {
        let (lat, lon) = (self.lat?, self.lon?);
        let usable = lat.is_finite() && lon.is_finite() && !(lat == 0.0 && lon == 0.0);
        usable.then(|| Point::new(lon, lat))
    }
}

impl Area {
    /// `(min_lat, max_lat, min_lon, max_lon)` around a polygon or a buffer (a prefilter for
    /// [`Area::contains`]); `None` for a jurisdiction.
    pub fn bounds(&self) -> Option<(f64, f64, f64, f64)> {
        match self {
            Self::Polygon(shape) => shape
                .bounding_rect()
                .map(|r| (r.min().y, r.max().y, r.min().x, r.max().x)),
            Self::Buffer { lat, lon, radius_m } => {
                // A degree of latitude is at least 110.5 km; a degree of longitude shrinks
                // with cos(latitude) (a pole's buffer takes every longitude).
                let dlat = radius_m / 110_500.0;
                let cos = lat.to_radians().cos();
                let dlon = if cos > 1e-6 {
                    (radius_m / (110_500.0 * cos)).min(180.0)
                } else {
                    180.0
                };
                Some((lat - dlat, lat + dlat, lon - dlon, lon + dlon))
            }
            Self::Jurisdiction { .. } => None,
        }
    }

    /// True when `place` is inside this area.
    ///
    /// Polygons use geo's `Intersects`, so a place exactly on an edge or vertex is inside;
    /// a place in a hole is outside. Buffers compare the Haversine distance with the radius
    /// (inclusive). Places without usable coordinates are never inside a polygon or buffer.
    /// Jurisdictions compare [`normalize_county`] and [`normalize_region`] forms and ignore
    /// coordinates.
    pub fn contains(&self, place: &Place<'_>) -> bool {
        match self {
            Self::Polygon(shape) => place.point().is_some_and(|p| shape.intersects(&p)),
            Self::Buffer { lat, lon, radius_m } => place
                .point()
                .is_some_and(|p| Haversine.distance(Point::new(*lon, *lat), p) <= *radius_m),
            Self::Jurisdiction { counties, regions } => {
                matches_any(place.county, counties, normalize_county)
                    || matches_any(place.region, regions, normalize_region)
            }
        }
    }
}

fn matches_any(value: Option<&str>, wanted: &[String], normalize: fn(&str) -> String) -> bool {
    let Some(value) = value.map(normalize).filter(|v| !v.is_empty()) else {
        return false;
    };
    wanted.iter().any(|w| normalize(w) == value)
}

/// Trims, lowercases and collapses runs of whitespace to one space.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Comparison form of a county name: trimmed, lowercase, without a trailing " County".
///
/// `"Los Angeles County"`, `" los angeles "` and `"LOS ANGELES"` all give `"los angeles"`.
pub fn normalize_county(s: &str) -> String {
    let folded = fold(s);
    match folded.strip_suffix(" county") {
        Some(name) => name.to_owned(),
        None => folded,
    }
}

/// Comparison form of a Regional Water Board region: trimmed, lowercase, without a leading
/// "Region ".
///
/// `"Region 4"` and `"4"` give `"4"`; `"5F"` and `"region 5f"` give `"5f"`.
pub fn normalize_region(s: &str) -> String {
    let folded = fold(s);
    match folded.strip_prefix("region ") {
        Some(code) => code.to_owned(),
        None => folded,
    }
}

/// A buffer area, after checking that the centre is a real location and the radius is
/// positive and at most [`MAX_RADIUS_M`].
pub fn buffer(lat: f64, lon: f64, radius_m: f64) -> Result<Area, AreaError> {
    let invalid = |msg: String| Err(AreaError::Buffer(msg));
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return invalid(format!("latitude {lat} is outside -90..90"));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return invalid(format!("longitude {lon} is outside -180..180"));
    }
    if lat == 0.0 && lon == 0.0 {
        return invalid("centre (0, 0) is a placeholder, not a location".into());
    }
    if !radius_m.is_finite() || radius_m <= 0.0 || radius_m > MAX_RADIUS_M {
        return invalid(format!(
            "radius {radius_m} m must be greater than 0 and at most {MAX_RADIUS_M} m"
        ));
    }
    Ok(Area::Buffer { lat, lon, radius_m })
}

/// Parses a GeoJSON Polygon or MultiPolygon geometry, or a Feature wrapping one.
///
/// Positions are WGS84 `[longitude, latitude]`. Every ring needs at least four positions,
/// the last equal to the first. Errors name the offending ring or position by its index
/// path in `coordinates`. At most [`MAX_POLYGON_BYTES`] of JSON, [`MAX_POLYGON_POSITIONS`]
/// positions and [`MAX_POLYGON_PARTS`] polygons; the shape must be valid in the OGC sense
/// (geo's [`Validation`]: no self-intersecting ring, holes inside their exterior, parts of a
/// MultiPolygon not overlapping).
pub fn parse_polygon(v: &serde_json::Value) -> Result<MultiPolygon<f64>, AreaError> {
    let invalid = |msg: String| AreaError::Polygon(msg);
    let bytes = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_POLYGON_BYTES {
        return Err(invalid(format!(
            "{bytes} bytes of GeoJSON; at most {MAX_POLYGON_BYTES} are accepted"
        )));
    }
    let geometry = match GeoJson::deserialize(v) {
        Ok(GeoJson::Geometry(g)) => g,
        Ok(GeoJson::Feature(f)) => f
            .geometry
            .ok_or_else(|| invalid("the Feature has no geometry".into()))?,
        Ok(GeoJson::FeatureCollection(_)) => {
            return Err(invalid(
                "expected a Polygon or MultiPolygon geometry, got a FeatureCollection".into(),
            ));
        }
        Err(e) => return Err(invalid(format!("not valid GeoJSON: {e}"))),
    };
    let value = geometry.value;
    let (parts, positions) = match &value {
        GeometryValue::Polygon { coordinates } => (1, coordinates.iter().map(Vec::len).sum()),
        GeometryValue::MultiPolygon { coordinates } => (
            coordinates.len(),
            coordinates.iter().flatten().map(Vec::len).sum(),
        ),
        _ => (0, 0),
    };
    if parts > MAX_POLYGON_PARTS {
        return Err(invalid(format!(
            "{parts} polygons; at most {MAX_POLYGON_PARTS} are accepted"
        )));
    }
    if positions > MAX_POLYGON_POSITIONS {
        return Err(invalid(format!(
            "{positions} positions; at most {MAX_POLYGON_POSITIONS} are accepted"
        )));
    }
    match &value {
        GeometryValue::Polygon { coordinates } => check_polygon(coordinates, "coordinates")?,
        GeometryValue::MultiPolygon { coordinates } => {
            if coordinates.is_empty() {
                return Err(invalid("the MultiPolygon has no polygons".into()));
            }
            for (i, polygon) in coordinates.iter().enumerate() {
                check_polygon(polygon, &format!("coordinates[{i}]"))?;
            }
        }
        other => {
            return Err(invalid(format!(
                "expected a Polygon or MultiPolygon, got {}",
                other.type_name()
            )));
        }
    }
    // The checks above guarantee two finite numbers per position, which the conversion needs.
    let converted = match value {
        GeometryValue::Polygon { .. } => {
            Polygon::try_from(value).map(|p| MultiPolygon::new(vec![p]))
        }
        _ => MultiPolygon::try_from(value),
    };
    let shape = converted.map_err(|e| invalid(format!("cannot convert: {e}")))?;
    shape
        .check_validation()
        .map_err(|e| invalid(format!("not a valid shape: {e}")))?;
    Ok(shape)
}

fn check_polygon(rings: &PolygonType, path: &str) -> Result<(), AreaError> {
    if rings.is_empty() {
        return Err(AreaError::Polygon(format!("{path} has no rings")));
    }
    for (r, ring) in rings.iter().enumerate() {
        let ring_path = format!("{path}[{r}]");
        for (i, position) in ring.iter().enumerate() {
            check_position(position, &format!("{ring_path}[{i}]"))?;
        }
        if ring.len() < 4 {
            return Err(AreaError::Polygon(format!(
                "ring {ring_path} has {} positions; a ring needs at least 4, the last repeating the first",
                ring.len()
            )));
        }
        let (first, last) = (&ring[0], &ring[ring.len() - 1]);
        if first.as_slice()[..2] != last.as_slice()[..2] {
            return Err(AreaError::Polygon(format!(
                "ring {ring_path} is not closed: its last position {:?} differs from its first {:?}",
                &last.as_slice()[..2],
                &first.as_slice()[..2]
            )));
        }
    }
    Ok(())
}

fn check_position(position: &Position, path: &str) -> Result<(), AreaError> {
    let invalid = |msg: String| Err(AreaError::Polygon(msg));
    let &[lon, lat, ..] = position.as_slice() else {
        return invalid(format!("position {path} needs [longitude, latitude]"));
    };
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return invalid(format!(
            "position {path}: longitude {lon} is outside -180..180"
        ));
    }
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return invalid(format!(
            "position {path}: latitude {lat} is outside -90..90 (positions are [longitude, latitude])"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOWNTOWN_LA: (f64, f64) = (34.0522, -118.2437);
    const SAN_FRANCISCO: (f64, f64) = (37.7749, -122.4194);
    const SACRAMENTO: (f64, f64) = (38.5816, -121.4944);

    fn at((lat, lon): (f64, f64)) -> Place<'static> {
        Place {
            lat: Some(lat),
            lon: Some(lon),
            ..Place::default()
        }
    }

    /// A closed [lon, lat] ring around a box.
    fn ring(south: f64, west: f64, north: f64, east: f64) -> serde_json::Value {
        json!([
            [west, south],
            [east, south],
            [east, north],
            [west, north],
            [west, south]
        ])
    }

    fn la_box() -> serde_json::Value {
        ring(34.00, -118.30, 34.10, -118.20)
    }

    fn polygon_error(v: serde_json::Value) -> String {
        match parse_polygon(&v) {
            Err(e @ AreaError::Polygon(_)) => e.to_string(),
            other => panic!("expected a polygon error for {v}, got {other:?}"),
        }
    }

    #[test]
    fn polygon_around_downtown_la_contains_it_and_not_san_francisco() {
        let shape = parse_polygon(&json!({"type": "Polygon", "coordinates": [la_box()]})).unwrap();
        let area = Area::Polygon(shape);
        assert!(area.contains(&at(DOWNTOWN_LA)));
        assert!(!area.contains(&at(SAN_FRANCISCO)));
    }

    #[test]
    fn polygon_boundary_counts_as_inside() {
        let shape = parse_polygon(&json!({"type": "Polygon", "coordinates": [la_box()]})).unwrap();
        let area = Area::Polygon(shape);
        assert!(area.contains(&at((34.00, -118.25))), "edge");
        assert!(area.contains(&at((34.10, -118.20))), "vertex");
    }

    #[test]
    fn multipolygon_covers_each_part() {
        let sf_box = ring(37.70, -122.52, 37.83, -122.35);
        let v = json!({"type": "MultiPolygon", "coordinates": [[la_box()], [sf_box]]});
        let area = Area::Polygon(parse_polygon(&v).unwrap());
        assert!(area.contains(&at(DOWNTOWN_LA)));
        assert!(area.contains(&at(SAN_FRANCISCO)));
        assert!(!area.contains(&at(SACRAMENTO)));
    }

    #[test]
    fn polygon_hole_is_outside() {
        let hole = ring(34.04, -118.25, 34.06, -118.23);
        let v = json!({"type": "Polygon", "coordinates": [la_box(), hole]});
        let area = Area::Polygon(parse_polygon(&v).unwrap());
        assert!(!area.contains(&at(DOWNTOWN_LA)), "downtown is in the hole");
        assert!(
            area.contains(&at((34.02, -118.28))),
            "between hole and outer ring"
        );
    }

    #[test]
    fn feature_wrapping_a_polygon_is_accepted() {
        let v = json!({
            "type": "Feature",
            "properties": {"name": "Downtown LA"},
            "geometry": {"type": "Polygon", "coordinates": [la_box()]}
        });
        assert!(Area::Polygon(parse_polygon(&v).unwrap()).contains(&at(DOWNTOWN_LA)));
    }

    #[test]
    fn invalid_polygons_are_rejected_with_the_reason() {
        let point = json!({"type": "Point", "coordinates": [-118.2437, 34.0522]});
        assert!(polygon_error(point).contains("got Point"));

        let short = json!({"type": "Polygon", "coordinates": [[[-118.3, 34.0], [-118.2, 34.0], [-118.3, 34.0]]]});
        assert!(polygon_error(short).contains("at least 4"));

        let open = json!({"type": "Polygon", "coordinates": [[
            [-118.3, 34.0], [-118.2, 34.0], [-118.2, 34.1], [-118.3, 34.1]
        ]]});
        assert!(polygon_error(open).contains("not closed"));

        let far_east = json!({"type": "Polygon", "coordinates": [ring(34.0, -118.3, 34.1, 200.0)]});
        let msg = polygon_error(far_east);
        assert!(msg.contains("longitude 200"), "{msg}");

        let swapped = json!({"type": "Polygon", "coordinates": [[
            [34.0, -118.3], [34.0, -118.2], [34.1, -118.2], [34.0, -118.3]
        ]]});
        assert!(polygon_error(swapped).contains("latitude -118.3"));

        let one_number = json!({"type": "Polygon", "coordinates": [[[1.0], [2.0], [3.0], [1.0]]]});
        assert!(polygon_error(one_number).contains("[longitude, latitude]"));

        let no_rings = json!({"type": "Polygon", "coordinates": []});
        assert!(polygon_error(no_rings).contains("no rings"));

        let empty_multi = json!({"type": "MultiPolygon", "coordinates": []});
        assert!(polygon_error(empty_multi).contains("no polygons"));

        let collection = json!({"type": "FeatureCollection", "features": []});
        assert!(polygon_error(collection).contains("FeatureCollection"));

        let bare_feature = json!({"type": "Feature", "properties": {}, "geometry": null});
        assert!(polygon_error(bare_feature).contains("no geometry"));

        assert!(polygon_error(json!({"shape": "square"})).contains("not valid GeoJSON"));
    }

    #[test]
    fn polygon_errors_name_the_ring_in_a_multipolygon() {
        let open = json!([
            [-121.6, 38.5],
            [-121.4, 38.5],
            [-121.4, 38.7],
            [-121.6, 38.7]
        ]);
        let v = json!({"type": "MultiPolygon", "coordinates": [[la_box()], [open]]});
        assert!(polygon_error(v).contains("coordinates[1][0]"));
    }

    #[test]
    fn buffer_contains_near_points_and_not_far_ones() {
        let area = buffer(DOWNTOWN_LA.0, DOWNTOWN_LA.1, 1000.0).unwrap();
        // 0.0045° of latitude is about 500 m; 0.018° is about 2 km.
        let near = (DOWNTOWN_LA.0 + 0.0045, DOWNTOWN_LA.1);
        let far = (DOWNTOWN_LA.0 + 0.018, DOWNTOWN_LA.1);
        let metres = |(lat, lon): (f64, f64)| {
            Haversine.distance(
                Point::new(DOWNTOWN_LA.1, DOWNTOWN_LA.0),
                Point::new(lon, lat),
            )
        };
        assert!((metres(near) - 500.0).abs() < 10.0, "{}", metres(near));
        assert!((metres(far) - 2000.0).abs() < 20.0, "{}", metres(far));
        assert!(area.contains(&at(DOWNTOWN_LA)));
        assert!(area.contains(&at(near)));
        assert!(!area.contains(&at(far)));
        assert!(!area.contains(&at(SAN_FRANCISCO)));
    }

    #[test]
    fn buffer_rejects_bad_centres_and_radii() {
        for (lat, lon, radius) in [
            (91.0, -118.0, 1000.0),
            (34.0, -181.0, 1000.0),
            (f64::NAN, -118.0, 1000.0),
            (0.0, 0.0, 1000.0),
            (34.0, -118.0, 0.0),
            (34.0, -118.0, -5.0),
            (34.0, -118.0, 500_001.0),
            (34.0, -118.0, f64::INFINITY),
        ] {
            assert!(
                matches!(buffer(lat, lon, radius), Err(AreaError::Buffer(_))),
                "{lat}, {lon}, {radius}"
            );
        }
        assert!(buffer(34.0, -118.0, MAX_RADIUS_M).is_ok());
    }

    #[test]
    fn places_without_usable_coordinates_are_never_inside_shapes() {
        let polygon = Area::Polygon(
            parse_polygon(&json!({"type": "Polygon", "coordinates": [ring(-1.0, -1.0, 1.0, 1.0)]}))
                .unwrap(),
        );
        let circle = buffer(0.001, 0.001, 10_000.0).unwrap();
        let unknown = [
            Place::default(),
            Place {
                lat: Some(0.0),
                lon: Some(0.0),
                county: Some("Los Angeles"),
                region: Some("4"),
            },
            Place {
                lat: Some(34.0522),
                ..Place::default()
            },
            Place {
                lat: Some(f64::NAN),
                lon: Some(0.5),
                ..Place::default()
            },
        ];
        for place in &unknown {
            assert!(!polygon.contains(place), "{place:?}");
            assert!(!circle.contains(place), "{place:?}");
        }
        assert!(
            polygon.contains(&at((0.5, 0.5))),
            "the shapes themselves do match"
        );
    }

    #[test]
    fn jurisdiction_matches_county_and_region_variants() {
        let area = Area::Jurisdiction {
            counties: vec!["Los Angeles County".into()],
            regions: vec!["Region 4".into(), "5F".into()],
        };
        let place = |county, region| Place {
            county,
            region,
            ..Place::default()
        };
        assert!(area.contains(&place(Some("Los Angeles"), None)));
        assert!(area.contains(&place(Some(" los angeles county "), None)));
        assert!(area.contains(&place(Some("LOS  ANGELES"), None)));
        assert!(!area.contains(&place(Some("Orange"), None)));
        assert!(area.contains(&place(None, Some("4"))));
        assert!(area.contains(&place(None, Some("region 4"))));
        assert!(area.contains(&place(None, Some("5f"))));
        assert!(!area.contains(&place(None, Some("5R"))));
        assert!(!area.contains(&place(Some("Fresno"), Some("5R"))));
        assert!(!area.contains(&place(None, None)));
        assert!(!area.contains(&place(Some(""), Some(" "))));
        assert!(
            !area.contains(&at(DOWNTOWN_LA)),
            "coordinates alone do not match"
        );
    }

    #[test]
    fn empty_jurisdiction_entries_never_match() {
        let area = Area::Jurisdiction {
            counties: vec![String::new()],
            regions: vec!["Region ".into()],
        };
        assert!(!area.contains(&Place {
            county: Some(""),
            region: Some(""),
            ..Place::default()
        }));
    }

    #[test]
    fn self_intersecting_overlapping_and_oversized_polygons_are_rejected() {
        let bowtie = json!({"type": "Polygon", "coordinates": [[
            [-118.3, 34.0], [-118.2, 34.1], [-118.2, 34.0], [-118.3, 34.1], [-118.3, 34.0]
        ]]});
        let msg = polygon_error(bowtie);
        assert!(msg.contains("self-intersection"), "{msg}");
        let twice = json!({"type": "MultiPolygon", "coordinates": [[la_box()], [la_box()]]});
        assert!(polygon_error(twice).contains("overlap"));
        let outside_hole = ring(35.0, -118.0, 35.1, -117.9);
        let v = json!({"type": "Polygon", "coordinates": [la_box(), outside_hole]});
        assert!(polygon_error(v).contains("not a valid shape"));
        let many: Vec<serde_json::Value> = (0..=MAX_POLYGON_POSITIONS)
            .map(|i| json!([-118.0 - (i % 2) as f64, 34.0]))
            .collect();
        let v = json!({"type": "Polygon", "coordinates": [many]});
        assert!(polygon_error(v).contains("positions; at most 2000"));
        let parts: Vec<serde_json::Value> = (0..=MAX_POLYGON_PARTS)
            .map(|i| json!([ring(30.0 + i as f64, -118.0, 30.5 + i as f64, -117.5)]))
            .collect();
        let v = json!({"type": "MultiPolygon", "coordinates": parts});
        assert!(polygon_error(v).contains("polygons; at most 20"));
    }

    #[test]
    fn the_largest_accepted_polygon_is_validated_quickly() {
        // Full-precision coordinates take about 38 bytes a position: 800 of them are close to
        // the byte limit, which binds before the position limit for such polygons.
        let n = 800;
        let circle: Vec<serde_json::Value> = (0..=n)
            .map(|i| {
                let a = std::f64::consts::TAU * (i % n) as f64 / n as f64;
                json!([-118.25 + 0.1 * a.cos(), 34.05 + 0.1 * a.sin()])
            })
            .collect();
        let v = json!({"type": "Polygon", "coordinates": [circle]});
        assert!(v.to_string().len() > MAX_POLYGON_BYTES * 3 / 4);
        let started = std::time::Instant::now();
        let area = Area::Polygon(parse_polygon(&v).unwrap());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(area.contains(&at(DOWNTOWN_LA)));
    }

    #[test]
    fn counties_and_regions_are_the_ones_the_data_uses() {
        assert_eq!(COUNTIES.len(), 58);
        assert_eq!(canonical_county("los angeles county"), Some("Los Angeles"));
        assert_eq!(
            canonical_county(" SAN  LUIS OBISPO "),
            Some("San Luis Obispo")
        );
        assert_eq!(canonical_county("Atlantis"), None);
        assert_eq!(canonical_county(""), None);
        assert_eq!(canonical_region("Region 5f"), Some("5F"));
        assert_eq!(canonical_region("4"), Some("4"));
        assert_eq!(canonical_region("6"), None, "the data writes 6A / 6B");
        assert_eq!(canonical_region("99"), None);
    }

    #[test]
    fn normalizers_give_comparison_forms() {
        assert_eq!(normalize_county("  Los Angeles County "), "los angeles");
        assert_eq!(normalize_county("San Luis Obispo"), "san luis obispo");
        assert_eq!(normalize_region("Region 4"), "4");
        assert_eq!(normalize_region(" 5F "), "5f");
        assert_eq!(normalize_region("REGION  6B"), "6b");
    }
}
