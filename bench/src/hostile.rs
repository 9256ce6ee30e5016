//! Small malformed / awkward files for importer robustness tests, plus `EXPECTED.json`.

use std::fs;
use std::io;
use std::path::Path;

use crate::facilities::{Dup, Facility, write_industrial};
use crate::out::{BOM, Flavor, Out, push_quoted};
use crate::schema::{IND_FAC, IND_MON};
use crate::util::{Rng, with_fffd};

struct Quarantine {
    line: usize,
    reason: String,
    may_land_flagged: bool,
}

struct Case {
    file: &'static str,
    layout: &'static str,
    rows_total: usize,
    must_land: usize,
    quarantined: Vec<Quarantine>,
    extra: Vec<(&'static str, String)>,
    note: String,
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Header (with BOM) and one line per facility row, each ending in `\n`.
fn lines(facs: &[Facility]) -> io::Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut o = Out::new(Vec::new(), IND_FAC.cols, Flavor::Smarts)?;
    write_industrial(&mut o, facs)?;
    let (buf, _) = o.finish()?;
    let mut it = buf.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec);
    let header = it.next().unwrap_or_default();
    Ok((header, it.collect()))
}

/// Byte offsets of the field starts of a line written in the all-quoted layout (no embedded quotes/newlines).
fn field_starts(line: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut inq = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => inq = !inq,
            b',' if !inq => starts.push(i + 1),
            _ => {}
        }
    }
    starts
}

/// Replace field `k` (0-based) of an all-quoted line with `bytes`.
fn set_field(line: &[u8], k: usize, bytes: &[u8]) -> Vec<u8> {
    let s = field_starts(line);
    let end = if k + 1 < s.len() {
        s[k + 1] - 1
    } else {
        line.len() - 1
    };
    let mut out = line[..s[k]].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&line[end..]);
    out
}

fn remove_field(line: &[u8], k: usize) -> Vec<u8> {
    let s = field_starts(line);
    let mut out = line[..s[k]].to_vec();
    if k + 1 < s.len() {
        out.extend_from_slice(&line[s[k + 1]..]);
    } else {
        out.pop();
        out.push(b'\n');
    }
    out
}

fn quoted(s: &str) -> Vec<u8> {
    let mut b = Vec::new();
    push_quoted(&mut b, s);
    b
}

fn concat(header: &[u8], rows: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for r in rows {
        out.extend_from_slice(r);
    }
    out
}

const NAME: usize = 9; // FACILITY_NAME
const WDID: usize = 2;
const STATUS: usize = 3;
const NOI: usize = 4;

pub fn write(dir: &Path, r: &mut Rng, facs: &[Facility]) -> io::Result<usize> {
    fs::create_dir_all(dir)?;
    let clean: Vec<Facility> = facs
        .iter()
        .filter(|f| {
            f.dup == Dup::None
                && !f.junk_wdid
                && f.name
                    .as_deref()
                    .is_some_and(|n| n.is_ascii() && n.len() >= 6)
        })
        .take(20)
        .cloned()
        .collect();
    let (header, rows) = lines(&clean)?;
    assert!(
        rows.len() >= 12,
        "need at least 12 clean facilities for the hostile cases"
    );
    let mut cases: Vec<Case> = Vec::new();

    // truncated.csv: 10 complete records, then the 11th cut inside its FACILITY_NAME
    {
        let mut body = rows[..10].to_vec();
        let l = &rows[10];
        let s = field_starts(l);
        body.push(l[..s[NAME] + 4].to_vec());
        fs::write(dir.join("truncated.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "truncated.csv",
            layout: IND_FAC.dataset,
            rows_total: 11,
            must_land: 10,
            quarantined: vec![Quarantine { line: 12, reason: "file ends inside record 11 (cut after 3 characters of FACILITY_NAME, inside the quotes, no final newline)".into(), may_land_flagged: false }],
            extra: vec![],
            note: "The last record is partial: 9 complete fields plus an unterminated quoted field at EOF. The Rust csv crate does not error on EOF inside quotes; it returns the partial record with 10 fields (so a field-count check catches it). Strict parsers raise an unterminated-quote error instead. Either way records 1-10 are intact.".into(),
        });
    }

    // unterminated_quote.csv: record 6 loses the closing quote of FACILITY_NAME
    {
        let mut body = rows[..12].to_vec();
        let l = &rows[5];
        let s = field_starts(l);
        let end = s[NAME + 1] - 2; // index of the closing quote of FACILITY_NAME
        let mut bad = l[..end].to_vec();
        bad.extend_from_slice(&l[end + 1..]);
        body[5] = bad;
        fs::write(dir.join("unterminated_quote.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "unterminated_quote.csv",
            layout: IND_FAC.dataset,
            rows_total: 12,
            must_land: 5,
            quarantined: vec![Quarantine { line: 7, reason: "FACILITY_NAME opens a quote that is never closed (the closing quote was removed)".into(), may_land_flagged: false }],
            extra: vec![
                ("rows_after_bad_record", "6".into()),
                ("bad_record_fields_csv_crate", "37".into()),
            ],
            note: "Parser-dependent. The Rust csv crate (csv-core, lenient) ends the quoted section at the next quote, which is the opening quote of FACILITY_ADDRESS, so FACILITY_NAME and FACILITY_ADDRESS merge and record 6 has 37 fields instead of 38; records 7-12 (lines 8-13) then parse normally, so 11 records land. A strict RFC 4180 parser errors at line 7 and may treat the rest of the file as part of one field; only records 1-5 are guaranteed.".into(),
        });
    }

    // embedded_newline.csv: valid CSV, a quoted field contains a line feed
    {
        let mut body = rows[..10].to_vec();
        body[3] = set_field(&rows[3], 11, &quoted("Building 7\nLoading Dock B"));
        fs::write(dir.join("embedded_newline.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "embedded_newline.csv",
            layout: IND_FAC.dataset,
            rows_total: 10,
            must_land: 10,
            quarantined: vec![],
            extra: vec![("physical_lines", "11".into()), ("record_4_lines", "[5, 6]".into())],
            note: "Valid CSV: record 4's FACILITY_ADDRESS_2 is \"Building 7\\nLoading Dock B\" (a quoted LF). Line-based splitting breaks it; a CSV parser must return 10 records.".into(),
        });
    }

    // wrong_delimiter.csv: semicolons
    {
        let semi = |l: &[u8]| -> Vec<u8> {
            let s = field_starts(l);
            let mut out = l.to_vec();
            for &i in &s[1..] {
                out[i - 1] = b';';
            }
            out
        };
        let mut body = vec![semi(&header[BOM.len()..])];
        body.extend(rows[..10].iter().map(|l| semi(l)));
        let mut bytes = BOM.to_vec();
        for b in body {
            bytes.extend_from_slice(&b);
        }
        fs::write(dir.join("wrong_delimiter.csv"), bytes)?;
        cases.push(Case {
            file: "wrong_delimiter.csv",
            layout: IND_FAC.dataset,
            rows_total: 10,
            must_land: 0,
            quarantined: (2..=11).map(|line| Quarantine { line, reason: "separator is ';'".into(), may_land_flagged: false }).collect(),
            extra: vec![("file_rejected", "true".into())],
            note: "Same content with ';' separators (header included). Read with ',' the header is not the expected layout, so the whole file should be rejected; a parser may see 1-2 fields per line (commas inside quoted SIC descriptions split some lines).".into(),
        });
    }

    // missing_column.csv: FACILITY_NAME removed
    {
        let h = remove_field(&header[BOM.len()..], NAME);
        let mut bytes = BOM.to_vec();
        bytes.extend_from_slice(&h);
        for l in &rows[..10] {
            bytes.extend_from_slice(&remove_field(l, NAME));
        }
        fs::write(dir.join("missing_column.csv"), bytes)?;
        cases.push(Case {
            file: "missing_column.csv",
            layout: IND_FAC.dataset,
            rows_total: 10,
            must_land: 10,
            quarantined: vec![],
            extra: vec![("missing_columns", "[\"FACILITY_NAME\"]".into()), ("columns", "37".into())],
            note: "Header and rows lack FACILITY_NAME (37 columns). DATASETS.md says to match columns by name, not position, so the rows can land with FACILITY_NAME null. An importer that treats a missing column as a schema change may reject the whole file instead; it must never load these rows with shifted columns.".into(),
        });
    }

    // extra_column.csv: EXTRA_NOTES appended
    {
        let mut h = header.clone();
        h.pop();
        h.extend_from_slice(b",\"EXTRA_NOTES\"\n");
        let mut body = Vec::new();
        for (i, l) in rows[..10].iter().enumerate() {
            let mut x = l.clone();
            x.pop();
            x.push(b',');
            x.extend_from_slice(&quoted(if i % 3 == 0 { "NA" } else { "added by hand" }));
            x.push(b'\n');
            body.push(x);
        }
        fs::write(dir.join("extra_column.csv"), concat(&h, &body))?;
        cases.push(Case {
            file: "extra_column.csv",
            layout: IND_FAC.dataset,
            rows_total: 10,
            must_land: 10,
            quarantined: vec![],
            extra: vec![("extra_columns", "[\"EXTRA_NOTES\"]".into()), ("columns", "39".into())],
            note: "An unknown trailing column EXTRA_NOTES (39 columns). Columns matched by name: the rows land and EXTRA_NOTES is ignored (or reported as schema drift).".into(),
        });
    }

    // duplicate_keys.csv: record 3's (APP_ID, WDID) repeated in records 4 and 5 with other STATUS/dates
    {
        let mut body = rows[..8].to_vec();
        let base = &rows[2];
        let s = field_starts(base);
        let app = base[s[1]..s[2] - 1].to_vec();
        let wdid = base[s[2]..s[3] - 1].to_vec();
        let mut r4 = set_field(&rows[3], 1, &app);
        r4 = set_field(&r4, WDID, &wdid);
        r4 = set_field(&r4, STATUS, &quoted("Terminated"));
        let mut r5 = set_field(&rows[4], 1, &app);
        r5 = set_field(&r5, WDID, &wdid);
        r5 = set_field(&r5, STATUS, &quoted("Active"));
        r5 = set_field(&r5, NOI, &quoted("2021-03-15"));
        body[3] = r4;
        body[4] = r5;
        fs::write(dir.join("duplicate_keys.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "duplicate_keys.csv",
            layout: IND_FAC.dataset,
            rows_total: 8,
            must_land: 8,
            quarantined: vec![],
            extra: vec![("distinct_app_id_wdid", "6".into()), ("shared_key_lines", "[4, 5, 6]".into())],
            note: "Records 3, 4 and 5 (lines 4-6) share APP_ID and WDID but differ in STATUS and other fields. (APP_ID, WDID) is not unique in the real files (DATASETS.md 2), so all 8 rows are valid input; a facility-level upsert collapses them into 6 facilities, and which row wins must be deterministic.".into(),
        });
    }

    // junk_wdids.csv
    {
        let mut body = rows[..8].to_vec();
        let junk = ["NA", "2 XXIN601201", "5A327021N05"];
        let mut q = Vec::new();
        for (j, k) in [1usize, 3, 5].iter().enumerate() {
            body[*k] = set_field(&rows[*k], WDID, &quoted(junk[j]));
            q.push(Quarantine {
                line: k + 2,
                reason: format!(
                    "WDID {:?} does not match ^\\d[ A-Z]\\d{{2}}[A-Z]+\\d{{5,6}}$",
                    junk[j]
                ),
                may_land_flagged: true,
            });
        }
        fs::write(dir.join("junk_wdids.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "junk_wdids.csv",
            layout: IND_FAC.dataset,
            rows_total: 8,
            must_land: 5,
            quarantined: q,
            extra: vec![],
            note: "Records 2, 4 and 6 carry junk WDIDs seen in the real files (\"NA\" is the portal's missing-text marker). Importer policy decides whether they land with a quality flag (WDID null / kept verbatim) or go to quarantine; they must not be dropped silently or rewritten. The 5 other records must land.".into(),
        });
    }

    // bad_dates.csv
    {
        let mut body = rows[..8].to_vec();
        let bad = ["0201-05-04", "2019-02-30", "13/45/2010"];
        let reasons = [
            "NOI_PROCESSED_DATE 0201-05-04: well-formed ISO but a junk year (the portal really publishes these)",
            "NOI_PROCESSED_DATE 2019-02-30: not a calendar date",
            "NOI_PROCESSED_DATE 13/45/2010: not ISO and not a valid M/D/Y date",
        ];
        let mut q = Vec::new();
        for (j, k) in [1usize, 3, 5].iter().enumerate() {
            body[*k] = set_field(&rows[*k], NOI, &quoted(bad[j]));
            q.push(Quarantine {
                line: k + 2,
                reason: reasons[j].into(),
                may_land_flagged: true,
            });
        }
        fs::write(dir.join("bad_dates.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "bad_dates.csv",
            layout: IND_FAC.dataset,
            rows_total: 8,
            must_land: 5,
            quarantined: q,
            extra: vec![],
            note: "Records 2, 4 and 6 have a bad NOI_PROCESSED_DATE. They may land with the date set to null and a quality flag, or be quarantined; the bad value must not be coerced into a different valid date (e.g. 2019-02-30 -> 2019-03-02). 0201-05-04 parses as year 201 with a permissive parser.".into(),
        });
    }

    // time_24.csv: industrial monitoring layout
    {
        let f = &clean[0];
        let mut o = Out::new(Vec::new(), IND_MON.cols, Flavor::Smarts)?;
        let times = ["24:00", "08:05", "13:30", "24:00", "08:05", "00:00"];
        let params = [
            ("pH", "SU", 7.1, "A4500HB"),
            ("Total Suspended Solids (TSS)", "mg/L", 23.0, "A2540D"),
            ("Zinc, Total", "mg/L", 0.14, "E200.7"),
        ];
        for (i, t) in times.iter().enumerate() {
            let (p, u, v, m) = params[i % 3];
            let d = crate::util::ymd(2024, 12, 10 + i as u32);
            o.t(&f.permit_type);
            o.t(&f.wdid);
            o.id(f.app_id);
            o.n(2024.0);
            o.id(1_300_000 + (i as u64) / 3);
            o.t("Qualifying Storm Event");
            o.t("SP-1");
            o.t("Effluent Monitoring");
            o.na();
            o.nan();
            o.nan();
            o.id(2_800_000 + i as u64);
            o.d(Some(d));
            o.t(t);
            o.d(Some(d));
            o.t(if i % 2 == 0 { "24:00" } else { "06:00" });
            o.t(p);
            o.t("=");
            o.n(v);
            o.t(u);
            o.t(m);
            o.nan();
            o.nan();
            o.d(None);
            o.na();
            o.t(&f.certifier_name);
            o.t("14-JAN-25 02.52.46.523000 PM");
            o.end()?;
        }
        let (bytes, _) = o.finish()?;
        fs::write(dir.join("time_24.csv"), bytes)?;
        cases.push(Case {
            file: "time_24.csv",
            layout: IND_MON.dataset,
            rows_total: 6,
            must_land: 6,
            quarantined: vec![],
            extra: vec![("sample_time_24_lines", "[2, 5]".into())],
            note: "Industrial monitoring layout. SAMPLE_TIME is 24:00 on records 1 and 4 (lines 2 and 5) and DISCHARGE_START_TIME is 24:00 on records 1, 3 and 5; SMARTS really uses 24:00. All rows must land; 24:00 means the end of that day (00:00 of the next day) or is kept as text, never rejected. 08:05 must keep its leading zero.".into(),
        });
    }

    // fffd.csv
    {
        let mut body = Vec::new();
        for (i, l) in rows[..6].iter().enumerate() {
            let name = clean[i].name.clone().unwrap_or_default();
            let mut x = set_field(l, NAME, &quoted(&with_fffd(r, &name)));
            if i % 2 == 0 {
                let op = clean[i]
                    .operator
                    .clone()
                    .unwrap_or_else(|| "Operator".into());
                x = set_field(&x, 8, &quoted(&format!("{op} \u{FFFD}")));
            }
            body.push(x);
        }
        fs::write(dir.join("fffd.csv"), concat(&header, &body))?;
        cases.push(Case {
            file: "fffd.csv",
            layout: IND_FAC.dataset,
            rows_total: 6,
            must_land: 6,
            quarantined: vec![],
            extra: vec![],
            note: "FACILITY_NAME (and OPERATOR_NAME on records 1, 3, 5) contain U+FFFD, valid UTF-8 (EF BF BD). All rows land; the text is stored as-is (the real files carry U+FFFD where a degree sign or accent was lost).".into(),
        });
    }

    // empty.csv and header_only.csv
    fs::write(dir.join("empty.csv"), b"")?;
    cases.push(Case {
        file: "empty.csv",
        layout: IND_FAC.dataset,
        rows_total: 0,
        must_land: 0,
        quarantined: vec![],
        extra: vec![("bytes", "0".into()), ("file_rejected", "true".into())],
        note: "0 bytes: no BOM, no header. Treat as a failed download (reject); it must not be read as 'the dataset now has zero rows'.".into(),
    });
    fs::write(dir.join("header_only.csv"), &header)?;
    cases.push(Case {
        file: "header_only.csv",
        layout: IND_FAC.dataset,
        rows_total: 0,
        must_land: 0,
        quarantined: vec![],
        extra: vec![],
        note: "BOM and the correct header, no records. A valid file with zero records; whether that may empty the existing table is importer policy (a real portal file is never empty).".into(),
    });

    // EXPECTED.json
    let mut j = String::from(
        "{\n  \"line_numbers\": \"1-based physical lines; line 1 is the header\",\n  \"files\": {\n",
    );
    for (i, c) in cases.iter().enumerate() {
        j.push_str(&format!("    {}: {{\n", json_str(c.file)));
        j.push_str(&format!("      \"layout\": {},\n", json_str(c.layout)));
        j.push_str(&format!("      \"rows_total\": {},\n", c.rows_total));
        j.push_str(&format!(
            "      \"rows_that_must_land\": {},\n",
            c.must_land
        ));
        j.push_str("      \"rows_quarantined\": [");
        for (k, q) in c.quarantined.iter().enumerate() {
            j.push_str(if k == 0 { "\n" } else { ",\n" });
            j.push_str(&format!(
                "        {{\"line\": {}, \"reason\": {}, \"may_land_flagged\": {}}}",
                q.line,
                json_str(&q.reason),
                q.may_land_flagged
            ));
        }
        j.push_str(if c.quarantined.is_empty() {
            "],\n"
        } else {
            "\n      ],\n"
        });
        for (k, v) in &c.extra {
            j.push_str(&format!("      {}: {},\n", json_str(k), v));
        }
        j.push_str(&format!("      \"note\": {}\n", json_str(&c.note)));
        j.push_str(if i + 1 == cases.len() {
            "    }\n"
        } else {
            "    },\n"
        });
    }
    j.push_str("  }\n}\n");
    fs::write(dir.join("EXPECTED.json"), j)?;
    Ok(cases.len())
}
