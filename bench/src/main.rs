//! `generate`: seeded, reproducible generator of California Water Board SMARTS portal CSVs and the eSMR
//! yearly files, in the published byte formats, for import benchmarks and robustness tests. Scale 1.0 is
//! the size of the real record: about 8.5 million SMARTS rows and 21 million eSMR rows in 21 yearly files
//! (2006 to 2026).
//!
//! ```text
//! generate --out DIR [--seed 42] [--scale 1.0] [--esmr-years 2006-2026] [--hostile] [--real-dir ../shared/data/real]
//! generate --out DIR --next-week-of BASE [--seed 42]   # the next weekly download of BASE (week.rs)
//! ```

mod compliance;
mod esmr;
mod facilities;
mod hostile;
mod monitoring;
mod out;
mod real;
mod schema;
mod util;
mod values;
mod week;

#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;

use crate::compliance::Universe;
use crate::out::{Flavor, Out};
use crate::real::Real;
use crate::schema::{
    CON_FAC, CON_MON, DataFile, ENFORCEMENT, FileSpec, IND_FAC, IND_MON, INSPECTIONS, VIOLATIONS,
};
use crate::util::{parallel, rng_for, workers};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "generate",
    about = "Seeded generator of SMARTS portal CSVs and the eSMR yearly files"
)]
pub struct Cli {
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Multiplies every row count (minimum 1 row per file); 1.0 is the size of the real record.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// The eSMR yearly files written, `FROM-TO` within 2006-2026; each has the rows it has in
    /// the whole set, so a test that needs no history can write one year.
    #[arg(long, default_value = "2006-2026", value_parser = esmr_years)]
    pub esmr_years: RangeInclusive<i32>,
    /// Also write hostile/ (small malformed files) with hostile/EXPECTED.json.
    #[arg(long)]
    pub hostile: bool,
    /// Directory with the real samples (facility names, cities, SIC codes, parameters).
    #[arg(long, default_value = "../shared/data/real")]
    pub real_dir: PathBuf,
    /// Instead of generating, write the next weekly download of the files in this directory
    /// (a generated set): some rows changed, added and removed (see week.rs).
    #[arg(long)]
    pub next_week_of: Option<PathBuf>,
}

/// Row counts of the SMARTS files at scale 1.0, in manifest order (eSMR's: [`esmr::rows`]).
pub const BASE: [(&FileSpec, u64); 7] = [
    (&IND_FAC, 15_000),
    (&CON_FAC, 80_000),
    (&IND_MON, 5_500_000),
    (&CON_MON, 2_800_000),
    (&VIOLATIONS, 31_000),
    (&ENFORCEMENT, 29_000),
    (&INSPECTIONS, 45_000),
];

pub fn scaled(base: u64, scale: f64) -> u64 {
    ((base as f64 * scale).round() as u64).max(1)
}

/// `--esmr-years`: `FROM-TO` (or one year) within [`esmr::YEARS`].
fn esmr_years(s: &str) -> Result<RangeInclusive<i32>, String> {
    let (from, to) = s.split_once('-').unwrap_or((s, s));
    let year = |y: &str| y.trim().parse::<i32>().map_err(|e| format!("{y:?}: {e}"));
    let years = year(from)?..=year(to)?;
    let all = esmr::YEARS;
    if years.is_empty() || years.start() < all.start() || years.end() > all.end() {
        return Err(format!(
            "{s}: want FROM-TO within {}-{}",
            all.start(),
            all.end()
        ));
    }
    Ok(years)
}

pub struct FileResult {
    pub file: DataFile,
    pub rows: u64,
}

/// Creates `file` in `dir`, fills it with `body` and returns the number of rows written.
fn write_file(
    dir: &Path,
    file: &DataFile,
    body: impl FnOnce(&mut Out<io::BufWriter<fs::File>>) -> io::Result<()>,
) -> io::Result<u64> {
    let flavor = if file.spec.dataset == "esmr" {
        Flavor::Esmr
    } else {
        Flavor::Smarts
    };
    let mut o = Out::create(&dir.join(&file.name), file.spec.cols, flavor)?;
    body(&mut o)?;
    Ok(o.finish()?.1)
}

fn count(spec: &FileSpec, scale: f64) -> u64 {
    let base = BASE
        .iter()
        .find(|(s, _)| s.file == spec.file)
        .map(|(_, n)| *n)
        .unwrap_or(1);
    scaled(base, scale)
}

/// Generates every file into `cli.out`; returns per-file row counts in manifest order.
pub fn run(cli: &Cli) -> io::Result<Vec<FileResult>> {
    fs::create_dir_all(&cli.out)?;
    let real = Real::load(&cli.real_dir);
    let seed = cli.seed;
    let scale = cli.scale;
    let dir = cli.out.as_path();

    let mut wd = facilities::WdidAlloc::new();
    let ind = facilities::gen_industrial(
        &mut rng_for(seed, "ind_fac"),
        &real,
        count(&IND_FAC, scale) as usize,
        &mut wd,
    );
    let con = facilities::gen_construction(
        &mut rng_for(seed, "con_fac"),
        &real,
        count(&CON_FAC, scale) as usize,
        &mut wd,
    );
    let uni = Universe {
        ind: &ind,
        con: &con,
    };
    let plan = compliance::plan(
        &mut rng_for(seed, "compliance_plan"),
        &uni,
        count(&INSPECTIONS, scale),
        count(&VIOLATIONS, scale),
        count(&ENFORCEMENT, scale),
    );

    let esmr = esmr::universe(&mut rng_for(seed, "esmr"), &real, esmr::facilities(scale));
    // Newest (largest) year first, so that the last file a worker starts is a small one.
    let years: Vec<i32> = cli.esmr_years.clone().rev().collect();

    let (smarts_rows, esmr_files) = std::thread::scope(|s| {
        let (real, ind, con, uni, plan) = (&real, &ind, &con, &uni, &plan);
        let smarts = DataFile::smarts;
        // In manifest order (BASE's).
        let handles = [
            s.spawn(move || {
                write_file(dir, &smarts(&IND_FAC), |o| {
                    facilities::write_industrial(o, ind)
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&CON_FAC), |o| {
                    facilities::write_construction(
                        o,
                        &mut rng_for(seed, "con_fac_write"),
                        real,
                        con,
                    )
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&IND_MON), |o| {
                    monitoring::write_industrial(
                        o,
                        &mut rng_for(seed, "ind_mon"),
                        real,
                        ind,
                        count(&IND_MON, scale),
                    )
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&CON_MON), |o| {
                    monitoring::write_construction(
                        o,
                        &mut rng_for(seed, "con_mon"),
                        con,
                        count(&CON_MON, scale),
                    )
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&VIOLATIONS), |o| {
                    compliance::write_violations(o, &mut rng_for(seed, "violations"), uni, plan)
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&ENFORCEMENT), |o| {
                    compliance::write_enforcement(o, &mut rng_for(seed, "enforcement"), uni, plan)
                })
            }),
            s.spawn(move || {
                write_file(dir, &smarts(&INSPECTIONS), |o| {
                    compliance::write_inspections(o, &mut rng_for(seed, "inspections"), uni, plan)
                })
            }),
        ];
        // Each year has a generator of its own: its file is the same whichever years are written.
        let esmr_files = parallel(&years, workers(), |&year| {
            let file = DataFile::esmr(year);
            let rows = write_file(dir, &file, |o| {
                esmr::write_year(
                    o,
                    &mut rng_for(seed, &format!("esmr:{year}")),
                    &esmr,
                    year,
                    esmr::rows(year, scale),
                )
            })?;
            Ok(FileResult { file, rows })
        });
        let smarts_rows: Vec<io::Result<u64>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("generator thread panicked")))
            })
            .collect();
        (smarts_rows, esmr_files)
    });
    let mut files = BASE
        .iter()
        .zip(smarts_rows)
        .map(|((spec, _), rows)| {
            Ok(FileResult {
                file: DataFile::smarts(spec),
                rows: rows?,
            })
        })
        .collect::<io::Result<Vec<FileResult>>>()?;
    files.extend(esmr_files?.into_iter().rev());

    if cli.hostile {
        // independent of --scale: its own small facility set
        let mut hr = rng_for(seed, "hostile");
        let mut hw = facilities::WdidAlloc::new();
        let hf = facilities::gen_industrial(&mut hr, &real, 200, &mut hw);
        hostile::write(&dir.join("hostile"), &mut hr, &hf)?;
    }

    write_manifest(cli, &real, &files)?;
    Ok(files)
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The manifest's `files` entries, one a line: file, dataset, rows, columns, the `scope` of an
/// eSMR yearly file (its sampling year, as the sync scopes it), then `extra` (more members, each
/// after a comma).
fn file_entries(files: &[(&DataFile, u64, String)]) -> String {
    let mut j = String::new();
    for (i, (file, rows, extra)) in files.iter().enumerate() {
        let scope = file
            .year
            .map_or(String::new(), |y| format!(", \"scope\": \"{y}\""));
        j.push_str(&format!(
            "    {{\"file\": {}, \"dataset\": {}, \"rows\": {rows}, \"columns\": {}{scope}{extra}}}{}\n",
            json_str(&file.name),
            json_str(file.spec.dataset),
            file.spec.cols.len(),
            if i + 1 == files.len() { "" } else { "," }
        ));
    }
    j
}

fn write_manifest(cli: &Cli, real: &Real, files: &[FileResult]) -> io::Result<()> {
    let mut j = String::from("{\n  \"generator\": \"bench/generate\",\n");
    j.push_str(&format!(
        "  \"seed\": {},\n  \"scale\": {},\n",
        cli.seed, cli.scale
    ));
    j.push_str("  \"real_sources\": [");
    for (i, s) in real.sources.iter().enumerate() {
        j.push_str(if i == 0 { "\n    " } else { ",\n    " });
        j.push_str(&json_str(s));
    }
    j.push_str("\n  ],\n  \"files\": [\n");
    let entries: Vec<_> = files
        .iter()
        .map(|f| (&f.file, f.rows, String::new()))
        .collect();
    j.push_str(&file_entries(&entries));
    j.push_str("  ]");
    if cli.hostile {
        j.push_str(
            ",\n  \"hostile\": {\"dir\": \"hostile\", \"expected\": \"hostile/EXPECTED.json\"}",
        );
    }
    j.push_str("\n}\n");
    fs::write(cli.out.join("MANIFEST.json"), j)
}

/// Writes the next week of `base` into `cli.out`, with a manifest whose files carry their
/// `delta` (rows changed, added and removed against `base`).
fn next_week(cli: &Cli, base: &Path) -> io::Result<Vec<FileResult>> {
    // The base must be a generated set (or an earlier next week): its files are the ones evolved.
    let base_manifest = fs::read_to_string(base.join("MANIFEST.json"))?;
    if !base_manifest.contains("\"generator\": \"bench/generate") {
        return Err(io::Error::other(format!(
            "{} is not a generated set",
            base.display()
        )));
    }
    let deltas = week::write(base, &cli.out, cli.seed)?;
    let files: Vec<FileResult> = deltas
        .iter()
        .map(|d| FileResult {
            file: d.file.clone(),
            rows: d.rows,
        })
        .collect();
    let mut j = String::from("{\n  \"generator\": \"bench/generate --next-week-of\",\n");
    j.push_str(&format!(
        "  \"seed\": {},\n  \"base\": {},\n  \"files\": [\n",
        cli.seed,
        json_str(&base.display().to_string())
    ));
    let entries: Vec<_> = deltas
        .iter()
        .map(|d| {
            let delta = format!(
                ", \"delta\": {{\"changed\": {}, \"added\": {}, \"removed\": {}}}",
                d.changed, d.added, d.removed
            );
            (&d.file, d.rows, delta)
        })
        .collect();
    j.push_str(&file_entries(&entries));
    j.push_str("  ]\n}\n");
    fs::write(cli.out.join("MANIFEST.json"), j)?;
    Ok(files)
}

fn main() {
    let cli = Cli::parse();
    let t0 = Instant::now();
    let done = match &cli.next_week_of {
        Some(base) => next_week(&cli, base),
        None => run(&cli),
    };
    match done {
        Ok(files) => {
            for f in &files {
                eprintln!("{:>10} rows  {}", f.rows, f.file.name);
            }
            eprintln!(
                "done in {:.1}s -> {}",
                t0.elapsed().as_secs_f64(),
                cli.out.display()
            );
        }
        Err(e) => {
            eprintln!("generate: {e}");
            std::process::exit(1);
        }
    }
}
