//! Failure paths of the sync, against the local stack with files the tests build from the real
//! 2019 portal file: no malformed, truncated or unreadable file erases data, what real
//! re-exports do (trailing delimiters, repeated header lines, CRLF, BOMs, NUL, Windows-1252)
//! is tolerated and reported, every run ends in a terminal status, and the violation engine
//! counts only the results it can place in time and sign.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use stormwater::sync::manifest::Source;
use support::{Harness, PORTAL_2019, facilities, file_url, fixture, harness, shared_data};

/// The real 2019 file as lines (it has no multi-line records: 36,339 lines, 36,338 records).
fn real_lines() -> Vec<String> {
    let text = std::fs::read_to_string(shared_data(PORTAL_2019)).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 36_339);
    lines
}

/// Writes `bytes` to a new file in `dir`.
fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
    file_url(&path)
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// Lines 1..=n of every `step`-th record damaged with one extra, non-empty field.
fn damage_every(lines: &[String], step: usize) -> (Vec<String>, Vec<usize>) {
    let mut out = lines.to_vec();
    let mut damaged = Vec::new();
    for (i, line) in out.iter_mut().enumerate().skip(1) {
        if i % step == 0 {
            line.push_str(",EXTRA");
            damaged.push(i);
        }
    }
    (out, damaged)
}

async fn current_rows(h: &Harness) -> i64 {
    h.scalar_i64("select count(*) from smarts_industrial_facility where withdrawn_run_id is null")
        .await
}

async fn file_of(h: &Harness, run_id: i64) -> Value {
    h.json(&format!(
        "select to_jsonb(f) from sync_file f where run_id = {run_id}"
    ))
    .await
}

async fn run_of(h: &Harness, run_id: i64) -> Value {
    h.json(&format!(
        "select to_jsonb(r) from sync_run r where id = {run_id}"
    ))
    .await
}

/// A row digest of the current table, to prove a failed file changed nothing.
async fn table_digest(h: &Harness) -> String {
    sqlx::query_scalar(
        "select md5(string_agg(id::text || ':' || encode(row_hash, 'hex') || ':' ||
                               coalesce(withdrawn_run_id, 0)::text || ':' || changed_run_id::text,
                               ',' order by id))
         from smarts_industrial_facility",
    )
    .fetch_one(h.pool())
    .await
    .unwrap()
}

/// Finding 1 and 2: the real file with a trailing delimiter on every data row (header
/// unchanged) once quarantined all 36,338 rows and withdrew every facility. Now trailing
/// delimiters are tolerated, a mostly unreadable or truncated file fails whole and changes
/// nothing, a partly unreadable one withdraws nothing it cannot prove absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_copy_of_the_real_file_never_erases_it() {
    let h = harness("malformed-real", None).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines();
    let first = h
        .sync(facilities(file_url(&shared_data(PORTAL_2019))))
        .await;
    assert_eq!(file_of(&h, first.run_id).await["status"], "succeeded");
    let all = current_rows(&h).await;
    assert_eq!(all, 36_338);

    // (a) A trailing delimiter on every data row: every row stored, unchanged, nothing withdrawn.
    let trailing: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.clone() } else { format!("{l},") })
        .collect();
    let run = h
        .sync(facilities(write(&dir, "trailing.csv", &joined(&trailing))))
        .await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "succeeded", "{f}");
    assert_eq!(f["rows_quarantined"], 0);
    assert_eq!(f["rows_unchanged"], 36_338);
    assert_eq!(f["rows_withdrawn"], 0);
    assert_eq!(current_rows(&h).await, all);
    let repaired = h
        .json(&format!(
            "select jsonb_agg(jsonb_build_object('line', line, 'reason', reason))
               from data_quality_issue where file_id = {} and action = 'line_repaired'",
            f["id"]
        ))
        .await;
    assert_eq!(repaired.as_array().unwrap().len(), 1, "{repaired}");
    assert_eq!(repaired[0]["line"], 2);
    assert!(
        repaired[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("36338 line(s), the first at line 2, end with empty fields"),
        "{repaired}"
    );

    // (b) Most rows damaged (every other row plus a few): the file fails, nothing changes.
    let before = table_digest(&h).await;
    let (mut most, _) = damage_every(&lines, 2);
    for l in most.iter_mut().skip(1).step_by(7) {
        if !l.ends_with(",EXTRA") {
            l.push_str(",EXTRA");
        }
    }
    let run = h
        .sync(facilities(write(&dir, "most.csv", &joined(&most))))
        .await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "failed", "{f}");
    let error = f["error"].as_str().unwrap();
    assert!(error.contains("QUARANTINE_MAX_SHARE"), "{error}");
    assert!(
        error.contains("(first: line 2: expected 37 fields, found 38)"),
        "{error}"
    );
    assert_eq!(run_of(&h, run.run_id).await["status"], "failed");
    assert_eq!(table_digest(&h).await, before, "a failed file changed rows");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from import_chunk where file_id = {}",
            f["id"]
        ))
        .await,
        0,
        "no chunk of a failed file stays behind"
    );
    // The first unreadable lines are kept, with line and reason, for whoever fixes the file.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from data_quality_issue where file_id = {} and action = 'row_quarantined'",
            f["id"]
        ))
        .await,
        100
    );

    // (c) A truncated download (the first 30% of the bytes, cut mid-line): fails, nothing changes.
    let bytes = std::fs::read(shared_data(PORTAL_2019)).unwrap();
    let cut = &bytes[..bytes.len() * 3 / 10];
    let run = h.sync(facilities(write(&dir, "truncated.csv", cut))).await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "failed", "{f}");
    assert!(
        f["error"].as_str().unwrap().contains("COLLAPSE_MIN_SHARE"),
        "{f}"
    );
    assert_eq!(table_digest(&h).await, before);

    // (d) A download cut short by the server (Content-Length announced, connection closed).
    let url = truncating_server(bytes.clone(), bytes.len() / 2).await;
    let run = h.sync(facilities(url)).await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "failed", "{f}");
    let error = f["error"].as_str().unwrap();
    assert!(
        error.contains("could not be read to its end") || error.contains("truncated download"),
        "{f}"
    );
    assert_eq!(table_digest(&h).await, before);

    // (e) Many rows damaged (1 in 3): imported, but the stored rows are far below the last
    // good file, so nothing is withdrawn and the file says why.
    let (many, many_damaged) = damage_every(&lines, 3);
    let run = h
        .sync(facilities(write(&dir, "many.csv", &joined(&many))))
        .await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "partial", "{f}");
    assert_eq!(f["rows_quarantined"], many_damaged.len());
    assert_eq!(f["rows_withdrawn"], 0);
    assert!(
        f["error"].as_str().unwrap().contains("WITHDRAW_MIN_SHARE"),
        "{f}"
    );
    assert_eq!(current_rows(&h).await, all);

    // (f) A few rows damaged and five really removed: the removed ones are withdrawn unless
    // their APP_ID occurs in a damaged line; no damaged row is withdrawn.
    let (damaged, few_damaged) = damage_every(&lines, 3_000);
    let gone = [101usize, 2_002, 15_003, 27_004, 36_005];
    let removed: Vec<String> = gone.iter().map(|&i| damaged[i].clone()).collect();
    let few: Vec<String> = damaged
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, l)| l)
        .collect();
    let app_id = |line: &str| line.split(',').nth(1).unwrap().trim_matches('"').to_owned();
    let damaged_lines: Vec<&String> = few.iter().filter(|l| l.ends_with(",EXTRA")).collect();
    assert_eq!(damaged_lines.len(), few_damaged.len());
    let expected_withdrawn = removed
        .iter()
        .filter(|r| !damaged_lines.iter().any(|d| d.contains(&app_id(r))))
        .count();
    let run = h
        .sync(facilities(write(&dir, "few.csv", &joined(&few))))
        .await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "succeeded", "{f}");
    assert_eq!(f["rows_quarantined"], few_damaged.len());
    assert_eq!(f["rows_withdrawn"], expected_withdrawn);
    assert!(
        expected_withdrawn >= 3,
        "the test removes rows it can tell apart"
    );
    let damaged_apps: HashSet<String> = damaged_lines.iter().map(|l| app_id(l)).collect();
    let withdrawn_damaged = h
        .scalar_i64(&format!(
            "select count(*) from smarts_industrial_facility
              where withdrawn_run_id is not null and app_id = any(array[{}])",
            damaged_apps
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .await;
    assert_eq!(
        withdrawn_damaged, 0,
        "a damaged row is no evidence of absence"
    );
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .contains("record(s) not withdrawn: their identifier occurs in one of the"),
        "{f}"
    );
    assert_eq!(current_rows(&h).await, all - expected_withdrawn as i64);
}

/// Serves `bytes` once per connection, announcing their full length but sending only `send`
/// of them before closing the connection.
async fn truncating_server(bytes: Vec<u8>, send: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&bytes[..send]).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/Industrial_Application_Specific_Data.csv")
}

/// Finding 2: a header line repeated mid-file (concatenated downloads) was stored as a
/// facility named "FACILITY_NAME". Header lines are skipped and reported, CRLF and BOMs at the
/// start of a line are not data, and a header naming a key column twice is a layout error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_crlf_and_stray_boms_are_not_data() {
    let h = harness("concatenated", Some(70)).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines();
    // Two downloads concatenated, CRLF line ends, the second with its BOM; one data line
    // that carries a BOM of its own.
    let mut text = Vec::new();
    for l in &lines[..=100] {
        text.extend_from_slice(l.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\xEF\xBB\xBF");
    text.extend_from_slice(lines[0].as_bytes());
    text.extend_from_slice(b"\r\n");
    for (i, l) in lines[101..=200].iter().enumerate() {
        if i == 49 {
            text.extend_from_slice(b"\xEF\xBB\xBF");
        }
        text.extend_from_slice(l.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    let run = h
        .sync(facilities(write(&dir, "concatenated.csv", &text)))
        .await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "succeeded", "{f}");
    assert_eq!(f["rows_read"], 200);
    assert_eq!(f["rows_quarantined"], 0);
    assert_eq!(current_rows(&h).await, 200);
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility
              where facility_name = 'FACILITY_NAME' or county = 'COUNTY' or app_id = 'APP_ID'"
        )
        .await,
        0
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility t
              where strpos(t::text, chr(13)) > 0 or strpos(t::text, chr(65279)) > 0"
        )
        .await,
        0,
        "no CR or BOM left in a stored value"
    );
    let issues = h
        .json(&format!(
            "select jsonb_agg(jsonb_build_object('line', line, 'action', action, 'reason', reason) order by line)
               from data_quality_issue where file_id = {} and action in ('line_skipped', 'line_repaired')",
            f["id"]
        ))
        .await;
    assert_eq!(
        issues,
        serde_json::json!([
            {"line": 102, "action": "line_skipped", "reason": "repeated header line skipped"},
            {"line": 152, "action": "line_repaired", "reason": "byte order mark at the start of the line removed"},
        ])
    );

    // The line with the BOM is the real record (its APP_ID, as the source file has it).
    let bom_app = lines[150].split(',').nth(1).unwrap().trim_matches('"');
    assert_eq!(
        h.scalar_i64(&format!(
            "select source_line from smarts_industrial_facility where app_id = '{bom_app}'"
        ))
        .await,
        152
    );
    // A key column named twice: which field identifies the row cannot be told.
    let twice: Vec<String> = lines[..20]
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},APP_ID")
            } else {
                format!("{l},999")
            }
        })
        .collect();
    let run = h
        .sync(facilities(write(&dir, "twice.csv", &joined(&twice))))
        .await;
    assert_eq!(run.files[0].status, "rejected");
    assert_eq!(
        run.files[0].reason.as_deref(),
        Some(
            "smarts_industrial_facilities: header names key column APP_ID more than once (fields 2 and 38)"
        )
    );
    assert_eq!(current_rows(&h).await, 200);
}

/// Finding 3 (bytes): a NUL byte failed the chunk (Postgres refuses it in text) and
/// Windows-1252 bytes became U+FFFD with an issue naming no column. Now both are stored and
/// reported with line, column and value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_windows_1252_bytes_are_stored_and_reported() {
    let h = harness("bytes", None).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = real_lines();
    let name_of = |line: &str| -> String {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        r.records().next().unwrap().unwrap()[9].trim().to_owned()
    };
    // The line with FACILITY_NAME (field 10) replaced by `name`, written back as CSV.
    let with_name = |line: &str, name: &[u8]| -> Vec<u8> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        let record = r.byte_records().next().unwrap().unwrap();
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(
            record
                .iter()
                .enumerate()
                .map(|(i, f)| if i == 9 { name } else { f }),
        )
        .unwrap();
        w.into_inner().unwrap()
    };
    let mut text = Vec::new();
    for (i, l) in lines[..=20].iter().enumerate() {
        match i {
            3 => {
                let name = name_of(l);
                let mut bytes = name.as_bytes()[..2].to_vec();
                bytes.push(0);
                bytes.extend_from_slice(&name.as_bytes()[2..]);
                text.extend_from_slice(&with_name(l, &bytes));
            }
            5 => text.extend_from_slice(&with_name(l, b"Caf\xE9 \x93Test\x94")),
            _ => {
                text.extend_from_slice(l.as_bytes());
                text.push(b'\n');
            }
        }
    }
    let run = h.sync(facilities(write(&dir, "bytes.csv", &text))).await;
    let f = file_of(&h, run.run_id).await;
    assert_eq!(f["status"], "succeeded", "{f}");
    assert_eq!(current_rows(&h).await, 20);
    let stored = |line: i64| {
        let h = &h;
        async move {
            h.json(&format!(
                "select to_jsonb(facility_name) from smarts_industrial_facility where source_line = {line}"
            ))
            .await
        }
    };
    assert_eq!(stored(4).await, Value::String(name_of(&lines[3])));
    assert_eq!(stored(6).await, Value::String("Café “Test”".into()));
    let issues = h
        .json(&format!(
            "select jsonb_agg(jsonb_build_object('line', line, 'column', column_name, 'action', action,
                                                 'reason', reason, 'value', value) order by line)
               from data_quality_issue where file_id = {} and column_name = 'facility_name'",
            f["id"]
        ))
        .await;
    assert_eq!(
        issues,
        serde_json::json!([
            {"line": 4, "column": "facility_name", "action": "value_flagged",
             "reason": "1 NUL byte(s) removed", "value": name_of(&lines[3])},
            {"line": 6, "column": "facility_name", "action": "value_flagged",
             "reason": "not valid UTF-8: decoded as windows-1252", "value": "Café “Test”"},
        ])
    );
}

/// Finding 4: a source that cannot be read left its run `running` for good and stopped the
/// sources after it. Now it fails its own file, the others still run, the run ends `partial`
/// (or `failed` when nothing could be read), and a run past its deadline is closed by the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_sources_fail_their_file_and_every_run_ends() {
    let h = harness("unreadable", None).await;
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.csv", &joined(&real_lines()[..=30]));
    let mut sources = facilities("file:///nonexistent/Industrial.csv".into());
    sources.push(Source {
        dataset: "smarts_inspections".into(),
        url: file_url(dir.path()),
        scope: None,
    });
    sources.extend(facilities(good));
    let run = h.sync(sources).await;
    let statuses: Vec<&str> = run.files.iter().map(|f| f.status.as_str()).collect();
    assert_eq!(&statuses[..2], ["failed", "failed"], "{run:?}");
    assert!(
        run.files[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("cannot open /nonexistent/Industrial.csv"),
        "{run:?}"
    );
    assert!(
        run.files[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("Is a directory"),
        "{run:?}"
    );
    let r = run_of(&h, run.run_id).await;
    assert_eq!(r["status"], "partial", "{r}");
    assert!(!r["finished_at"].is_null());
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("smarts_industrial_facilities failed"),
        "{r}"
    );
    assert_eq!(
        current_rows(&h).await,
        30,
        "the good source after them landed"
    );

    let only_bad = h
        .sync(facilities("file:///nonexistent/again.csv".into()))
        .await;
    let r = run_of(&h, only_bad.run_id).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(!r["finished_at"].is_null());

    // A run that died mid-import 13 hours ago is closed by the next run, with the reason.
    let stale: i64 = sqlx::query_scalar(
        "insert into sync_run (trigger, status, started_at) values ('test', 'running', now() - interval '13 hours')
         returning id",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    let stale_file: i64 = sqlx::query_scalar(
        "insert into sync_file (run_id, dataset, source_url, status, chunk_count)
         values ($1, 'smarts_industrial_facilities', 'file:///lost.csv', 'importing', 2) returning id",
    )
    .bind(stale)
    .fetch_one(h.pool())
    .await
    .unwrap();
    sqlx::query(
        "insert into import_chunk (file_id, chunk_index, s3_key, first_line, status)
         values ($1, 0, 'chunks/lost-0.csv', 2, 'pending')",
    )
    .bind(stale_file)
    .execute(h.pool())
    .await
    .unwrap();
    let next = h.sync(vec![]).await;
    let r = run_of(&h, stale).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(
        r["error"],
        format!(
            "closed by run {}: not finished within 720 minutes",
            next.run_id
        )
    );
    assert_eq!(file_of(&h, stale).await["status"], "failed");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from import_chunk where file_id = {stale_file} and status = 'failed'"
        ))
        .await,
        1
    );
    assert_eq!(run_of(&h, next.run_id).await["status"], "succeeded");
    assert_eq!(
        h.scalar_i64("select count(*) from sync_run where finished_at is null")
            .await,
        0
    );
}

/// One raw SMARTS industrial monitoring line of the constructed facility 900002.
#[allow(clippy::too_many_arguments)]
/// Writes `rows` (made by [`result_line`]) under the header of the industrial monitoring
/// fixture (the raw SMARTS layout) and syncs them with the fixture's facilities; returns the
/// monitoring file's URL.
async fn sync_case_results(h: &Harness, dir: &tempfile::TempDir, rows: &[String]) -> String {
    let header = std::fs::read_to_string(fixture("violations/industrial_cases.txt"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let text = std::iter::once(header)
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let monitoring = write(dir, "monitoring.txt", text.as_bytes());
    h.sync(vec![
        Source {
            dataset: "smarts_industrial_facilities".into(),
            url: file_url(&fixture("violations/industrial_facilities.txt")),
            scope: None,
        },
        Source {
            dataset: "smarts_industrial_monitoring".into(),
            url: monitoring.clone(),
            scope: None,
        },
    ])
    .await;
    monitoring
}

fn result_line(
    year: &str,
    sample: &str,
    date: &str,
    parameter: &str,
    result: &str,
    units: &str,
) -> String {
    format!(
        "Industrial\t4 19I900002\t900002\t{year}\tR9000020{sample}\tQualifying Storm Event\tOutfall 1\tEffluent\t\t\t\t{sample}\t{date}\t10:00\t{date}\t08:00\t{parameter}\t=\t{result}\t{units}\tEPA 200.8\t\t\t{date}\t12:00\tTest Certifier\t"
    )
}

/// Finding 3 (engine): three rows whose dates were nulled as invalid produced a critical
/// NAL_ANNUAL event and an ERA Level; a negative result was averaged. Now every result the
/// engine cannot place in time and sign is excluded with a reason, shown with the event and
/// in data_quality_issue (with file, line and column).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_counts_only_rows_it_can_place_in_time_and_sign() {
    let h = harness("engine-exclusions", None).await;
    let dir = tempfile::tempdir().unwrap();
    let soon = (chrono::Utc::now().date_naive() + chrono::Days::new(20))
        .format("%m/%d/%Y")
        .to_string();
    let soon_year = {
        let d = chrono::Utc::now().date_naive() + chrono::Days::new(20);
        use chrono::Datelike;
        d.year() - i32::from(d.month() < 7)
    };
    let rows = [
        // line 2: the one good zinc result of 2023-24 (NAL 0.26 mg/L).
        result_line("2023", "S01", "11/10/2023", "Zinc, Total", "0.5", "mg/L"),
        // lines 3-5: impossible dates (nulled at import); reporting year 2023.
        result_line("2023", "S02", "02/30/2024", "Zinc, Total", "9.0", "mg/L"),
        result_line("2023", "S03", "0201-05-04", "Zinc, Total", "9.0", "mg/L"),
        result_line("2023", "S04", "13/45/2023", "Zinc, Total", "9.0", "mg/L"),
        // line 6: a negative concentration.
        result_line("2023", "S05", "12/01/2023", "Zinc, Total", "-3", "mg/L"),
        // line 7: a reporting year that contradicts its date.
        result_line("2021", "S06", "12/05/2023", "Zinc, Total", "9.0", "mg/L"),
        // line 8: a detected result without a value (NaN).
        result_line("2023", "S07", "12/07/2023", "Zinc, Total", "NaN", "mg/L"),
        // line 9: a date in the future.
        result_line(
            &soon_year.to_string(),
            "S08",
            &soon,
            "Zinc, Total",
            "9.0",
            "mg/L",
        ),
        // lines 10-11: pH 15 and -1 (impossible), which would be two instantaneous exceedances.
        result_line("2023", "S09", "12/08/2023", "pH", "15", "SU"),
        result_line("2023", "S10", "12/09/2023", "pH", "-1", "SU"),
        // lines 12-13: two TSS results above 400 mg/L before the IGP took effect (2015-07-01).
        result_line(
            "2014",
            "S11",
            "12/01/2014",
            "Total Suspended Solids (TSS)",
            "900",
            "mg/L",
        ),
        result_line(
            "2014",
            "S12",
            "01/01/2015",
            "Total Suspended Solids (TSS)",
            "950",
            "mg/L",
        ),
    ];
    let monitoring = sync_case_results(&h, &dir, &rows).await;
    let facility = h
        .scalar_i64(
            "select facility_id from facility_link
              where source = 'smarts_industrial' and source_key = '900002|4 19I900002'",
        )
        .await;
    let events = h
        .json(&format!(
            "select coalesce(jsonb_agg(jsonb_build_object('id', id, 'key', pollutant_key || '/' || reporting_year || '/' || benchmark_type,
                                                 'value', value, 'samples', sample_count) order by id), '[]')
               from violation_event where facility_id = {facility} and retracted_at is null
                and benchmark_type like 'NAL%'"
        ))
        .await;
    let events = events.as_array().unwrap();
    assert_eq!(
        events.len(),
        1,
        "only the good zinc result counts against a NAL: {events:?}"
    );
    assert_eq!(events[0]["key"], "zinc/2023/NAL_ANNUAL");
    assert_eq!(
        events[0]["value"]
            .as_f64()
            .unwrap_or_else(|| events[0]["value"].as_str().unwrap().parse().unwrap()),
        0.5
    );
    assert_eq!(events[0]["samples"], 1);
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from nal_level where facility_id = {facility} and pollutant_key <> 'zinc'"
        ))
        .await,
        0,
        "no Level from results that do not count"
    );

    // The event shows what was left out of its year, and why.
    let id = events[0]["id"].as_i64().unwrap();
    let (status, body, _) = h
        .get("api-violation", &format!("/api/violations/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let exclusions: Vec<(Value, String)> = body["data"]["exclusions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["rawValue"].clone(),
                x["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reasons: Vec<&str> = exclusions.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "no valid sample date")
            .count(),
        3,
        "{exclusions:?}"
    );
    for reason in [
        "negative result",
        "reporting year contradicts the sample date",
        "missing result",
    ] {
        assert!(reasons.contains(&reason), "{reason}: {exclusions:?}");
    }
    assert_eq!(exclusions.len(), 6, "{exclusions:?}");

    // Each exclusion is a data-quality issue with its file, line and column, reported once.
    let issues = || {
        let h = &h;
        async move {
            h.json(
                "select jsonb_agg(jsonb_build_array(line, column_name, reason) order by line, reason)
                   from data_quality_issue where action = 'value_excluded' and not resolved",
            )
            .await
        }
    };
    let expected = serde_json::json!([
        [3, "sample_date", "no valid sample date"],
        [4, "sample_date", "no valid sample date"],
        [5, "sample_date", "no valid sample date"],
        [6, "result", "negative result"],
        [
            7,
            "reporting_year",
            "reporting year contradicts the sample date"
        ],
        [8, "result", "missing result"],
        [9, "sample_date", "sample date in the future"],
        [10, "result", "impossible pH value"],
        [11, "result", "impossible pH value"],
        [
            12,
            "sample_date",
            "no benchmark in effect on the sample date"
        ],
        [
            13,
            "sample_date",
            "no benchmark in effect on the sample date"
        ],
    ]);
    assert_eq!(issues().await, expected);
    let source_files = h
        .json(
            "select jsonb_agg(distinct source_file) from data_quality_issue where action = 'value_excluded'",
        )
        .await;
    assert_eq!(source_files, serde_json::json!([monitoring]));
    // A full recomputation reports nothing twice.
    let mut opts = stormwater::violations::engine::Options::new("test", h.ctx.cfg.nd_policy);
    opts.force_full = true;
    stormwater::violations::engine::compute(h.pool(), &opts)
        .await
        .unwrap();
    assert_eq!(issues().await, expected);
}

/// A pollutant the classifier knows but no benchmark names (nitrite: only nitrate and
/// nitrate + nitrite have NALs) has no row in `pollutant`. An excluded result of it is still a
/// data-quality issue, but it has no event to be shown with; storing it as an exclusion broke
/// the whole engine run (foreign key), so no event of the sync was computed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excluded_result_of_a_pollutant_without_benchmarks_leaves_the_engine_running() {
    let h = harness("engine-unbenchmarked", None).await;
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        // line 2: a zinc result above its annual NAL (0.26 mg/L).
        result_line("2023", "S01", "11/10/2023", "Zinc, Total", "0.5", "mg/L"),
        // line 3: a negative nitrite result.
        result_line("2023", "S02", "11/12/2023", "Nitrite", "-1", "mg/L"),
    ];
    assert_eq!(
        h.scalar_i64("select count(*) from pollutant where key = 'nitrite'")
            .await,
        0,
        "the case needs a pollutant without benchmarks"
    );
    sync_case_results(&h, &dir, &rows).await;
    let runs = h
        .json("select jsonb_agg(jsonb_build_array(status, error) order by id) from violation_engine_run")
        .await;
    assert_eq!(runs, serde_json::json!([["succeeded", null]]), "{runs}");
    assert_eq!(
        h.scalar_i64(
            "select count(*) from violation_event
              where pollutant_key = 'zinc' and benchmark_type = 'NAL_ANNUAL' and retracted_at is null"
        )
        .await,
        1
    );
    let issues = h
        .json(
            "select jsonb_agg(jsonb_build_array(line, column_name, reason) order by line)
               from data_quality_issue where action = 'value_excluded'",
        )
        .await;
    assert_eq!(
        issues,
        serde_json::json!([[3, "result", "negative result"]])
    );
}
