//! End-to-end: sync-stage → S3 → SQS → sync-import → sync-finalize → API, on the local stack
//! (real Postgres, Redis and the S3/SQS emulator), with the real published files.

mod support;

use serde_json::json;
use stormwater::sync::manifest::Source;
use support::{PORTAL_2019, facilities, file_url, fixture, harness, shared_data};

const RAW_2025_R1: &str =
    "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Application_Specific_Data.txt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_2019_portal_file_lands_every_row_and_the_api_serves_it() {
    // Arrange: 8,000-row chunks, so the 36,338 records travel as 5 chunks.
    let h = harness("portal2019", Some(8_000)).await;

    // Act
    let summary = h
        .sync(facilities(file_url(&shared_data(PORTAL_2019))))
        .await;

    // Assert: the file, the run and the chunks.
    assert_eq!(summary.files.len(), 1);
    assert_eq!(summary.files[0].rows, 36_338);
    assert_eq!(summary.files[0].chunks, 5);
    let file = h.json("select to_jsonb(f) from sync_file f").await;
    assert_eq!(file["status"], "succeeded");
    assert_eq!(file["rows_read"], 36_338);
    assert_eq!(file["rows_inserted"], 36_338);
    assert_eq!(file["rows_quarantined"], 0);
    assert_eq!(file["rows_withdrawn"], 0);
    assert_eq!(
        h.scalar_i64("select count(*) from import_chunk where status = 'done'")
            .await,
        5
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from sync_run where status = 'succeeded' and finished_at is not null"
        )
        .await,
        1
    );
    // The run is published (linked, summarised, a new cache generation) after it is finalized,
    // and only then are its facilities in the directory: `./dev up` waits for `published_at`.
    assert_eq!(
        h.scalar_i64(
            "select count(*) from sync_run where published_at >= finished_at
                and published_at >= (select max(computed_at) from facility_summary)"
        )
        .await,
        1
    );

    // Every record is stored: duplicates of (APP_ID, WDID) are kept as separate rows.
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        36_338
    );
    assert_eq!(
        h.scalar_i64("select count(distinct wdid) from smarts_industrial_facility")
            .await,
        36_321
    );
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility where wdid is null")
            .await,
        10
    );
    assert_eq!(
        h.scalar_i64("select count(*) from (select 1 from smarts_industrial_facility group by app_id, wdid having count(*) > 1) d").await,
        6
    );
    assert_eq!(
        h.scalar_i64("select max(row_ord)::bigint from smarts_industrial_facility")
            .await,
        1
    );
    // Source lines are traceable: APP_ID 178202 is on line 3 of the file.
    assert_eq!(
        h.scalar_i64("select source_line from smarts_industrial_facility where app_id = '178202'")
            .await,
        3
    );

    // Typed values: dates from M/D/Y, Oracle timestamps, flags, exact decimals.
    let row = h
        .json("select to_jsonb(f) from smarts_industrial_facility f where app_id = '178202'")
        .await;
    assert_eq!(row["noi_processed_date"], "1992-03-27");
    assert_eq!(row["certification_date"], "2012-06-13T09:24:22.06");
    assert_eq!(row["facility_latitude"], 41.795542);
    assert_eq!(row["indirectly"], false);
    assert_eq!(row["facility_total_size"], 160);
    assert_eq!(row["question_tmdl_answer"], serde_json::Value::Null);

    // Nothing quarantined; the questionable values are reported with their line.
    let issues = h
        .json(
            "select jsonb_object_agg(k, n) from (select action || ':' || column_name as k, count(*) n
               from data_quality_issue group by 1) x",
        )
        .await;
    assert_eq!(
        issues,
        json!({"value_flagged:wdid": 35, "value_nulled:not_effective_date": 4, "value_nulled:noi_processed_date": 1})
    );
    let junk_year = h
        .json("select to_jsonb(d) from data_quality_issue d where value = '11/07/0201'")
        .await;
    assert_eq!(junk_year["column_name"], "not_effective_date");
    assert!(junk_year["line"].as_i64().unwrap() > 1);
    assert!(
        junk_year["source_file"]
            .as_str()
            .unwrap()
            .ends_with("Industrial_Application_Specific_Data_2019-03-12.csv")
    );

    // The directory answers from the imported file: every (APP_ID, WDID) key of the file
    // belongs to exactly one canonical facility, walking every page once.
    let file_keys: std::collections::HashSet<(String, String)> =
        support::column_values(&shared_data(PORTAL_2019), &["APP_ID", "WDID", "COUNTY"])
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    assert_eq!(file_keys.len(), 36_332);
    let mut owner = std::collections::HashMap::new();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/facilities?limit=1000&cursor={c}"),
            None => "/api/facilities?limit=1000".into(),
        };
        let (status, body, _) = h.get("api-facilities", &q).await;
        assert_eq!(status, 200, "{body}");
        for item in body["data"].as_array().unwrap() {
            for r in item["records"]["smartsIndustrial"].as_array().unwrap() {
                let k = (
                    r["appId"].as_str().unwrap().to_owned(),
                    r["wdid"].as_str().unwrap_or("NA").to_owned(),
                );
                // Duplicate rows of one key (six in this file) are records of one facility.
                if let Some(other) = owner.insert(k, item["id"].clone()) {
                    assert_eq!(other, item["id"], "a key in two facilities");
                }
            }
            assert_eq!(item["sources"]["smartsIndustrial"], true);
            assert_eq!(item["sources"]["esmr"], false);
            items.push(item.clone());
        }
        match body["page"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        owner
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        file_keys
    );
    let ids: std::collections::HashSet<_> = items.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(ids.len(), items.len(), "a facility served twice");

    // A county is the directory's facilities of that county, counted exactly.
    let del_norte = items.iter().filter(|i| i["county"] == "Del Norte").count() as i64;
    assert!(del_norte > 0);
    let (status, body, cache) = h
        .get(
            "api-facilities",
            "/api/facilities?county=Del%20Norte&limit=3&sort=id",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["page"]["total"], del_norte);
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    // The file's first Del Norte record (line 3) built the lowest facility id there.
    assert_eq!(body["data"][0]["name"], "Crescent City Landfill");
    assert_eq!(
        body["data"][0]["records"]["smartsIndustrial"][0]["appId"],
        "178202"
    );
    assert_eq!(body["data"][0]["permitIds"]["wdids"][0], "1 08I001442");
    assert_eq!(
        body["meta"]["freshness"]["smarts_industrial_facilities"]["sourceExtractDate"],
        "2019-03-12"
    );
    assert_eq!(cache.as_deref(), Some("miss"));
    let (_, again, cache) = h
        .get(
            "api-facilities",
            "/api/facilities?county=Del%20Norte&limit=3&sort=id",
        )
        .await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(again, body);

    // Name and status filters: the walked facilities that satisfy them.
    let (_, body, _) = h
        .get(
            "api-facilities",
            "/api/facilities?q=landfill&status=Active&limit=1000",
        )
        .await;
    let expect = items
        .iter()
        .filter(|i| {
            i["name"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("landfill")
                && i["statuses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "Active")
        })
        .count() as i64;
    assert!(expect > 50, "{expect}");
    assert_eq!(body["page"]["total"], expect);
    assert_eq!(body["data"].as_array().unwrap().len() as i64, expect);

    // Re-syncing the same file changes nothing: it is recognised and skipped.
    let second = h
        .sync(facilities(file_url(&shared_data(PORTAL_2019))))
        .await;
    assert_eq!(second.files[0].status, "skipped");
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        36_338
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility where changed_run_id <> first_run_id"
        )
        .await,
        0
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from sync_run where id = {} and status = 'succeeded'",
            second.run_id
        ))
        .await,
        1
    );
    // A finished sync starts a new cache generation: the cached page is not served again.
    let (_, _, cache) = h
        .get(
            "api-facilities",
            "/api/facilities?county=Del%20Norte&limit=3&sort=id",
        )
        .await;
    assert_eq!(cache.as_deref(), Some("miss"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_2025_tsv_layout_is_matched_by_header_name() {
    let h = harness("raw2025", None).await;
    let summary = h
        .sync(facilities(file_url(&shared_data(RAW_2025_R1))))
        .await;
    assert_eq!(summary.files[0].rows, 102);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        102
    );
    assert_eq!(
        h.scalar_i64("select count(*) from data_quality_issue where action = 'row_quarantined'")
            .await,
        0
    );
    let row = h
        .json("select to_jsonb(f) from smarts_industrial_facility f where app_id = '178203'")
        .await;
    assert_eq!(row["wdid"], "1 08I004046");
    assert_eq!(row["region_board"], "1");
    assert_eq!(row["certification_date"], "2015-02-06T15:58:01.815");
    assert_eq!(row["facility_name"], "Hambro Forest Products");
    // The raw file writes a single space for "no value": it is NULL, not " ".
    assert_eq!(row["question_tmdl_answer"], serde_json::Value::Null);
    assert_eq!(row["facility_area_activity"], 47.4);
    // The trailing space of "Crescent City Landfill " is trimmed.
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility where facility_name = 'Crescent City Landfill'").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_quarantined_with_line_and_reason_and_good_rows_land() {
    let h = harness("badrows", None).await;
    let summary = h
        .sync(facilities(file_url(&fixture("industrial_bad_rows.csv"))))
        .await;
    assert_eq!(summary.files[0].rows, 9);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        7
    );
    let quarantined = h
        .json(
            "select jsonb_agg(jsonb_build_object('line', line, 'reason', reason) order by line)
               from data_quality_issue where action = 'row_quarantined'",
        )
        .await;
    assert_eq!(
        quarantined,
        json!([
            {"line": 6, "reason": "expected 37 fields, found 20"},
            {"line": 7, "reason": "APP_ID is missing: the row cannot be identified"},
        ])
    );
    let q = h
        .json("select to_jsonb(d) from data_quality_issue d where line = 7")
        .await;
    assert!(
        q["source_file"]
            .as_str()
            .unwrap()
            .ends_with("industrial_bad_rows.csv")
    );
    assert!(
        q["raw"]
            .as_str()
            .unwrap()
            .starts_with("Industrial,NA,1 08I017635,Terminated")
    );
    // Line 8: two bad values are nulled and reported; the row itself is stored.
    let nulled = h
        .json(
            "select jsonb_agg(column_name order by column_name) from data_quality_issue
              where line = 8 and action = 'value_nulled'",
        )
        .await;
    assert_eq!(nulled, json!(["facility_latitude", "noi_processed_date"]));
    let line8 = h
        .json("select to_jsonb(f) from smarts_industrial_facility f where app_id = '178207'")
        .await;
    assert_eq!(line8["noi_processed_date"], serde_json::Value::Null);
    assert_eq!(line8["not_effective_date"], "2006-08-29");
    // Lines 9–10: one record with a quoted newline; the next record starts on line 11.
    let acme = h
        .json("select to_jsonb(f) from smarts_industrial_facility f where app_id = '178208'")
        .await;
    assert_eq!(acme["facility_name"], "Acme Yard\nBuilding \"B\"");
    assert_eq!(acme["source_line"], 9);
    let flagged = h
        .json("select to_jsonb(d) from data_quality_issue d where action = 'value_flagged' and line = 11")
        .await;
    assert_eq!(flagged["reason"], "nonstandard WDID \"2 XXIN601201\"");
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility where facility_name = 'Caf\u{FFFD} Depot'").await,
        1
    );
    let file = h.json("select to_jsonb(f) from sync_file f").await;
    assert_eq!(file["rows_quarantined"], 2);
    assert_eq!(file["rows_inserted"], 7);
    assert_eq!(file["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_layout_is_rejected_naming_missing_columns_and_nothing_is_written() {
    let h = harness("layout", None).await;
    let summary = h
        .sync(facilities(file_url(&fixture("wrong_layout.csv"))))
        .await;
    let f = &summary.files[0];
    assert_eq!(f.status, "rejected");
    let reason = f.reason.as_deref().unwrap();
    assert!(reason.starts_with("smarts_industrial_facilities: header lacks required column(s) STATUS, NOI_PROCESSED_DATE"), "{reason}");
    assert!(reason.contains("FACILITY_NAME"), "{reason}");
    assert!(
        !reason.contains("APP_ID") && !reason.contains("QUESTION_TMDL_ANSWER"),
        "{reason}"
    );
    assert_eq!(h.scalar_i64("select count(*) from import_chunk").await, 0);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        0
    );
    assert_eq!(
        stormwater::sync::runner::backlog(&h.ctx.sqs, &h.res.import_queue_url)
            .await
            .unwrap(),
        0
    );
    let file = h.json("select to_jsonb(f) from sync_file f").await;
    assert_eq!(file["status"], "rejected");
    assert_eq!(file["error"], reason);
    // The run still closes: as failed, since its only file was rejected (a run with other
    // good files ends partial, see failure_paths.rs).
    assert_eq!(
        h.scalar_i64(
            "select count(*) from sync_run where status = 'failed' and finished_at is not null"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_header_only_files_neither_crash_nor_erase_data() {
    let h = harness("empty", None).await;
    h.sync(facilities(file_url(&fixture("industrial_bad_rows.csv"))))
        .await;
    let empty = h.sync(facilities(file_url(&fixture("empty.csv")))).await;
    assert_eq!(empty.files[0].status, "rejected");
    assert_eq!(
        empty.files[0].reason.as_deref(),
        Some("empty file: no header line")
    );
    let header_only = h
        .sync(facilities(file_url(&fixture("header_only.csv"))))
        .await;
    assert_eq!(header_only.files[0].rows, 0);
    // A file with no rows cannot withdraw the 7 rows we have: it would store far fewer than
    // the last good one, so it fails whole and changes nothing.
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility where withdrawn_run_id is null"
        )
        .await,
        7
    );
    let f = h
        .json(&format!(
            "select to_jsonb(f) from sync_file f where run_id = {}",
            header_only.run_id
        ))
        .await;
    assert_eq!(f["status"], "failed");
    assert!(
        f["error"].as_str().unwrap().contains(
            "the file would store 0 records, less than 50% of the 7 of the last good file"
        ),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_region_1_industrial_monitoring_keeps_non_detects_and_exact_decimals() {
    let h = harness("monitoring", None).await;
    let summary = h
        .sync(vec![Source {
            dataset: "smarts_industrial_monitoring".into(),
            url: file_url(&shared_data(
                "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt",
            )),
            scope: None,
        }])
        .await;
    assert_eq!(summary.files[0].rows, 99);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_monitoring")
            .await,
        99
    );
    assert_eq!(
        h.scalar_i64("select count(*) from data_quality_issue where action <> 'value_flagged'")
            .await,
        0
    );
    // 33 non-detects: qualifier ND, no result.
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_monitoring where result_qualifier = 'ND' and result is null").await,
        33
    );
    // `.0057` is stored exactly as published (numeric, not float).
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_monitoring where result::text in ('.0057', '0.0057')").await,
        1
    );
    assert_eq!(h.scalar_i64("select count(*) from smarts_industrial_monitoring where result < 1 and result::text like '0.%'").await, 22);
    let first = h
        .json(
            "select to_jsonb(m) from smarts_industrial_monitoring m
              where report_id = '918881' and sample_id = '2243002' and parameter = 'pH'",
        )
        .await;
    assert_eq!(first["result"], 6.5);
    assert_eq!(first["units"], "SU");
    assert_eq!(first["sample_date"], "2016-12-29");
    assert_eq!(first["sample_time"], "12:00:00");
    assert_eq!(first["discharge_start_time"], "08:00:00");
    assert_eq!(first["reporting_year"], 2016);
    assert_eq!(first["certified_date"], "2017-08-02T08:03:32.748");
    assert_eq!(first["source_line"], 2);
}
