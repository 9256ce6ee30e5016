//! Facility linking end to end (docs/LINKING.md): real SMARTS names and coordinates, eSMR
//! facilities built from the same real sites, constructed near-misses, manual decisions
//! through the authenticated endpoint, and the precision / recall evaluation.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use stormwater::linking::{self, Options, Settings};
use stormwater::sync::manifest::Source;
use support::{Harness, file_url, harness, shared_data};

const REGION1_FACILITIES: &str =
    "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Application_Specific_Data.txt";
const PORTAL_2019: &str =
    "real/NAS-Stormwater-Tool/Industrial_Application_Specific_Data_2019-03-12.csv";

/// One eSMR facility for a constructed file: place id, name, region, coordinates as published.
struct Place<'a> {
    id: &'a str,
    name: &'a str,
    region: &'a str,
    lat: &'a str,
    lon: &'a str,
}

/// An eSMR file in the published layout with one flow result per place.
fn esmr_file(dir: &Path, name: &str, places: &[Place]) -> PathBuf {
    let columns = support::esmr_columns();
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    w.write_record(&columns).expect("header");
    for (i, p) in places.iter().enumerate() {
        let value = |c: &str| -> String {
            match c {
                "region" => p.region.to_owned(),
                "location" => "EFF-001".into(),
                "location_place_id" => format!("7{}", p.id),
                "location_place_type" => "Effluent Monitoring".into(),
                "parameter" => "Flow".into(),
                "qualifier" => "=".into(),
                "result" => format!("{}", 1 + i),
                "units" => "MGD".into(),
                "sampling_date" => "2024-01-10".into(),
                "sampling_time" => "09:00:00".into(),
                "facility_name" => p.name.to_owned(),
                "facility_place_id" => p.id.to_owned(),
                "latitude" => p.lat.to_owned(),
                "longitude" => p.lon.to_owned(),
                "smr_document_id" => "1".into(),
                _ => "NA".into(),
            }
        };
        w.write_record(columns.iter().map(|c| value(c)))
            .expect("row");
    }
    let path = dir.join(name);
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(w.into_inner().expect("csv"));
    std::fs::write(&path, bytes).expect("write eSMR file");
    path
}

fn source(dataset: &str, path: &Path, scope: Option<&str>) -> Source {
    Source {
        dataset: dataset.into(),
        url: file_url(path),
        scope: scope.map(Into::into),
    }
}

/// The facility a source record is linked to.
async fn linked(h: &Harness, source: &str, key: &str) -> i64 {
    h.scalar_i64(&format!(
        "select facility_id from facility_link
         where source = '{source}' and source_key = '{key}' and status = 'linked'"
    ))
    .await
}

/// The facility built from a source record.
async fn own(h: &Harness, source: &str, key: &str) -> i64 {
    h.scalar_i64(&format!(
        "select id from facility where origin_source = '{source}' and origin_key = '{key}'"
    ))
    .await
}

/// The facility of the SMARTS industrial record with this WDID (the 2019 and 2025 files).
async fn smarts(h: &Harness, wdid: &str) -> i64 {
    h.scalar_i64(&format!(
        "select min(l.facility_id) from facility_link l
         where l.source = 'smarts_industrial' and l.status = 'linked'
           and split_part(l.source_key, '|', 2) = '{wdid}'"
    ))
    .await
}

async fn link_row(h: &Harness, source: &str, key: &str, facility: i64) -> Value {
    h.json(&format!(
        "select coalesce((select jsonb_build_object('method', method, 'confidence', confidence,
                 'status', status, 'verifiedBy', verified_by, 'notes', notes)
           from facility_link where source = '{source}' and source_key = '{key}'
            and facility_id = {facility}), 'null')"
    ))
    .await
}

const HAMBRO: &str = "1 08I004046";
const KLAMATH: &str = "1 08I017295";

#[tokio::test]
async fn manual_decisions_win_survive_the_next_sync_and_need_credentials() {
    let h = harness("linking-manual", None).await;
    let dir = tempfile::tempdir().unwrap();
    let places = [
        // Hambro Forest Products, 445 Elk Valley Rd, Crescent City: the eSMR name and the
        // SMARTS coordinates of the real site.
        Place {
            id: "8100001",
            name: "Hambro Forest Products Inc.",
            region: "Region 1 - North Coast",
            lat: "41.753659",
            lon: "-124.177645",
        },
        // Klamath Log Yard without coordinates and with another name: no automatic link.
        Place {
            id: "8100002",
            name: "Green Diamond Klamath Yard",
            region: "Region 1 - North Coast",
            lat: "NaN",
            lon: "NaN",
        },
    ];
    let esmr = esmr_file(dir.path(), "esmr_2024.csv", &places);
    let region1 = shared_data(REGION1_FACILITIES);
    h.sync(vec![
        source("smarts_industrial_facilities", &region1, None),
        source("esmr", &esmr, Some("2024")),
    ])
    .await;

    let hambro = smarts(&h, HAMBRO).await;
    let klamath = smarts(&h, KLAMATH).await;
    assert_eq!(linked(&h, "esmr", "8100001").await, hambro);
    let auto = link_row(&h, "esmr", "8100001", hambro).await;
    assert_eq!(auto["method"], "fuzzy");
    assert_eq!(auto["confidence"], 1.0);
    assert_eq!(auto["notes"], "name 1.00, 0 m");
    assert_eq!(
        linked(&h, "esmr", "8100002").await,
        own(&h, "esmr", "8100002").await
    );
    // The run's notes carry the linker's counts by method and confidence band.
    let notes = h
        .json("select notes::jsonb from sync_run order by id desc limit 1")
        .await;
    assert_eq!(
        notes["facilityLinks"]["linkedByMethod"]["fuzzy"],
        h.scalar_i64(
            "select count(*) from facility_link where method = 'fuzzy' and status = 'linked'"
        )
        .await,
        "{notes}"
    );

    // The complete page shows both sources, with the link's method and confidence.
    let (status, body, _) = h
        .get(
            "api-facility-complete",
            &format!("/api/facilities/{hambro}/complete"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    assert_eq!(d["sources"]["smartsIndustrial"], true);
    assert_eq!(d["sources"]["esmr"], true);
    assert_eq!(d["esmr"]["facilities"][0]["placeId"], "8100001");
    assert_eq!(d["esmr"]["monitoring"]["results"], 1);
    let esmr_link = d["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["source"] == "esmr")
        .expect("eSMR link listed")
        .clone();
    assert_eq!(esmr_link["method"], "fuzzy");
    assert_eq!(esmr_link["confidence"], 1.0);
    assert!(
        d["smarts"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["wdid"] == HAMBRO)
    );
    // The eSMR record's own facility redirects to the canonical one.
    let merged = own(&h, "esmr", "8100001").await;
    let (status, body, _) = h
        .get(
            "api-facility-timeline",
            &format!("/api/facilities/{merged}/timeline"),
        )
        .await;
    assert_eq!(status, 308, "{body}");
    // One site, one point on the map.
    let map = |body: &Value| -> Vec<i64> {
        body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect()
    };
    let bbox = "/api/facilities.geojson?bbox=-124.2,41.74,-124.16,41.77";
    let (_, body, _) = h.get("api-facilities-geojson", bbox).await;
    assert!(map(&body).contains(&hambro), "{body}");
    assert!(!map(&body).contains(&merged), "{body}");

    let path = |f: i64| format!("/api/facilities/{f}/links");
    let unlink = json!({ "action": "unlink", "source": "esmr", "sourceKey": "8100001",
                         "notes": "a different plant" });
    // No credentials, or a wrong key: 401, nothing stored.
    for key in [None, Some("sw_not_a_key")] {
        let (status, body) = h
            .send(
                "api-facility-links",
                "POST",
                &path(hambro),
                Some(unlink.clone()),
                key,
            )
            .await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(
        h.scalar_i64("select count(*) from facility_link_decision")
            .await,
        0
    );
    let key = stormwater::auth::create_key(h.pool(), "reviewer", "test")
        .await
        .unwrap();
    let post = |f: i64, body: Value| {
        let key = key.clone();
        let h = &h;
        let p = path(f);
        async move {
            h.send("api-facility-links", "POST", &p, Some(body), Some(&key))
                .await
        }
    };
    // Refusals: a bad action, an unknown record or facility, unlinking a record from the
    // facility built from it.
    let (status, body) = post(
        hambro,
        json!({ "action": "merge", "source": "esmr", "sourceKey": "8100001" }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["parameter"].clone()),
        (400, json!("action"))
    );
    let (status, _) = post(
        hambro,
        json!({ "action": "link", "source": "esmr", "sourceKey": "999" }),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(999_999, unlink.clone()).await;
    assert_eq!(status, 404);
    let hambro_key: String = sqlx::query_scalar("select origin_key from facility where id = $1")
        .bind(hambro)
        .fetch_one(h.pool())
        .await
        .unwrap();
    let (status, body) = post(
        hambro,
        json!({ "action": "unlink", "source": "smarts_industrial", "sourceKey": hambro_key }),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // The directory's totals: stored per area, and live when another filter is given.
    let totals = async |area: &str| {
        let total = async |q: String| {
            let (_, body, _) = h
                .get("api-facilities", &format!("/api/facilities?limit=1{q}"))
                .await;
            body["page"]["total"].as_i64().unwrap()
        };
        let split = total(format!("{area}&hasViolations=true")).await
            + total(format!("{area}&hasViolations=false")).await;
        (total(area.to_owned()).await, split)
    };
    let before = totals("").await;
    assert_eq!(before.0, before.1);

    // Unlink the automatic match; link the yard by hand.
    let (status, body) = post(hambro, unlink.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["previouslyLinkedTo"], hambro);
    assert_eq!(body["data"]["linkedTo"], merged);
    let (status, body) = post(
        klamath,
        json!({ "action": "link", "source": "esmr", "sourceKey": "8100002",
                "notes": "same yard, Green Diamond operates it" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["linkedTo"], klamath);

    let check = |when: &'static str| {
        let h = &h;
        async move {
            assert_eq!(
                linked(h, "esmr", "8100001").await,
                merged,
                "{when}: the unlink holds"
            );
            let rejected = link_row(h, "esmr", "8100001", hambro).await;
            assert_eq!(rejected["status"], "rejected", "{when}");
            assert_eq!(rejected["verifiedBy"], "key:reviewer", "{when}");
            assert_eq!(rejected["notes"], "a different plant", "{when}");
            assert_eq!(linked(h, "esmr", "8100002").await, klamath, "{when}");
            let manual = link_row(h, "esmr", "8100002", klamath).await;
            assert_eq!(manual["method"], "manual", "{when}");
            assert_eq!(manual["status"], "linked", "{when}");
            assert_eq!(manual["verifiedBy"], "key:reviewer", "{when}");
            assert_eq!(
                manual["notes"], "same yard, Green Diamond operates it",
                "{when}"
            );
        }
    };
    check("after the decisions").await;
    // The unlinked place is listed on its own again; the stored counts follow the review.
    for area in ["", "&county=del%20norte", "&region=1"] {
        let (stored, live) = totals(area).await;
        assert_eq!(stored, live, "{area}");
    }
    // One more (the unlinked place, on its own again) and one fewer (the yard linked by hand).
    assert_eq!(totals("").await.0, before.0);
    let (_, body, _) = h.get("api-facilities", "/api/facilities?limit=1000").await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == merged),
        "the unlinked place is listed: {body}"
    );
    // Reviewers find both decisions in the link list.
    let (status, body, _) = h
        .get(
            "api-facility-link-list",
            "/api/facility-links?status=rejected",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["sourceKey"], "8100001");
    assert_eq!(items[0]["facility"]["id"], hambro);
    assert_eq!(items[0]["record"]["name"], "Hambro Forest Products Inc.");
    assert_eq!(items[0]["verifiedBy"], "key:reviewer");
    let (_, body, _) = h
        .get(
            "api-facility-link-list",
            "/api/facility-links?status=linked&method=manual&source=esmr",
        )
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["facility"]["id"], klamath);
    let (status, _, _) = h
        .get("api-facility", &format!("/api/facilities/{merged}"))
        .await;
    assert_eq!(status, 200, "an unlinked facility is its own again");
    let (_, body, _) = h.get("api-facilities-geojson", bbox).await;
    assert!(map(&body).contains(&merged), "{body}");

    // The next sync (a new eSMR year with both places again) and a full linker run replay the
    // decisions.
    let esmr_2025 = esmr_file(dir.path(), "esmr_2025.csv", &places);
    h.sync(vec![source("esmr", &esmr_2025, Some("2025"))]).await;
    check("after the next sync").await;
    let mut opts = Options::new("test", Settings::default());
    opts.force_full = true;
    let report = linking::run(h.pool(), &opts).await.unwrap();
    assert_eq!(report.mode, "full");
    assert_eq!(
        report.written,
        linking::Written::default(),
        "nothing to change"
    );
    check("after a full run").await;
    assert_eq!(
        h.scalar_i64("select count(*) from audit_log where action = 'facility_link.decide'")
            .await,
        2
    );
}

/// Pairs of real 2019 records, a random sample of pairs within 100 m whose names share half
/// their trigrams, labelled by hand from name, operator, address and permit dates (`true`: one
/// site re-registered; `false`: neighbouring businesses). One unclear pair of the sample
/// ("Corrugated Ser Western" / "Western Corrugated Design") was left out.
const LABELLED: &[(&str, &str, bool)] = &[
    ("8 30IN601662", "8 30I023471", true), // Cosmotronic / T C Cosmotronic Inc, 16721 Noyes
    ("3 42I013310", "3 42I027456", true),  // Venoco Ellwood Onshore Fac / Ellwood Onshore Facility
    ("4 19I016118", "4 19I026862", true),  // L R Pallets / L&R PALLETS INC
    ("4 19I019585", "4 19I024417", true),  // 4 Wheel Truck & Van Dismantling / 4 Wheel Dismantling
    ("4 19I018371", "4 19I024417", true),  // the same, an earlier registration
    ("4 19I018936", "4 19I000319", true),  // Superior Industries Intl / Superior Industries
    ("8 36I012233", "8 36I027216", true),  // Pac Auto Wrecking / PACIFIC AUTO WRECKING, 802 Ontario
    ("8 30IN604731", "8 30NEC004814", true), // American Rebel Manufacturing / Mfg
    ("4 19I017741", "4 19IN600083", true), // Seven Up RC Bottling / Seven Up Royal Crown Bottling
    ("8 30IN601516", "8 30I026720", true), // DHL Express / DHL Express SEE, 1700 Barranca
    ("4 19I018639", "4 19I020355", false), // Brand / A&G Auto Dismantling
    ("4 19I022420", "4 19IN601150", false), // My / Millennium Auto Wrecking
    ("9 37I010199", "9 37I011192", false), // Camino / Luna S Auto Wrecking
    ("5F15I010024", "5F15IN602702", false), // C / Andys Auto Wrecking
    ("9 37I020913", "9 37I027108", false), // M C M / Kobi Auto Recycling
    ("9 37I020792", "9 37I021355", false), // A & A / Japanese Auto Wrecking
    ("9 37I010158", "9 37I018099", false), // Montoya S / Montana Auto Wrecking
    ("9 37I016632", "9 37I018099", false), // Toys / Montana Auto Wrecking
    ("4 19I004482", "4 19I020185", false), // Bank / Star Tac Auto Wrecking
    ("4 19I015963", "4 19NEC003812", false), // Bank / Imperial Auto Wrecking
    ("4 19I013678", "4 19I016446", false), // G & N / Castle Auto Dismantling
    ("4 56I019779", "4 56NEC004600", false), // Coastal / Limons Metal Finishing
    ("9 37I012471", "9 37I016874", false), // America / Rancho Auto Wrecking
    ("4 19I011645", "4 19I019165", false), // Globe / Rhino Used Auto Parts
    ("5S34I026256", "5S34NEC004514", false), // Subaru / Asian Auto Recycling
    ("4 19I017432", "4 19I021060", false), // S & S / HHT Auto Wrecking
    ("9 37I011044", "9 37I013997", false), // All Smash / Kits Auto Recycling
    ("9 37I013478", "9 37I019939", false), // Rabago / Vegas Auto Wrecking
    ("9 37I018442", "9 37I003597", false), // Pirate / Libra Auto Dismantling
];

/// True/false positives and false negatives of automatic links.
#[derive(Default, Debug, Clone, Copy)]
struct Confusion {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

impl Confusion {
    fn add(&mut self, predicted: bool, truth: bool) {
        match (predicted, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
}

/// A constructed case: what it is, the columns changed from the real record, the outcome.
type NearMiss = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// One constructed SMARTS record: a copy of the 2019 Hambro row with changes.
fn hambro_variant(
    row: &csv::StringRecord,
    headers: &csv::StringRecord,
    n: u32,
    changes: &[(&str, &str)],
) -> Vec<String> {
    headers
        .iter()
        .zip(row.iter())
        .map(|(h, v)| match h {
            "APP_ID" => format!("99000{n}"),
            "WDID" => format!("1 08I99000{n}"),
            _ => changes
                .iter()
                .find(|(c, _)| *c == h)
                .map_or(v.to_owned(), |(_, new)| (*new).to_owned()),
        })
        .collect()
}

#[tokio::test]
async fn precision_and_recall_on_real_sites_and_near_misses() {
    let h = harness("linking-eval", None).await;
    let dir = tempfile::tempdir().unwrap();

    // SMARTS: the whole 2019 portal file plus constructed near-misses of one real site.
    let portal = shared_data(PORTAL_2019);
    let mut reader = csv::Reader::from_path(&portal).expect("2019 file");
    let headers = reader.headers().expect("header").clone();
    let wdid_col = headers.iter().position(|h| h == "WDID").unwrap();
    let hambro_row = reader
        .records()
        .map(|r| r.expect("row"))
        .find(|r| &r[wdid_col] == HAMBRO)
        .expect("Hambro in 2019");
    let near_misses: [NearMiss; 6] = [
        (
            "same name at another address",
            vec![
                ("FACILITY_ADDRESS", "9000 Lake Earl Dr"),
                ("FACILITY_LATITUDE", "41.803659"),
            ],
            "none",
        ),
        (
            "same site, new operator",
            vec![("OPERATOR_NAME", "North Coast Lumber LLC")],
            "linked",
        ),
        (
            "another business at the same address",
            vec![
                ("FACILITY_NAME", "Pacific Redwood Pallet Works"),
                ("OPERATOR_NAME", "PRPW Inc"),
            ],
            "none",
        ),
        (
            "name written differently, 33 m away",
            vec![
                ("FACILITY_NAME", "HAMBRO FOREST PRODUCTS, INC."),
                ("FACILITY_ADDRESS", "445 Elk Valley Road"),
                ("FACILITY_LATITUDE", "41.753959"),
            ],
            "linked",
        ),
        (
            "longitude with the wrong sign, no address",
            vec![
                ("FACILITY_LONGITUDE", "124.177645"),
                ("FACILITY_ADDRESS", "NA"),
            ],
            "proposed",
        ),
        (
            "0,0 coordinates, no address",
            vec![
                ("FACILITY_LATITUDE", "0"),
                ("FACILITY_LONGITUDE", "0"),
                ("FACILITY_ADDRESS", "NA"),
            ],
            "proposed",
        ),
    ];
    let mut text = std::fs::read_to_string(&portal).expect("2019 file");
    {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for (i, (_, changes, _)) in near_misses.iter().enumerate() {
            w.write_record(hambro_variant(&hambro_row, &headers, i as u32 + 1, changes))
                .unwrap();
        }
        text.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    }
    let smarts_file = dir
        .path()
        .join("Industrial_Application_Specific_Data_2019-03-12.csv");
    std::fs::write(&smarts_file, text).unwrap();

    // eSMR: every site of the 2025 Region 1 download as a CIWQS place (its name and
    // coordinates, no SMARTS id), and constructed places.
    let mut r25 = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .from_path(shared_data(REGION1_FACILITIES))
        .expect("2025 file");
    let h25 = r25.headers().unwrap().clone();
    let col = |n: &str| h25.iter().position(|h| h == n).unwrap();
    let (c_wdid, c_name, c_lat, c_lon) = (
        col("WDID"),
        col("FACILITY_NAME"),
        col("FACILITY_LATITUDE"),
        col("FACILITY_LONGITUDE"),
    );
    let c_app = col("APP_ID");
    let mut sites: BTreeMap<String, (String, String, String, String)> = BTreeMap::new();
    for r in r25.records() {
        let r = r.unwrap();
        sites.entry(r[c_wdid].to_owned()).or_insert((
            r[c_name].trim().to_owned(),
            r[c_lat].to_owned(),
            r[c_lon].to_owned(),
            r[c_app].to_owned(),
        ));
    }
    let ids: Vec<String> = (0..sites.len())
        .map(|i| format!("{}", 8_200_000 + i))
        .collect();
    let mut places: Vec<Place> = sites
        .values()
        .zip(&ids)
        .map(|((name, lat, lon, _), id)| Place {
            id,
            name,
            region: "Region 1 - North Coast",
            lat: if lat.is_empty() { "NaN" } else { lat },
            lon: if lon.is_empty() { "NaN" } else { lon },
        })
        .collect();
    let constructed_esmr: [(&str, &str, &str, &str, &str, &str); 4] = [
        (
            "8300001",
            "Empire Waste Management",
            "Region 1 - North Coast",
            "NaN",
            "NaN",
            "chain name without coordinates",
        ),
        (
            "8300002",
            "Klamath Log Yard",
            "Region 1 - North Coast",
            "41.531948",
            "124.04082",
            "longitude with the wrong sign",
        ),
        (
            "8300003",
            "Hambro Forest Products",
            "Region 5S - Sacramento",
            "NaN",
            "NaN",
            "same name, another regional board",
        ),
        (
            "8300004",
            "A-1 Auto Wreckers",
            "Region 1 - North Coast",
            "0",
            "0",
            "0,0 coordinates",
        ),
    ];
    for (id, name, region, lat, lon, _) in &constructed_esmr {
        places.push(Place {
            id,
            name,
            region,
            lat,
            lon,
        });
    }
    let esmr = esmr_file(dir.path(), "esmr_2024.csv", &places);
    h.sync(vec![
        source("smarts_industrial_facilities", &smarts_file, None),
        source("esmr", &esmr, Some("2024")),
    ])
    .await;

    let mut real25 = Confusion::default();
    let mut pairs = Confusion::default();
    let mut constructed = Confusion::default();
    // 1. The 2025 sites, matched by name and coordinates only. The truth is the 2019 record
    //    with the same WDID, or the same APP_ID (an I -> NEC conversion keeps the APP_ID and
    //    changes the WDID).
    for ((wdid, (name, _, _, app)), id) in sites.iter().zip(&ids) {
        let got = linked(&h, "esmr", id).await;
        let mine = own(&h, "esmr", id).await;
        let truth = h
            .scalar_i64(&format!(
                "select coalesce(min(l.facility_id), 0) from facility_link l
                 where l.source = 'smarts_industrial' and l.status = 'linked'
                   and (split_part(l.source_key, '|', 2) = '{wdid}'
                        or split_part(l.source_key, '|', 1) = '{app}')
                   and split_part(l.source_key, '|', 1) not like '99000%'"
            ))
            .await;
        if got != mine && got != truth {
            panic!(
                "eSMR place for {wdid} ({name}) linked to the wrong facility {got}, truth {truth}"
            );
        }
        real25.add(got != mine, truth != 0);
        if got == mine && truth != 0 {
            let why = h
                .json(&format!(
                    "select coalesce(jsonb_agg(jsonb_build_object('to', l.facility_id, 'c', l.confidence,
                         'notes', l.notes, 'name', f.name)), '[]')
                     from facility_link l join facility f on f.id = l.facility_id
                     where l.source = 'esmr' and l.source_key = '{id}' and l.status = 'proposed'"
                ))
                .await;
            println!("  missed: {wdid} {name:?}: proposed {why}");
        }
    }
    // 2. Hand-labelled real pairs.
    for (a, b, same) in LABELLED {
        let (fa, fb) = (smarts(&h, a).await, smarts(&h, b).await);
        assert!(fa > 0 && fb > 0, "{a} / {b} present");
        pairs.add(fa == fb, *same);
        if !same {
            assert_ne!(fa, fb, "{a} and {b} are different sites");
        }
    }
    // 3. Constructed near-misses, each with its exact outcome.
    let hambro = smarts(&h, HAMBRO).await;
    for (i, (what, _, expect)) in near_misses.iter().enumerate() {
        let key = format!("99000{}|1 08I99000{}", i + 1, i + 1);
        let got = linked(&h, "smarts_industrial", &key).await;
        let row = link_row(&h, "smarts_industrial", &key, hambro).await;
        let outcome = if got == hambro {
            "linked"
        } else if row["status"] == "proposed" {
            "proposed"
        } else {
            "none"
        };
        assert_eq!(outcome, *expect, "{what}: {row}");
        constructed.add(got == hambro, *expect == "linked");
    }
    for (id, _, _, _, _, what) in &constructed_esmr {
        let got = linked(&h, "esmr", id).await;
        let mine = own(&h, "esmr", id).await;
        assert_eq!(got, mine, "{what}: never linked automatically");
        constructed.add(got != mine, false);
    }
    // The chain name is proposed to both Empire sites; the wrong-sign and 0,0 places are
    // proposed by name and board only; another board vetoes.
    let proposals = |id: &'static str| {
        let h = &h;
        async move {
            h.scalar_i64(&format!(
                "select count(*) from facility_link where source = 'esmr' and source_key = '{id}'
                   and status = 'proposed'"
            ))
            .await
        }
    };
    assert_eq!(proposals("8300001").await, 2);
    assert_eq!(proposals("8300002").await, 1);
    assert_eq!(proposals("8300003").await, 0);
    assert_eq!(proposals("8300004").await, 1);

    // The review list pages through every proposal once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (status, body, _) = h
            .get(
                "api-facility-link-list",
                &format!("/api/facility-links?limit=1000{cursor}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for item in body["data"].as_array().unwrap() {
            assert_eq!(item["status"], "proposed");
            assert!(seen.insert(item["id"].as_i64().unwrap()), "listed twice");
        }
        match body["page"]["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen.len() as i64,
        h.scalar_i64("select count(*) from facility_link where status = 'proposed'")
            .await
    );
    assert!(seen.len() > 1000, "several pages");

    let mut all = Confusion::default();
    for c in [real25, pairs, constructed] {
        all.tp += c.tp;
        all.fp += c.fp;
        all.fn_ += c.fn_;
        all.tn += c.tn;
    }
    let report = h
        .json("select report from facility_link_run where status = 'succeeded' order by id limit 1")
        .await;
    println!(
        "linking evaluation (threshold {}):",
        Settings::default().threshold
    );
    for (name, c) in [
        ("2025 Region 1 sites as eSMR places", real25),
        ("hand-labelled real pairs", pairs),
        ("constructed near-misses", constructed),
        ("all", all),
    ] {
        println!(
            "  {name}: TP {} FP {} FN {} TN {} precision {:.3} recall {:.3}",
            c.tp,
            c.fp,
            c.fn_,
            c.tn,
            c.precision(),
            c.recall()
        );
    }
    println!("  first run over the whole 2019 file: {report}");
    // The goal: precision >= 0.98 at the default threshold. The counts are exact for these
    // files: the 21 missed 2025 sites have no coordinates in that file (a name and a regional
    // board are only a proposal), the 6 missed pairs have names too different for their place.
    assert!(all.precision() >= 0.98, "{all:?}");
    let counts = |c: Confusion| (c.tp, c.fp, c.fn_, c.tn);
    assert_eq!(counts(real25), (78, 0, 21, 0));
    assert_eq!(counts(pairs), (4, 0, 6, 19));
    assert_eq!(counts(constructed), (2, 0, 0, 8));

    // docs/LINKING.md shows these numbers, as computed here.
    let row = |set: String, truth: &str, c: Confusion, bold: bool| {
        let (p, r) = (
            format!("{:.3}", c.precision()),
            format!("{:.3}", c.recall()),
        );
        let (p, r) = if bold {
            (format!("**{p}**"), format!("**{r}**"))
        } else {
            (p, r)
        };
        let truth = if truth.is_empty() {
            " ".to_owned()
        } else {
            format!(" {truth} ")
        };
        format!(
            "| {set} |{truth}| {} | {} | {} | {} | {p} | {r} |",
            c.tp, c.fp, c.fn_, c.tn
        )
    };
    let table = [
        "| set | truth | TP | FP | FN | TN | precision | recall |".to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
        row(
            format!("{} sites of the 2025 Region 1 download as eSMR places", sites.len()),
            "the 2019 record with the same WDID or APP_ID",
            real25,
            false,
        ),
        row(
            format!(
                "{} real 2019 pairs within 100 m with similar names (random sample, labelled by hand)",
                LABELLED.len()
            ),
            "same site re-registered vs neighbouring businesses",
            pairs,
            false,
        ),
        row(
            format!(
                "{} constructed near-misses (below)",
                near_misses.len() + constructed_esmr.len()
            ),
            "by construction",
            constructed,
            false,
        ),
        row("all".into(), "", all, true),
    ]
    .join("\n");
    support::doc_block(
        "docs/LINKING.md",
        "evaluation",
        &format!(
            "{table}\n\nAt the default threshold ({}): precision {:.3}, recall {:.3}; {} missed 2025 \
             sites and {} missed real pairs.",
            Settings::default().threshold,
            all.precision(),
            all.recall(),
            real25.fn_,
            pairs.fn_
        ),
    );
    let n =
        |path: &str| support::thousands(report.pointer(path).and_then(Value::as_i64).unwrap_or(0));
    support::doc_block(
        "docs/LINKING.md",
        "evaluation-run",
        &format!(
            "The evaluation's first (full) run, over the whole 2019 file plus the {} constructed \
             SMARTS records and {} eSMR places: {} candidate pairs scored, {} kept; {} exact and {} \
             fuzzy links ({} of them at 1.00), {} proposals, {} ambiguous records, {} facilities \
             merged into another.",
            near_misses.len(),
            places.len(),
            n("/pairsScored"),
            n("/pairsStored"),
            n("/linkedByMethod/exact"),
            n("/linkedByMethod/fuzzy"),
            n("/byMethodAndBand/fuzzy/1.00"),
            n("/proposed"),
            n("/ambiguousRecords"),
            n("/mergedFacilities"),
        ),
    );
}
