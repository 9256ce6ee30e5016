use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::out::BOM;
use crate::schema::{ALL, DataFile, FileSpec, Kind};
use crate::{Cli, FileResult, esmr, run};

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

fn cli(dir: &Path, seed: u64, hostile: bool) -> Cli {
    Cli {
        out: dir.to_path_buf(),
        seed,
        scale: 0.001,
        esmr_years: esmr::YEARS,
        hostile,
        real_dir: shared_data().join("real"),
        next_week_of: None,
    }
}

fn gen_into(dir: &Path, seed: u64, hostile: bool) -> Vec<FileResult> {
    run(&cli(dir, seed, hostile)).expect("generation failed")
}

/// A small generated data set (every eSMR year), removed when dropped.
struct Sample {
    dir: PathBuf,
    files: Vec<FileResult>,
}

impl Sample {
    fn new(name: &str) -> Sample {
        let dir = tmp(name);
        let files = gen_into(&dir, 7, true);
        Sample { dir, files }
    }

    /// The generated files of `dataset`.
    fn of(&self, dataset: &str) -> Vec<&FileResult> {
        self.files
            .iter()
            .filter(|f| f.file.spec.dataset == dataset)
            .collect()
    }
}

impl std::ops::Deref for Sample {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
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
    let years = esmr::YEARS.count();
    assert!(
        fa.len() >= crate::BASE.len() + years + 1 + 14,
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
    let sample = Sample::new("headers");
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
    }
    // every file on disk starts with BOM + the quoted header
    for f in &sample.files {
        let bytes = fs::read(sample.join(&f.file.name)).unwrap();
        let first = bytes.split(|b| *b == b'\n').next().unwrap();
        let want: Vec<String> = f
            .file
            .spec
            .cols
            .iter()
            .map(|c| format!("\"{}\"", c.0))
            .collect();
        let mut expect = BOM.to_vec();
        expect.extend_from_slice(want.join(",").as_bytes());
        assert_eq!(first, expect.as_slice(), "{} header line", f.file.name);
    }
    // the eSMR header is byte-identical to the real 2025 header
    let real =
        fs::read(shared_data().join("real/stormwater-watch/esmr_columns_header.txt")).unwrap();
    let ours = fs::read(sample.join(DataFile::esmr(2025).name)).unwrap();
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
    let sample = Sample::new("quoting");
    let dir = &*sample;
    for generated in &sample.files {
        let (spec, file) = (generated.file.spec, &generated.file.name);
        let bytes = fs::read(dir.join(file)).unwrap();
        assert!(bytes.starts_with(BOM), "{file} lacks the BOM");
        assert!(!bytes.contains(&b'\r'), "{file} has CR");
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
                "{file}: wrong field count in {:?}",
                String::from_utf8_lossy(line)
            );
            for ((v, q), (name, kind)) in f.iter().zip(spec.cols) {
                let ctx = || format!("{file} {name}={:?} quoted={q}", String::from_utf8_lossy(v));
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
        assert!(rows > 0, "{file} is empty");
        if spec.cols.iter().any(|c| c.1 == Kind::Num) && rows > 20 {
            assert!(seen_nan, "{file}: no missing number seen");
        }
        assert!(seen_na || rows < 20, "{file}: no missing text seen");
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
    let es = fs::read_to_string(dir.join(DataFile::esmr(2025).name)).unwrap();
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
    let sample = Sample::new("counts");
    let dir = &*sample;
    let manifest = fs::read_to_string(dir.join("MANIFEST.json")).unwrap();
    for f in &sample.files {
        let name = &f.file.name;
        let bytes = fs::read(dir.join(name)).unwrap();
        let (_, rows) = read_csv(&dir.join(name));
        let want = match f.file.year {
            Some(year) => esmr::rows(year, 0.001),
            None => crate::count(f.file.spec, 0.001),
        };
        // facility, monitoring and eSMR files are exact; compliance files can carry a few exact duplicate rows
        assert!(
            rows.len() as u64 >= want && rows.len() as u64 <= want + want / 50 + 1,
            "{name}: {} rows, want {want}",
            rows.len()
        );
        let scope = f
            .file
            .year
            .map_or(String::new(), |y| format!(", \"scope\": \"{y}\""));
        assert!(
            manifest.contains(&format!(
                "\"file\": \"{name}\", \"dataset\": \"{}\", \"rows\": {}, \"columns\": {}{scope}}}",
                f.file.spec.dataset,
                rows.len(),
                f.file.spec.cols.len()
            )),
            "{name} in the manifest"
        );
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
    assert_eq!(
        deltas.iter().map(|d| &d.file.name).collect::<Vec<_>>(),
        base.files.iter().map(|f| &f.file.name).collect::<Vec<_>>(),
        "every base file, in manifest order"
    );
    for d in &deltas {
        let name = &d.file.name;
        let (old, new) = (records(&base.join(name)), records(&next.join(name)));
        assert_eq!(new.len() as u64, d.rows, "{name}");
        assert_eq!(
            new.len() as u64,
            old.len() as u64 - d.removed + d.added,
            "{name}"
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
        assert_eq!(only_new as u64, d.changed + d.added, "{name}");
        assert_eq!(only_old as u64, d.changed + d.removed, "{name}");
        changed += d.changed;
        added += d.added;
        removed += d.removed;
    }
    assert!(changed > 0 && added > 0 && removed > 0);
    let again = tmp("week-again");
    crate::week::write(&base, &again, 3).unwrap();
    for d in &deltas {
        assert_eq!(
            fs::read(next.join(&d.file.name)).unwrap(),
            fs::read(again.join(&d.file.name)).unwrap()
        );
    }
    let _ = fs::remove_dir_all(&next);
    let _ = fs::remove_dir_all(&again);
}

/// eSMR as the publisher splits it: one file per sampling year 2006..2026, every row sampled in
/// its file's year, the files growing toward recent years, the same facilities (place ids) and
/// locations reporting across years, and the real record's size at scale 1.0.
#[test]
fn esmr_is_one_file_per_sampling_year() {
    let sample = Sample::new("esmr-years");
    let files = sample.of("esmr");
    let years: Vec<i32> = files.iter().map(|f| f.file.year.unwrap()).collect();
    assert_eq!(years, (2006..=2026).collect::<Vec<_>>());
    // place of every (facility, location code): the same in every year
    let mut places: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut facilities: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let year = f.file.year.unwrap();
        assert_eq!(
            f.file.name,
            format!("esmr-analytical-export_year-{year}.csv")
        );
        let (h, rows) = read_csv(&sample.join(&f.file.name));
        assert_eq!(rows.len() as u64, f.rows);
        let (date, fac, loc, place, report) = (
            col(&h, "sampling_date"),
            col(&h, "facility_place_id"),
            col(&h, "location"),
            col(&h, "location_place_id"),
            col(&h, "report_name"),
        );
        for r in &rows {
            assert_eq!(&r[date][..4], year.to_string(), "{}: {:?}", f.file.name, r);
            assert!(r[report].ends_with(&year.to_string()), "{:?}", &r[report]);
            places
                .entry((r[fac].to_string(), r[loc].to_string()))
                .or_default()
                .insert(r[place].to_string());
            facilities
                .entry(year)
                .or_default()
                .insert(r[fac].to_string());
        }
    }
    assert!(
        places.values().all(|p| p.len() == 1),
        "a location keeps its place id"
    );
    let all: BTreeSet<&String> = facilities.values().flatten().collect();
    assert!(all.len() <= esmr::facilities(0.001));
    let shared = facilities[&2024].intersection(&facilities[&2025]).count();
    assert!(
        shared * 2 > facilities[&2025].len(),
        "most 2025 facilities reported in 2024"
    );
    // rows grow toward recent years (2026 is a partial year)
    let rows: Vec<u64> = files.iter().map(|f| f.rows).collect();
    assert!(rows.windows(2).all(|w| w[1] * 10 >= w[0] * 9), "{rows:?}");
    assert!(rows[19] > rows[0] * 3, "{rows:?}");

    // The plan at scale 1.0: the 2025 file the size of the real one, 20+ million rows in all.
    let planned: Vec<u64> = esmr::YEARS.map(|y| esmr::rows(y, 1.0)).collect();
    assert!(
        planned.windows(2).take(19).all(|w| w[1] > w[0]),
        "{planned:?}"
    );
    assert!(planned[19] > planned[0] * 3, "{planned:?}");
    assert!(planned.iter().sum::<u64>() >= 20_000_000, "{planned:?}");
    assert_eq!(esmr::facilities(1.0), 2_000);
    assert!(esmr::facilities(0.0001) >= 5);
}

/// `--esmr-years` writes only those years, each the same bytes as in the whole set.
#[test]
fn esmr_years_choose_the_files_and_keep_their_content() {
    let whole = Sample::new("esmr-whole");
    let dir = tmp("esmr-two-years");
    let cli = Cli {
        esmr_years: 2024..=2025,
        ..cli(&dir, 7, false)
    };
    let files = run(&cli).unwrap();
    let esmr: Vec<&FileResult> = files
        .iter()
        .filter(|f| f.file.spec.dataset == "esmr")
        .collect();
    assert_eq!(
        esmr.iter().map(|f| f.file.year).collect::<Vec<_>>(),
        [Some(2024), Some(2025)]
    );
    for f in esmr {
        assert_eq!(
            fs::read(dir.join(&f.file.name)).unwrap(),
            fs::read(whole.join(&f.file.name)).unwrap(),
            "{}",
            f.file.name
        );
    }
    let manifest = fs::read_to_string(dir.join("MANIFEST.json")).unwrap();
    assert_eq!(manifest.matches("\"dataset\": \"esmr\"").count(), 2);
    assert!(!dir.join(DataFile::esmr(2023).name).exists());
    let _ = fs::remove_dir_all(&dir);

    assert_eq!(crate::esmr_years("2025-2025"), Ok(2025..=2025));
    assert_eq!(crate::esmr_years("2019"), Ok(2019..=2019));
    for bad in ["2005-2025", "2025-2027", "2025-2024", "x-2025"] {
        assert!(crate::esmr_years(bad).is_err(), "{bad}");
    }
}
