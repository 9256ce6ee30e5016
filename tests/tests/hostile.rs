//! The hostile-input corpus (tests/fixtures/hostile, written by `generate --hostile`): no file
//! crashes the run, every valid row lands, every bad row is quarantined with file, line and
//! reason, and a file with the wrong layout is rejected whole.

mod support;

use serde_json::{Value, json};
use stormwater::sync::manifest::Source;
use support::{file_url, fixture, harness};

struct Case {
    file: &'static str,
    dataset: &'static str,
    /// Status of the file after the run.
    status: &'static str,
    /// Rows stored in the dataset's table.
    stored: i64,
    /// (line, reason prefix) of each quarantined row.
    quarantined: &'static [(i64, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        file: "truncated.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 10,
        quarantined: &[(12, "expected 38 fields, found 10")],
    },
    Case {
        file: "embedded_newline.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 10,
        quarantined: &[],
    },
    Case {
        file: "extra_column.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 10,
        quarantined: &[],
    },
    Case {
        file: "duplicate_keys.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 8,
        quarantined: &[],
    },
    Case {
        file: "junk_wdids.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 8,
        quarantined: &[],
    },
    Case {
        file: "bad_dates.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 8,
        quarantined: &[],
    },
    Case {
        file: "time_24.csv",
        dataset: "smarts_industrial_monitoring",
        status: "succeeded",
        stored: 6,
        quarantined: &[],
    },
    Case {
        file: "fffd.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 6,
        quarantined: &[],
    },
    Case {
        file: "header_only.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 0,
        quarantined: &[],
    },
    Case {
        file: "missing_column.csv",
        dataset: "smarts_industrial_facilities",
        status: "rejected",
        stored: 0,
        quarantined: &[],
    },
    Case {
        file: "wrong_delimiter.csv",
        dataset: "smarts_industrial_facilities",
        status: "rejected",
        stored: 0,
        quarantined: &[],
    },
    Case {
        file: "empty.csv",
        dataset: "smarts_industrial_facilities",
        status: "rejected",
        stored: 0,
        quarantined: &[],
    },
    // The csv parser ends the stray quote at the next quote: that record has one field too few and
    // is quarantined; the records after it parse normally.
    Case {
        file: "unterminated_quote.csv",
        dataset: "smarts_industrial_facilities",
        status: "succeeded",
        stored: 11,
        quarantined: &[(7, "expected 38 fields, found 37")],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_never_crash_a_run_and_account_for_every_row() {
    for case in CASES {
        let h = harness(
            &format!(
                "hostile-{}",
                case.file.trim_end_matches(".csv").replace('_', "-")
            ),
            None,
        )
        .await;
        let source = Source {
            dataset: case.dataset.into(),
            url: file_url(&fixture(&format!("hostile/{}", case.file))),
            scope: None,
        };
        h.sync(vec![source]).await;
        let table = stormwater::import::registry::dataset(case.dataset)
            .unwrap()
            .table;
        let file = h.json("select to_jsonb(f) from sync_file f").await;
        assert_eq!(file["status"], case.status, "{}: {file}", case.file);
        assert_eq!(
            h.scalar_i64(&format!("select count(*) from {table}")).await,
            case.stored,
            "{}",
            case.file
        );
        let quarantined = h
            .json(
                "select coalesce(jsonb_agg(jsonb_build_array(line, reason, source_file like '%/hostile/' || $f$FILE$f$) order by line), '[]')
                   from data_quality_issue where action = 'row_quarantined'"
                    .replace("FILE", case.file)
                    .as_str(),
            )
            .await;
        let want: Vec<Value> = case
            .quarantined
            .iter()
            .map(|(line, reason)| json!([line, reason, true]))
            .collect();
        assert_eq!(quarantined, json!(want), "{}", case.file);
        // Every source record is accounted for: stored or quarantined.
        if case.status == "succeeded" {
            assert_eq!(
                file["rows_read"].as_i64().unwrap(),
                case.stored + case.quarantined.len() as i64,
                "{}",
                case.file
            );
        }
        match case.file {
            "extra_column.csv" => assert_eq!(file["extra_columns"], json!(["EXTRA_NOTES"])),
            "duplicate_keys.csv" => {
                assert_eq!(
                    h.scalar_i64(&format!("select max(row_ord)::bigint from {table}"))
                        .await,
                    2
                );
            }
            "junk_wdids.csv" => {
                let flagged = h.scalar_i64("select count(*) from data_quality_issue where action = 'value_flagged' and column_name = 'wdid'").await;
                assert_eq!(flagged, 3);
                assert_eq!(
                    h.scalar_i64(&format!(
                        "select count(*) from {table} where wdid = '2 XXIN601201'"
                    ))
                    .await,
                    1
                );
            }
            "bad_dates.csv" => {
                let nulled = h
                    .json("select jsonb_agg(value order by line) from data_quality_issue where action = 'value_nulled'")
                    .await;
                assert_eq!(nulled, json!(["0201-05-04", "2019-02-30", "13/45/2010"]));
            }
            "time_24.csv" => {
                assert!(
                    h.scalar_i64(&format!(
                        "select count(*) from {table} where sample_time = '24:00'"
                    ))
                    .await
                        >= 1
                );
                assert!(
                    h.scalar_i64(&format!(
                        "select count(*) from {table} where sample_time = '08:05'"
                    ))
                    .await
                        >= 1
                );
            }
            "fffd.csv" => {
                assert!(
                    h.scalar_i64(&format!(
                        "select count(*) from {table} where facility_name like '%\u{FFFD}%'"
                    ))
                    .await
                        >= 1
                );
            }
            "missing_column.csv" => {
                assert_eq!(
                    file["error"],
                    "smarts_industrial_facilities: header lacks required column(s) FACILITY_NAME"
                );
            }
            "wrong_delimiter.csv" => {
                assert!(
                    file["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("the header has a single field"),
                    "{file}"
                );
            }
            "empty.csv" => assert_eq!(file["error"], "empty file: no header line"),
            _ => {}
        }
        // The run always closes.
        assert_eq!(
            h.scalar_i64("select count(*) from sync_run where finished_at is not null")
                .await,
            1,
            "{}",
            case.file
        );
    }
}
