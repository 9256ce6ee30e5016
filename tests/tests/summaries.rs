//! The stored summaries the read API's lists answer from, each compared with the live
//! computation it replaces: the SMARTS lists' stats cubes (`repo::list_stats`) after a sync and
//! after the next week's sync, and the map's per-facility rows (`facility_summary`) after a
//! sync, a review action and a link decision (and every summary those writes refresh against
//! a full rebuild), on generated files synced through the pipeline.

mod support;

use serde_json::{Value, json};
use stormwater::api::smarts::{self, Counting, List};
use stormwater::api::{ApiState, WriteSettings};
use stormwater::cache::Cache;
use stormwater::http::Query;
use support::{Harness, harness};

fn state(h: &Harness) -> ApiState {
    ApiState::new(
        h.pool().clone(),
        Cache::disabled(),
        WriteSettings::default(),
    )
}

/// The most common value of `column` in `table` (current rows), for a filter that selects.
async fn common_value(h: &Harness, table: &str, column: &str) -> String {
    let sql = format!(
        "select {column}::text from {table} where {column} is not null
          group by 1 order by count(*) desc, 1 limit 1"
    );
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_one(h.pool())
        .await
        .unwrap_or_else(|e| panic!("{table}.{column}: {e}"))
}

/// The queries each list is checked with: unfiltered, by area (in other cases than stored), by
/// the list's own categories, and combined.
async fn queries(h: &Harness) -> Vec<(List, String)> {
    let county = common_value(h, "smarts_violation", "place_county").await;
    let region = common_value(h, "smarts_violation", "regional_board").await;
    let vtype = common_value(h, "smarts_violation", "violation_type").await;
    let etype = common_value(h, "smarts_enforcement_action", "enforcement_type").await;
    let estatus = common_value(h, "smarts_enforcement_action", "enforcement_status").await;
    let purpose = common_value(h, "smarts_inspection", "inspection_purpose").await;
    let fstatus = common_value(h, "smarts_facility", "status").await;
    let fcounty = common_value(h, "smarts_facility", "county").await;
    let enc = |s: &str| s.replace(' ', "%20").replace('&', "%26");
    let (county_upper, region_lower) = (enc(&county.to_uppercase()), region.to_lowercase());
    let county = enc(&county);
    vec![
        (List::Violations, String::new()),
        (List::Violations, format!("county={county_upper}")),
        (List::Violations, format!("region={region_lower}")),
        (List::Violations, format!("violationType={}", enc(&vtype))),
        (List::Violations, "status=Violation".into()),
        (List::Violations, "seriousOnly=true".into()),
        (
            List::Violations,
            format!(
                "county={county}&violationType={}&status=Potential",
                enc(&vtype)
            ),
        ),
        (List::Enforcement, String::new()),
        (List::Enforcement, format!("county={county}")),
        (
            List::Enforcement,
            format!("enforcementType={}", enc(&etype)),
        ),
        (
            List::Enforcement,
            format!("status={}", enc(&estatus.to_uppercase())),
        ),
        (
            List::Enforcement,
            format!("region={region_lower}&status=active"),
        ),
        (List::Inspections, String::new()),
        (
            List::Inspections,
            format!("purpose={}", enc(&purpose.to_lowercase())),
        ),
        (List::Inspections, format!("county={county}")),
        (List::Facilities, String::new()),
        (List::Facilities, "kind=industrial".into()),
        (List::Facilities, format!("status={}", enc(&fstatus))),
        (
            List::Facilities,
            format!("county={}&kind=construction", enc(&fcounty)),
        ),
        (List::Facilities, format!("region={region_lower}")),
    ]
}

/// Every query's page, stats and total from the cubes equal the live count's; returns how many
/// rows the unfiltered lists hold.
async fn check_cubes(h: &Harness, when: &str) -> i64 {
    let state = state(h);
    let mut unfiltered = 0;
    for (list, query) in queries(h).await {
        let body = |counting| smarts::body(&state, list, Query::parse(&query), counting);
        let stored = body(Counting::Stored).await.unwrap();
        let live = body(Counting::Live).await.unwrap();
        let what = format!("{when}: {list:?} ?{query}");
        assert_eq!(stored["stats"], live["stats"], "{what}");
        assert_eq!(stored["page"], live["page"], "{what}");
        assert_eq!(stored["data"], live["data"], "{what}");
        if query.is_empty() {
            let total = live["page"]["total"].as_i64().unwrap();
            assert!(total > 0, "{what}: the files have rows");
            unfiltered += total;
        }
    }
    unfiltered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smarts_list_stats_from_the_cubes_equal_the_live_count() {
    let dir = tempfile::tempdir().unwrap();
    let (this_week, next_week) = (dir.path().join("this"), dir.path().join("next"));
    let base = support::generate(&this_week, 21, "0.004");
    let next = support::next_week(&this_week, &next_week, 21);
    let h = harness("summaries-cubes", Some(5_000)).await;
    h.sync(base.sources(&this_week)).await;
    let first = check_cubes(&h, "after the sync").await;

    // The endpoints read the cubes: emptied, the stored path counts nothing, the live one the
    // same as before; a full rebuild writes them back.
    let state = state(&h);
    sqlx::query("delete from smarts_violation_stats")
        .execute(h.pool())
        .await
        .unwrap();
    let emptied = smarts::body(&state, List::Violations, Query::parse(""), Counting::Stored)
        .await
        .unwrap();
    assert_eq!(emptied["page"]["total"], 0);
    assert_eq!(emptied["stats"]["byType"], json!({}));
    let live = smarts::body(&state, List::Violations, Query::parse(""), Counting::Live)
        .await
        .unwrap();
    assert!(live["page"]["total"].as_i64().unwrap() > 0);
    stormwater::repo::summary::refresh(h.pool(), None)
        .await
        .unwrap();
    assert_eq!(check_cubes(&h, "after a rebuild").await, first);

    // A filter the cubes do not keep is counted live.
    let wdid = common_value(&h, "smarts_violation", "wdid").await;
    let by_wdid = |counting| {
        smarts::body(
            &state,
            List::Violations,
            Query::parse(&format!("wdid={}", wdid.replace(' ', "%20"))),
            counting,
        )
    };
    let stored = by_wdid(Counting::Stored).await.unwrap();
    assert_eq!(stored, by_wdid(Counting::Live).await.unwrap());
    let n = h
        .scalar_i64(&format!(
            "select count(*) from smarts_violation where wdid = '{wdid}' and withdrawn_run_id is null"
        ))
        .await;
    assert_eq!(stored["page"]["total"], n);

    // The next week's files change, add and withdraw records: the cubes follow.
    let summary = h.sync(next.sources(&next_week)).await;
    assert!(!summary.files.is_empty());
    let changed = h
        .scalar_i64(
            "select count(*) from smarts_violation
              where changed_run_id = (select max(id) from sync_run)
                 or withdrawn_run_id = (select max(id) from sync_run)",
        )
        .await;
    assert!(changed > 0, "the next week changes violations");
    check_cubes(&h, "after the next week's sync").await;
}

/// The features of the map as the live computation made them before the summaries: from the
/// facility, its open events and its ERA Levels, for every listed facility with a point.
async fn live_features(h: &Harness) -> Value {
    h.json(
        "select coalesce(jsonb_agg(x order by (x->>'id')::bigint), '[]') from (
           select jsonb_build_object('type', 'Feature', 'id', f.id,
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
                      order by array_position(array['low', 'moderate', 'high', 'critical'],
                                              e.severity) desc nulls last
                      limit 1),
                 'nalLevel', coalesce((select max(l.level) from nal_level_current l
                      where l.facility_id = f.id), 'baseline'))) as x
             from facility f
            where f.latitude is not null and f.merged_into is null
              and f.id in (select facility_id from facility_summary)) s",
    )
    .await
}

/// Every feature of the map, page by page.
async fn served_features(h: &Harness, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/facilities.geojson?limit=1000{query}&cursor={c}"),
            None => format!("/api/facilities.geojson?limit=1000{query}"),
        };
        let (status, body, _) = h.get("api-facilities-geojson", &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        out.extend(body["features"].as_array().unwrap().iter().cloned());
        match body["page"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_features_from_the_summaries_equal_the_live_computation() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 22, "0.004");
    let h = harness("summaries-map", Some(5_000)).await;
    h.sync(manifest.sources(dir.path())).await;

    let live = live_features(&h).await;
    let served = Value::Array(served_features(&h, "").await);
    assert!(
        live.as_array().unwrap().len() > 10,
        "facilities with points"
    );
    assert_eq!(served, live, "after the sync");
    let open: Vec<&Value> = live
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["openViolationEvents"].as_i64() > Some(0))
        .collect();
    assert!(!open.is_empty(), "facilities with open events");
    let with = served_features(&h, "&withViolations=true").await;
    assert_eq!(with.len(), open.len());

    // A review action changes one facility's open events and worst severity: its feature
    // follows at once (the summary row is rebuilt by the write, the cache by its generation).
    let facility = open
        .iter()
        .max_by_key(|f| f["properties"]["openViolationEvents"].as_i64())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let worst = h
        .scalar_i64(&format!(
            "select id from violation_event where facility_id = {facility}
               and retracted_at is null and status in ('open', 'under_review')
             order by array_position(array['low', 'moderate', 'high', 'critical'], severity)
                      desc nulls last, id limit 1"
        ))
        .await;
    h.review(worst, "dismissed").await;
    let after = live_features(&h).await;
    assert_ne!(after, live, "the review changed the live computation");
    assert_eq!(
        Value::Array(served_features(&h, "").await),
        after,
        "after the review"
    );
    assert_as_rebuilt(&h, "after the review").await;

    // A link decision moves a record, its samples and its events from one facility to
    // another: both features follow, and every summary the write refreshed is what a full
    // rebuild makes.
    let (from, source, source_key): (i64, String, String) = sqlx::query_as(
        "select f.id, f.origin_source, f.origin_key from facility f
           join facility_summary s on s.facility_id = f.id
          where f.latitude is not null and f.merged_into is null and s.open_events > 0
            and f.id <> $1
          order by s.open_events desc, f.id limit 1",
    )
    .bind(facility)
    .fetch_one(h.pool())
    .await
    .unwrap();
    let body = h
        .as_reviewer(
            "api-facility-links",
            "POST",
            &format!("/api/facilities/{facility}/links"),
            json!({ "action": "link", "source": source, "sourceKey": source_key }),
        )
        .await;
    assert_eq!(body["data"]["previouslyLinkedTo"], from, "{body}");
    assert_eq!(body["data"]["linkedTo"], facility, "{body}");
    let linked = live_features(&h).await;
    assert_ne!(linked, after, "the link changed the live computation");
    assert_eq!(
        Value::Array(served_features(&h, "").await),
        linked,
        "after the link decision"
    );
    assert_as_rebuilt(&h, "after the link decision").await;
}

/// What the writes refresh in place: every facility's summary row, the directory's area counts
/// and `dashboard_snapshot` (the dashboards and `/api/violations/stats` per scope), without
/// their computation times.
async fn stored_views(h: &Harness) -> Value {
    h.json(
        "select jsonb_build_object(
           'summaries', (select jsonb_agg(to_jsonb(s) - 'computed_at' order by s.facility_id)
                           from facility_summary s),
           'areas', (select jsonb_object_agg(a.area, a.facilities) from facility_area_count a),
           'dashboards', (select jsonb_object_agg(d.scope, d.body) from dashboard_snapshot d))",
    )
    .await
}

/// The stored views as the writes left them equal what a full rebuild of every facility and
/// scope makes from the same rows.
async fn assert_as_rebuilt(h: &Harness, when: &str) {
    let refreshed = stored_views(h).await;
    stormwater::repo::summary::refresh(h.pool(), None)
        .await
        .unwrap();
    stormwater::api::dashboard::refresh_snapshots(h.pool(), None)
        .await
        .unwrap();
    let rebuilt = stored_views(h).await;
    assert!(
        rebuilt["summaries"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    for part in ["summaries", "areas", "dashboards"] {
        assert_eq!(refreshed[part], rebuilt[part], "{when}: {part}");
    }
}
