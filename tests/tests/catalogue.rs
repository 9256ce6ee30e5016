//! The default manifest reads the eSMR years from the publisher's catalogue: a local server
//! answers CKAN's `package_show` and `resource_show` in their documented shape (the
//! `{"help", "success", "result"}` envelope, resource dictionaries with `id`, `url`, `format`,
//! `last_modified`, `size`, `hash`), and serves the files.
//!
//! Between two scheduled runs the publisher adds a year, replaces another and leaves the rest:
//! the new year is synced without a code change, the replaced one is downloaded and imported,
//! and an unchanged year costs neither a download nor an import.

mod support;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use stormwater::sync::manifest::{self, ESMR_PACKAGE};
use stormwater::sync::stage::{StageRequest, StageSummary};
use support::{Harness, harness};

/// One yearly eSMR CSV in the catalogue.
#[derive(Clone)]
struct Year {
    id: String,
    body: Vec<u8>,
    last_modified: String,
}

#[derive(Clone, Default)]
struct Catalogue {
    base: String,
    years: Arc<Mutex<BTreeMap<u16, Year>>>,
    /// Downloads per file name.
    downloads: Arc<Mutex<HashMap<String, u32>>>,
    /// `package_show` calls.
    listed: Arc<Mutex<u32>>,
    /// `package_show` answers a portal's maintenance page instead.
    broken: Arc<Mutex<bool>>,
}

impl Catalogue {
    fn file(year: u16) -> String {
        format!("esmr-analytical-export_year-{year}_2026-12-01.csv")
    }

    /// A resource dictionary as CKAN writes it.
    fn resource(&self, year: u16, y: &Year) -> Value {
        json!({
            "id": y.id,
            "package_id": ESMR_PACKAGE,
            "name": format!("{year} eSMR Analytical Data"),
            "description": "",
            "format": "CSV",
            "mimetype": "text/csv",
            "url": format!("{}/dataset/esmr/resource/{}/download/{}", self.base, y.id, Self::file(year)),
            "url_type": "upload",
            "last_modified": y.last_modified,
            "metadata_modified": "2026-12-01T08:00:00.000000",
            "created": "2020-01-01T00:00:00.000000",
            "size": y.body.len(),
            "hash": "",
            "state": "active",
            "position": 0,
        })
    }

    fn add(&self, year: u16, rows: usize, last_modified: &str) {
        self.years.lock().unwrap().insert(
            year,
            Year {
                id: format!("00000000-0000-4000-8000-00000000{year}"),
                body: esmr_year(year, rows),
                last_modified: last_modified.into(),
            },
        );
    }

    fn downloads(&self, year: u16) -> u32 {
        self.downloads
            .lock()
            .unwrap()
            .get(&Self::file(year))
            .copied()
            .unwrap_or(0)
    }
}

async fn package_show(
    State(c): State<Catalogue>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    *c.listed.lock().unwrap() += 1;
    if *c.broken.lock().unwrap() {
        return axum::Json(json!("<html>maintenance</html>"));
    }
    if q.get("id").map(String::as_str) != Some(ESMR_PACKAGE) {
        return axum::Json(not_found());
    }
    let mut resources: Vec<Value> = c
        .years
        .lock()
        .unwrap()
        .iter()
        .map(|(year, y)| c.resource(*year, y))
        .collect();
    // What the publisher lists beside the yearly CSVs: none of them is a year to sync.
    resources.push(json!({
        "id": "5ebbd97a-ffa9-4b75-8904-80e71a5e92c3", "format": "ZIP", "name": "eSMR Analytical Data, all years",
        "url": format!("{}/download/esmr-analytical-export_years-2006-2026_2026-12-01.zip", c.base),
        "last_modified": "2026-12-01T08:00:00", "size": 409_000_000, "hash": ""
    }));
    resources.push(json!({
        "id": "675b79d9-a2ec-4685-980e-8b5881ea2251", "format": "PDF", "name": "eSMR Data Dictionary",
        "url": format!("{}/download/esmr_data_dictionary.pdf", c.base),
        "last_modified": null, "size": null, "hash": ""
    }));
    axum::Json(json!({
        "help": format!("{}/api/3/action/help_show?name=package_show", c.base),
        "success": true,
        "result": {
            "id": ESMR_PACKAGE,
            "name": "water-quality-effluent-electronic-self-monitoring-report-esmr-data",
            "title": "Water Quality - Effluent - Electronic Self-Monitoring Report (eSMR) Data",
            "num_resources": resources.len(),
            "resources": resources,
        }
    }))
}

async fn resource_show(
    State(c): State<Catalogue>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let id = q.get("id").cloned().unwrap_or_default();
    let years = c.years.lock().unwrap();
    axum::Json(match years.iter().find(|(_, y)| y.id == id) {
        Some((year, y)) => json!({
            "help": format!("{}/api/3/action/help_show?name=resource_show", c.base),
            "success": true,
            "result": c.resource(*year, y),
        }),
        // The SMARTS resources are not in this catalogue: those files fail, eSMR goes on.
        None => not_found(),
    })
}

fn not_found() -> Value {
    json!({
        "help": "",
        "success": false,
        "error": { "message": "Not found", "__type": "Not Found Error" },
    })
}

async fn download(State(c): State<Catalogue>, Path((_, file)): Path<(String, String)>) -> Vec<u8> {
    *c.downloads.lock().unwrap().entry(file.clone()).or_default() += 1;
    c.years
        .lock()
        .unwrap()
        .iter()
        .find(|(year, _)| Catalogue::file(**year) == file)
        .map(|(_, y)| y.body.clone())
        .unwrap_or_default()
}

/// An eSMR yearly CSV as the publisher writes it (BOM, every field quoted, `NA` for missing):
/// `rows` results of one effluent location, sampled in `year`.
fn esmr_year(year: u16, rows: usize) -> Vec<u8> {
    let columns = support::esmr_columns();
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(&columns).expect("header");
    for i in 0..rows {
        let value = |c: &str| -> String {
            match c {
                "region" => "Region 2 - San Francisco Bay".into(),
                "location" => "EFF-001".into(),
                "location_place_id" => "784043".into(),
                "location_place_type" => "Effluent Monitoring".into(),
                "parameter" => "Flow".into(),
                "qualifier" => "=".into(),
                "result" => format!("{}.5", i + 1),
                "units" => "MGD".into(),
                "sampling_date" => format!("{year}-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
                "sampling_time" => "09:00:00".into(),
                "facility_name" => "Bay Point Water Pollution Control Plant".into(),
                "facility_place_id" => "222130".into(),
                "smr_document_id" => format!("{}", 1_554_000 + i),
                _ => "NA".into(),
            }
        };
        w.write_record(columns.iter().map(|c| value(c)))
            .expect("row");
    }
    w.into_inner().expect("csv")
}

async fn scheduled(h: &Harness) -> StageSummary {
    let summary = h
        .stage_request(StageRequest {
            trigger: "schedule".into(),
            sources: None,
            force: false,
        })
        .await;
    h.drain().await;
    summary
}

/// Rows stored (not withdrawn) per sampling year.
async fn stored(h: &Harness) -> Value {
    h.json(
        "select coalesce(jsonb_object_agg(y, n), '{}') from (
           select to_char(sampling_date, 'YYYY') as y, count(*) as n from esmr_sample
            where withdrawn_run_id is null group by 1) t",
    )
    .await
}

fn esmr_files(summary: &StageSummary) -> BTreeMap<String, (String, i64)> {
    summary
        .files
        .iter()
        .filter(|f| f.dataset == "esmr")
        .map(|f| (f.url.clone(), (f.status.clone(), f.rows)))
        .collect()
}

/// A catalogue on loopback (empty), and its base URL.
async fn serve() -> (Catalogue, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let catalogue = Catalogue {
        base: base.clone(),
        ..Default::default()
    };
    let app = Router::new()
        .route("/api/3/action/package_show", get(package_show))
        .route("/api/3/action/resource_show", get(resource_show))
        .route("/dataset/esmr/resource/{id}/download/{file}", get(download))
        .with_state(catalogue.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (catalogue, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_esmr_year_in_the_catalogue_is_synced_and_an_unchanged_one_is_not_downloaded() {
    let (catalogue, base) = serve().await;
    catalogue.add(2021, 3, "2022-01-15T08:00:00");
    catalogue.add(2022, 4, "2023-01-15T08:00:00");
    catalogue.add(2025, 5, "2026-11-05T08:00:00");

    let mut h = harness("catalogue", None).await;
    h.ctx.cfg.ckan_api_url = format!("{base}/api/3/action");

    // The default manifest: the SMARTS resources, then every year the catalogue lists, each
    // its own scope, oldest first (the archive and the dictionary are not years).
    let (sources, listing) = manifest::default_sources(&h.ctx.http, &h.ctx.cfg.ckan_api_url).await;
    listing.expect("the catalogue is listed");
    let smarts = manifest::smarts_sources();
    assert_eq!(&sources[..smarts.len()], &smarts[..]);
    let years: Vec<(String, Option<String>)> = sources[smarts.len()..]
        .iter()
        .map(|s| (s.url.clone(), s.scope.clone()))
        .collect();
    assert_eq!(
        years,
        [2021, 2022, 2025].map(|y| (
            format!("ckan:00000000-0000-4000-8000-00000000{y}"),
            Some(y.to_string())
        ))
    );

    // First scheduled run: every listed year is downloaded once and imported.
    let first = scheduled(&h).await;
    let files = esmr_files(&first);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files
            .values()
            .all(|(status, _)| status == "importing" || status == "imported"),
        "{files:?}"
    );
    assert_eq!(stored(&h).await, json!({"2021": 3, "2022": 4, "2025": 5}));
    for year in [2021, 2022, 2025] {
        assert_eq!(catalogue.downloads(year), 1, "{year}");
    }
    let scopes = h
        .json(&format!(
            "select jsonb_object_agg(scope, status) from sync_file
              where run_id = {} and dataset = 'esmr'",
            first.run_id
        ))
        .await;
    assert_eq!(
        scopes,
        json!({"2021": "succeeded", "2022": "succeeded", "2025": "succeeded"})
    );

    // Between the runs the publisher adds 2026, replaces 2025 (two more rows, a new
    // last_modified) and leaves 2021 and 2022 as they were.
    catalogue.add(2026, 2, "2026-12-01T08:00:00");
    catalogue.add(2025, 7, "2026-12-01T08:00:00");
    let second = scheduled(&h).await;
    let files = esmr_files(&second);
    let status = |year: u16| {
        files[&format!("ckan:00000000-0000-4000-8000-00000000{year}")]
            .0
            .clone()
    };
    assert_eq!(status(2021), "skipped");
    assert_eq!(status(2022), "skipped");
    assert_ne!(status(2025), "skipped");
    assert_ne!(status(2026), "skipped");
    let reason = second
        .files
        .iter()
        .find(|f| f.status == "skipped")
        .and_then(|f| f.reason.clone())
        .unwrap();
    assert!(reason.contains("catalogue"), "{reason}");
    // An unchanged year costs no download; the new and the replaced one are read once.
    assert_eq!(catalogue.downloads(2021), 1);
    assert_eq!(catalogue.downloads(2022), 1);
    assert_eq!(catalogue.downloads(2025), 2);
    assert_eq!(catalogue.downloads(2026), 1);
    assert_eq!(
        stored(&h).await,
        json!({"2021": 3, "2022": 4, "2025": 7, "2026": 2})
    );
    // Nothing of a skipped year was imported again.
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from import_chunk c join sync_file f on f.id = c.file_id
              where f.run_id = {} and f.scope in ('2021', '2022')",
            second.run_id
        ))
        .await,
        0
    );

    // A forced run downloads every year again, whatever the catalogue says.
    let forced = h
        .stage_request(StageRequest {
            trigger: "manual".into(),
            sources: None,
            force: true,
        })
        .await;
    h.drain().await;
    assert!(esmr_files(&forced).values().all(|(s, _)| s != "skipped"));
    assert_eq!(catalogue.downloads(2021), 2);
    // The catalogue is listed once per run (and once by the manifest call above).
    assert_eq!(*catalogue.listed.lock().unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_that_cannot_be_listed_fails_visibly_and_withdraws_no_year() {
    let (catalogue, base) = serve().await;
    catalogue.add(2024, 4, "2025-01-15T08:00:00");

    let mut h = harness("catalogue-down", None).await;
    h.ctx.cfg.ckan_api_url = format!("{base}/api/3/action");
    scheduled(&h).await;
    assert_eq!(stored(&h).await, json!({"2024": 4}));

    *catalogue.broken.lock().unwrap() = true;
    let run = scheduled(&h).await;
    let unlisted = run
        .files
        .iter()
        .find(|f| f.url == manifest::package_url(ESMR_PACKAGE))
        .expect("the listing is a file of the run");
    assert_eq!(unlisted.status, "failed");
    assert!(
        unlisted
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("eSMR years could not be listed")),
        "{:?}",
        unlisted.reason
    );
    // The SMARTS files were still tried; eSMR keeps what it had.
    assert_eq!(run.files.iter().filter(|f| f.dataset != "esmr").count(), 7);
    assert_eq!(stored(&h).await, json!({"2024": 4}));
    let status = h
        .json(&format!(
            "select to_jsonb(status) from sync_run where id = {}",
            run.run_id
        ))
        .await;
    assert_ne!(
        status,
        json!("succeeded"),
        "a run that missed a dataset says so"
    );
}
