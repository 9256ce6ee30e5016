//! Every dataset through the pipeline at once, on generated files in the exact official
//! layouts (bench/`generate`, seeded): exact counts, derived links and eSMR dimensions checked
//! against independent counts from the files, and a forced re-import that changes nothing.

mod support;

use std::collections::{HashMap, HashSet};
use stormwater::sync::manifest::Source;
use stormwater::sync::stage::StageRequest;
use support::harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dataset_lands_with_exact_counts_links_and_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 7, "0.002");
    assert_eq!(manifest.files.len(), 8);
    let h = harness("alldatasets", Some(2_000)).await;
    let sources: Vec<Source> = manifest.sources(dir.path());
    let summary = h.sync(sources.clone()).await;

    // Every file succeeded and every record is stored or quarantined.
    for (f, outcome) in manifest.files.iter().zip(&summary.files) {
        let table = stormwater::import::registry::dataset(&f.dataset)
            .unwrap()
            .table;
        let file = h
            .json(&format!(
                "select to_jsonb(f) from sync_file f where id = {}",
                outcome.file_id
            ))
            .await;
        assert_eq!(file["status"], "succeeded", "{}: {file}", f.dataset);
        assert_eq!(file["rows_read"], f.rows, "{}", f.dataset);
        let stored = h.scalar_i64(&format!("select count(*) from {table}")).await;
        assert_eq!(
            stored + file["rows_quarantined"].as_i64().unwrap(),
            f.rows,
            "{}",
            f.dataset
        );
        assert_eq!(
            file["rows_quarantined"], 0,
            "{}: generated rows all have their keys",
            f.dataset
        );
    }
    let run = h.json("select to_jsonb(r) from sync_run r").await;
    assert_eq!(run["status"], "succeeded");

    // inspection ↔ violation: exactly the violations whose source is an existing inspection.
    let path = |name: &str| manifest.path(dir.path(), name);
    let inspections: HashSet<String> =
        support::column_values(&path("smarts_inspections"), &["INSPECTION_ID"])
            .into_iter()
            .map(|v| v[0].clone())
            .collect();
    let expected: HashSet<(String, String)> = support::column_values(
        &path("smarts_violations"),
        &["VIOLATION_SOURCE", "VIOLATION_SOURCE_ID", "VIOLATION_ID"],
    )
    .into_iter()
    .filter(|v| v[0] == "Inspection" && inspections.contains(&v[1]))
    .map(|v| (v[1].clone(), v[2].clone()))
    .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_inspection_violation")
            .await,
        expected.len() as i64
    );
    let links = h.json("select notes::jsonb from sync_run").await;
    assert_eq!(
        links["links"]["inspection_violation"],
        expected.len() as i64
    );
    assert!(h.scalar_i64("select count(*) from smarts_enforcement_violation where method = 'heuristic' and confidence between 0.05 and 0.9 and reason like 'same WDID/APP_ID%'").await > 0);

    // eSMR dimensions and parameter ids.
    let esmr = support::column_values(
        &path("esmr"),
        &["facility_place_id", "parameter", "location_place_id"],
    );
    let count = |i: usize| {
        esmr.iter()
            .map(|v| v[i].clone())
            .filter(|v| v != "NA")
            .collect::<HashSet<_>>()
            .len() as i64
    };
    assert_eq!(
        h.scalar_i64("select count(*) from esmr_facility").await,
        count(0)
    );
    assert_eq!(
        h.scalar_i64("select count(*) from esmr_parameter").await,
        count(1)
    );
    assert_eq!(
        h.scalar_i64("select count(*) from esmr_location").await,
        count(2)
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from esmr_sample where parameter is not null and parameter_id is null"
        )
        .await,
        0
    );
    let per_region: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select region_code, count(*) from esmr_facility group by 1",
    )
    .fetch_all(h.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(
        per_region.keys().all(|k| !k.is_empty() && k.len() <= 3),
        "{per_region:?}"
    );

    // A forced re-import of the same files rewrites nothing: same counts, same checksums.
    let checksum = "select md5(string_agg(encode(row_hash, 'hex') || row_key || ':' || row_ord, ',' order by row_key, row_ord)) from TABLE";
    let mut before = Vec::new();
    for f in &manifest.files {
        let table = stormwater::import::registry::dataset(&f.dataset)
            .unwrap()
            .table;
        before.push(
            h.json(&format!(
                "select to_jsonb(x) from ({}) x(v)",
                checksum.replace("TABLE", table)
            ))
            .await,
        );
    }
    let again = h
        .stage_request(StageRequest {
            trigger: "test".into(),
            sources: Some(sources),
            force: true,
        })
        .await;
    h.drain().await;
    let totals = h
        .json(&format!(
            "select jsonb_build_object('inserted', sum(rows_inserted), 'updated', sum(rows_updated), 'withdrawn', sum(rows_withdrawn), 'unchanged', sum(rows_unchanged))
               from sync_file where run_id = {}",
            again.run_id
        ))
        .await;
    let total_rows: i64 = manifest.files.iter().map(|f| f.rows).sum();
    assert_eq!(
        totals,
        serde_json::json!({"inserted": 0, "updated": 0, "withdrawn": 0, "unchanged": total_rows})
    );
    for (f, b) in manifest.files.iter().zip(before) {
        let table = stormwater::import::registry::dataset(&f.dataset)
            .unwrap()
            .table;
        let after = h
            .json(&format!(
                "select to_jsonb(x) from ({}) x(v)",
                checksum.replace("TABLE", table)
            ))
            .await;
        assert_eq!(after, b, "{}", f.dataset);
    }
}
