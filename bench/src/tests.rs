use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::out::BOM;
use crate::schema::{ALL, FileSpec, Kind};
use crate::{Cli, run};

/// The real files and dictionaries beside the checkout (`../shared/data`), or
/// `$STORMWATER_SHARED_DATA`.
fn shared_data() -> PathBuf {
    std::env::var("STORMWATER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("bench-gen-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    p
}

fn gen_into(dir: &Path, seed: u64, hostile: bool) {
    let cli = Cli {
        out: dir.to_path_buf(),
        seed,
        scale: 0.001,
        hostile,
        real_dir: shared_data().join("real"),
        next_week_of: None,
    };
    run(&cli).expect("generation failed");
}

/// A small generated data set, removed when dropped.
struct Sample(PathBuf);

impl Sample {
    fn new(name: &str) -> Sample {
        let d = tmp(name);
        gen_into(&d, 7, true);
        Sample(d)
    }
}

impl std::ops::Deref for Sample {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

#[test]
fn deterministic_for_a_seed() {
    let a = tmp("det-a");
    let b = tmp("det-b");
    gen_into(&a, 42, true);
    gen_into(&b, 42, true);
    let fa = files_in(&a);
    let fb = files_in(&b);
    assert_eq!(fa.len(), fb.len());
    assert!(
        fa.len() >= 8 + 1 + 14,
        "expected all files, got {}",
        fa.len()
    );
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert!(
            fs::read(x).unwrap() == fs::read(y).unwrap(),
            "{} differs between runs",
            x.display()
        );
    }
    // and a different seed gives different data
    let c = tmp("det-c");
    gen_into(&c, 43, false);
    assert_ne!(
        fs::read(a.join(ALL[2].file)).unwrap(),
        fs::read(c.join(ALL[2].file)).unwrap()
    );
    for d in [a, b, c] {
        let _ = fs::remove_dir_all(d);
    }
}

/// (column, type) in published order from an official dictionary CSV.
fn dictionary(spec: &FileSpec) -> Vec<(String, String)> {
    let path = shared_data()
        .join("ca-waterboards-data-dictionaries")
        .join(spec.dictionary);
    let mut rd =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let h = rd.headers().unwrap().clone();
    let ci = h
        .iter()
        .position(|x| x.trim_start_matches('\u{FEFF}') == "column")
        .unwrap();
    let ti = h.iter().position(|x| x == "type").unwrap();
    rd.records()
        .map(|r| r.unwrap())
        .map(|r| (r[ci].to_string(), r[ti].to_string()))
        .collect()
}

#[test]
fn headers_match_official_dictionaries() {
    let dir = &*Sample::new("headers");
    for spec in ALL {
        let dict = dictionary(spec);
        let names: Vec<&str> = spec.cols.iter().map(|c| c.0).collect();
        let dnames: Vec<&str> = dict.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(
            names, dnames,
            "{}: column order differs from {}",
            spec.file, spec.dictionary
        );
        for ((name, kind), (_, ty)) in spec.cols.iter().zip(&dict) {
            let want = match ty.as_str() {
                "numeric" => Kind::Num,
                "timestamp" => Kind::Date,
                _ => Kind::Text,
            };
            assert_eq!(
                *kind, want,
                "{}: {name} is {ty} in the dictionary",
                spec.file
            );
        }
        // the file on disk starts with BOM + the quoted header
        let bytes = fs::read(dir.join(spec.file)).unwrap();
        let first = bytes.split(|b| *b == b'\n').next().unwrap();
        let want: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let mut expect = BOM.to_vec();
        expect.extend_from_slice(want.join(",").as_bytes());
        assert_eq!(first, expect.as_slice(), "{} header line", spec.file);
    }
    // the eSMR header is byte-identical to the real 2025 header
    let real =
        fs::read(shared_data().join("real/stormwater-watch/esmr_columns_header.txt")).unwrap();
    let ours = fs::read(dir.join(crate::schema::ESMR.file)).unwrap();
    let real_line = real.split(|b| *b == b'\n').next().unwrap();
    let our_line = ours.split(|b| *b == b'\n').next().unwrap();
    assert_eq!(our_line, real_line);
}

/// Splits one physical line into (field bytes without quotes, was_quoted). Assumes no embedded newlines.
fn raw_fields(line: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i < line.len() && line[i] == b'"' {
            let mut v = Vec::new();
            i += 1;
            loop {
                assert!(
                    i < line.len(),
                    "unterminated quote in {:?}",
                    String::from_utf8_lossy(line)
                );
                if line[i] == b'"' {
                    if i + 1 < line.len() && line[i + 1] == b'"' {
                        v.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(line[i]);
                i += 1;
            }
            out.push((v, true));
        } else {
            let s = i;
            while i < line.len() && line[i] != b',' {
                i += 1;
            }
            out.push((line[s..i].to_vec(), false));
        }
        if i >= line.len() {
            break;
        }
        assert_eq!(line[i], b',', "junk after a quoted field");
        i += 1;
    }
    out
}

fn is_iso_date(s: &[u8]) -> bool {
    s.len() == 10
        && s.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[test]
fn bom_and_quoting_rules() {
    let dir = &*Sample::new("quoting");
    for spec in ALL {
        let bytes = fs::read(dir.join(spec.file)).unwrap();
        assert!(bytes.starts_with(BOM), "{} lacks the BOM", spec.file);
        assert!(!bytes.contains(&b'\r'), "{} has CR", spec.file);
        assert_eq!(bytes.last(), Some(&b'\n'));
        std::str::from_utf8(&bytes).expect("valid UTF-8");
        let esmr = spec.dataset == "esmr";
        let mut rows = 0;
        let mut seen_nan = false;
        let mut seen_na = false;
        for line in bytes[BOM.len()..]
            .split(|b| *b == b'\n')
            .skip(1)
            .filter(|l| !l.is_empty())
        {
            rows += 1;
            let f = raw_fields(line);
            assert_eq!(
                f.len(),
                spec.cols.len(),
                "{}: wrong field count in {:?}",
                spec.file,
                String::from_utf8_lossy(line)
            );
            for ((v, q), (name, kind)) in f.iter().zip(spec.cols) {
                let ctx = || {
                    format!(
                        "{} {name}={:?} quoted={q}",
                        spec.file,
                        String::from_utf8_lossy(v)
                    )
                };
                match (esmr, kind) {
                    (false, Kind::Text) => {
                        assert!(*q, "{}", ctx());
                        seen_na |= v == b"NA";
                    }
                    (false, Kind::Date) | (true, Kind::Date) => {
                        assert!(*q && (v.is_empty() || is_iso_date(v)), "{}", ctx());
                        if !v.is_empty() {
                            let y: i32 = std::str::from_utf8(&v[..4]).unwrap().parse().unwrap();
                            assert!((200..=2035).contains(&y), "{}", ctx()); // planned completion dates run ahead
                        }
                    }
                    (false, Kind::Num) => {
                        assert!(!q, "{}", ctx());
                        let s = std::str::from_utf8(v).unwrap();
                        seen_nan |= s == "NaN";
                        assert!(
                            s == "NaN"
                                || (s.parse::<f64>().is_ok()
                                    && !s.starts_with('.')
                                    && !s.contains('+')),
                            "{}",
                            ctx()
                        );
                    }
                    (true, Kind::Text) => {
                        assert!(*q || v == b"NA", "{}", ctx());
                        seen_na |= !q;
                    }
                    (true, Kind::Num) => {
                        assert!(*q, "{}", ctx());
                        let s = std::str::from_utf8(v).unwrap();
                        seen_nan |= s == "NaN";
                        assert!(s == "NaN" || s.parse::<f64>().is_ok(), "{}", ctx());
                    }
                }
            }
        }
        assert!(rows > 0, "{} is empty", spec.file);
        if spec.cols.iter().any(|c| c.1 == Kind::Num) && rows > 20 {
            assert!(seen_nan, "{}: no missing number seen", spec.file);
        }
        assert!(seen_na || rows < 20, "{}: no missing text seen", spec.file);
    }
    // one literal line check of the exact byte conventions
    let ind = fs::read_to_string(dir.join(crate::schema::IND_MON.file)).unwrap();
    let nd = ind
        .lines()
        .find(|l| l.contains(",\"ND\","))
        .expect("an ND row");
    assert!(
        nd.contains(",\"ND\",NaN,\""),
        "ND result must be a bare NaN: {nd}"
    );
    let es = fs::read_to_string(dir.join(crate::schema::ESMR.file)).unwrap();
    let l = es.lines().nth(1).unwrap();
    assert!(l.starts_with("\"Region "), "{l}");
    assert!(l.contains(",NA,") || l.contains("\"NaN\""), "{l}");
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let bytes = fs::read(path).unwrap();
    let body = bytes.strip_prefix(BOM).unwrap_or(&bytes).to_vec();
    let mut rd = csv::ReaderBuilder::new().from_reader(body.as_slice());
    let h = rd.headers().unwrap().iter().map(str::to_string).collect();
    (h, rd.records().map(|r| r.unwrap()).collect())
}

fn col(h: &[String], name: &str) -> usize {
    h.iter()
        .position(|x| x == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn wdid_ok(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 6 || !b[0].is_ascii_digit() || !(b[1] == b' ' || b[1].is_ascii_uppercase()) {
        return false;
    }
    if !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
        return false;
    }
    let rest = &b[4..];
    let letters = rest.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let digits = &rest[letters..];
    letters >= 1 && (5..=6).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
}

#[test]
fn referential_consistency() {
    let dir = &*Sample::new("refs");
    // facilities: (APP_ID, WDID) -> PLACE fields
    let mut keys: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut bad_wdid = 0;
    let mut n_fac = 0;
    for (spec, name_col) in [
        (&crate::schema::IND_FAC, "FACILITY_NAME"),
        (&crate::schema::CON_FAC, "SITE_NAME"),
    ] {
        let (h, rows) = read_csv(&dir.join(spec.file));
        let (a, w, n) = (col(&h, "APP_ID"), col(&h, "WDID"), col(&h, name_col));
        for r in &rows {
            n_fac += 1;
            if !wdid_ok(&r[w]) {
                bad_wdid += 1;
            }
            keys.entry((r[a].to_string(), r[w].to_string()))
                .or_default()
                .insert(r[n].to_string());
        }
    }
    assert!(
        bad_wdid * 50 < n_fac,
        "too many malformed WDIDs: {bad_wdid} of {n_fac}"
    );

    let (ih, insp) = read_csv(&dir.join(crate::schema::INSPECTIONS.file));
    let insp_ids: BTreeSet<String> = insp
        .iter()
        .map(|r| r[col(&ih, "INSPECTION_ID")].to_string())
        .collect();
    for spec in [
        &crate::schema::IND_MON,
        &crate::schema::CON_MON,
        &crate::schema::VIOLATIONS,
        &crate::schema::ENFORCEMENT,
        &crate::schema::INSPECTIONS,
    ] {
        let (h, rows) = read_csv(&dir.join(spec.file));
        let (a, w) = (col(&h, "APP_ID"), col(&h, "WDID"));
        for r in &rows {
            let k = (r[a].to_string(), r[w].to_string());
            let names = keys.get(&k).unwrap_or_else(|| {
                panic!(
                    "{}: ({}, {}) is not a generated facility",
                    spec.file, k.0, k.1
                )
            });
            if let Some(pn) = h.iter().position(|x| x == "PLACE_NAME") {
                let p = &r[pn];
                assert!(
                    p == "NA" || names.contains(p),
                    "{}: PLACE_NAME {p:?} not from facility {k:?}",
                    spec.file
                );
            }
        }
    }
    // violations from inspections point at generated inspection ids, and the counts agree
    let (vh, viol) = read_csv(&dir.join(crate::schema::VIOLATIONS.file));
    let (src, sid, vid) = (
        col(&vh, "VIOLATION_SOURCE"),
        col(&vh, "VIOLATION_SOURCE_ID"),
        col(&vh, "VIOLATION_ID"),
    );
    let mut per_insp: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &viol {
        if &r[src] == "Inspection" {
            assert!(
                insp_ids.contains(&r[sid]),
                "violation source id {} is not an inspection",
                &r[sid]
            );
            per_insp
                .entry(r[sid].to_string())
                .or_default()
                .insert(r[vid].to_string());
        }
    }
    let cnt = col(&ih, "COUNT_OF_VIOLATIONS");
    for r in &insp {
        let n: f64 = r[cnt].parse().unwrap();
        let have = per_insp
            .get(&r[col(&ih, "INSPECTION_ID")])
            .map_or(0, BTreeSet::len);
        assert_eq!(
            n as usize,
            have,
            "inspection {} count",
            &r[col(&ih, "INSPECTION_ID")]
        );
    }
    // monitoring: REPORTING_YEAR is the July-June year of SAMPLE_DATE; a SAMPLE_ID has one date
    let (mh, mon) = read_csv(&dir.join(crate::schema::IND_MON.file));
    let (ry, sd, si) = (
        col(&mh, "REPORTING_YEAR"),
        col(&mh, "SAMPLE_DATE"),
        col(&mh, "SAMPLE_ID"),
    );
    let mut sample_dates: BTreeMap<String, String> = BTreeMap::new();
    let mut nd = 0;
    for r in &mon {
        let d = chrono::NaiveDate::parse_from_str(&r[sd], "%Y-%m-%d").unwrap();
        assert_eq!(
            r[ry].parse::<i32>().unwrap(),
            crate::util::reporting_year(d)
        );
        let prev = sample_dates
            .entry(r[si].to_string())
            .or_insert_with(|| r[sd].to_string());
        assert_eq!(prev, &r[sd]);
        if &r[col(&mh, "RESULT_QUALIFIER")] == "ND" {
            nd += 1;
            assert_eq!(&r[col(&mh, "RESULT")], "NaN");
            assert_ne!(&r[col(&mh, "MDL")], "NaN");
        }
    }
    let share = nd as f64 / mon.len() as f64;
    assert!((0.15..0.45).contains(&share), "ND share {share}");
}

#[test]
fn row_counts_follow_scale() {
    let dir = &*Sample::new("counts");
    let manifest = fs::read_to_string(dir.join("MANIFEST.json")).unwrap();
    for (spec, base) in crate::BASE {
        let bytes = fs::read(dir.join(spec.file)).unwrap();
        let (_, rows) = read_csv(&dir.join(spec.file));
        let want = crate::scaled(base, 0.001);
        // facility, monitoring and eSMR files are exact; compliance files can carry a few exact duplicate rows
        assert!(
            rows.len() as u64 >= want && rows.len() as u64 <= want + want / 50 + 1,
            "{}: {} rows, want {want}",
            spec.file,
            rows.len()
        );
        assert!(manifest.contains(&format!(
            "\"file\": \"{}\", \"dataset\": \"{}\", \"rows\": {}",
            spec.file,
            spec.dataset,
            rows.len()
        )));
        assert!(bytes.len() > 100);
    }
}

#[test]
fn hostile_cases_parse_as_documented() {
    let s = Sample::new("hostile");
    let h = s.join("hostile");
    let exp = fs::read_to_string(h.join("EXPECTED.json")).unwrap();
    for f in [
        "truncated.csv",
        "unterminated_quote.csv",
        "embedded_newline.csv",
        "wrong_delimiter.csv",
        "missing_column.csv",
        "extra_column.csv",
        "duplicate_keys.csv",
        "junk_wdids.csv",
        "bad_dates.csv",
        "time_24.csv",
        "fffd.csv",
        "empty.csv",
        "header_only.csv",
    ] {
        assert!(h.join(f).exists(), "{f} missing");
        assert!(
            exp.contains(&format!("\"{f}\"")),
            "{f} not in EXPECTED.json"
        );
    }
    let recs = |f: &str| -> Vec<Result<csv::StringRecord, csv::Error>> {
        let b = fs::read(h.join(f)).unwrap();
        let b = b.strip_prefix(BOM).unwrap_or(&b).to_vec();
        csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(b.as_slice())
            .into_records()
            .collect::<Vec<_>>()
    };
    let t = recs("truncated.csv");
    assert_eq!(t.len(), 11);
    assert!(t[..10].iter().all(|r| r.as_ref().unwrap().len() == 38));
    assert_eq!(t[10].as_ref().unwrap().len(), 10);
    let u = recs("unterminated_quote.csv");
    let lens: Vec<usize> = u.iter().map(|r| r.as_ref().unwrap().len()).collect();
    assert_eq!(lens.len(), 12);
    assert_eq!(lens[5], 37);
    assert_eq!(lens.iter().filter(|n| **n == 38).count(), 11);
    let e = recs("embedded_newline.csv");
    assert_eq!(e.len(), 10);
    assert!(e[3].as_ref().unwrap()[11].contains('\n'));
    assert_eq!(recs("duplicate_keys.csv").len(), 8);
    assert_eq!(
        recs("time_24.csv")
            .iter()
            .filter(|r| &r.as_ref().unwrap()[13] == "24:00")
            .count(),
        2
    );
    assert_eq!(fs::read(h.join("empty.csv")).unwrap().len(), 0);
    assert_eq!(recs("header_only.csv").len(), 0);
    assert_eq!(recs("missing_column.csv")[0].as_ref().unwrap().len(), 37);
    assert_eq!(recs("extra_column.csv")[0].as_ref().unwrap().len(), 39);
    assert!(
        fs::read_to_string(h.join("fffd.csv"))
            .unwrap()
            .contains('\u{FFFD}')
    );
}

/// The next week of a generated set: every file parses (csv crate) to the base's records, less
/// the removed ones, with the changed ones differing in one field and the added ones after the
/// row they copy, all counted as the delta says; the same seed writes the same bytes.
#[test]
fn next_week_changes_adds_and_removes_what_its_delta_says() {
    let base = Sample::new("week-base");
    let next = tmp("week-next");
    let deltas = crate::week::write(&base, &next, 3).unwrap();
    let records = |p: &Path| -> Vec<Vec<String>> {
        csv::Reader::from_path(p)
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    };
    let (mut changed, mut added, mut removed) = (0, 0, 0);
    for d in &deltas {
        let (old, new) = (
            records(&base.join(d.spec.file)),
            records(&next.join(d.spec.file)),
        );
        assert_eq!(new.len() as u64, d.rows, "{}", d.spec.file);
        assert_eq!(
            new.len() as u64,
            old.len() as u64 - d.removed + d.added,
            "{}",
            d.spec.file
        );
        // As multisets: the new rows not in the base are the changed and the added ones, the
        // base rows not in the new file the changed and the removed ones.
        let mut count: BTreeMap<&Vec<String>, i64> = BTreeMap::new();
        for r in &old {
            *count.entry(r).or_default() += 1;
        }
        for r in &new {
            *count.entry(r).or_default() -= 1;
        }
        let only_old: i64 = count.values().filter(|n| **n > 0).sum();
        let only_new: i64 = -count.values().filter(|n| **n < 0).sum::<i64>();
        assert_eq!(only_new as u64, d.changed + d.added, "{}", d.spec.file);
        assert_eq!(only_old as u64, d.changed + d.removed, "{}", d.spec.file);
        changed += d.changed;
        added += d.added;
        removed += d.removed;
    }
    assert!(changed > 0 && added > 0 && removed > 0);
    let again = tmp("week-again");
    crate::week::write(&base, &again, 3).unwrap();
    for d in &deltas {
        assert_eq!(
            fs::read(next.join(d.spec.file)).unwrap(),
            fs::read(again.join(d.spec.file)).unwrap()
        );
    }
    let _ = fs::remove_dir_all(&next);
    let _ = fs::remove_dir_all(&again);
}
