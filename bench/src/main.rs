//! `generate`: seeded, reproducible generator of California Water Board SMARTS portal CSVs and an eSMR year
//! file, in the published byte formats, for import benchmarks and robustness tests.
//!
//! ```text
//! generate --out DIR [--seed 42] [--scale 1.0] [--hostile] [--real-dir ../shared/data/real]
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
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;

use crate::compliance::Universe;
use crate::out::{Flavor, Out};
use crate::real::Real;
use crate::schema::{
    CON_FAC, CON_MON, ENFORCEMENT, ESMR, FileSpec, IND_FAC, IND_MON, INSPECTIONS, VIOLATIONS,
};
use crate::util::rng_for;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "generate",
    about = "Seeded generator of SMARTS portal CSVs and an eSMR year file"
)]
pub struct Cli {
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Multiplies every row count (minimum 1 row per file).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
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

/// Row counts at scale 1.0.
pub const BASE: [(&FileSpec, u64); 8] = [
    (&IND_FAC, 15_000),
    (&CON_FAC, 80_000),
    (&IND_MON, 5_500_000),
    (&CON_MON, 2_800_000),
    (&VIOLATIONS, 31_000),
    (&ENFORCEMENT, 29_000),
    (&INSPECTIONS, 45_000),
    (&ESMR, 1_200_000),
];

pub fn scaled(base: u64, scale: f64) -> u64 {
    ((base as f64 * scale).round() as u64).max(1)
}

pub struct FileResult {
    pub spec: &'static FileSpec,
    pub rows: u64,
}

fn open(dir: &Path, spec: &FileSpec) -> io::Result<Out<io::BufWriter<fs::File>>> {
    let flavor = if spec.dataset == "esmr" {
        Flavor::Esmr
    } else {
        Flavor::Smarts
    };
    Out::create(&dir.join(spec.file), spec.cols, flavor)
}

/// Creates `spec`'s file in `dir`, fills it with `body` and returns `slot` (its place in the manifest) with the
/// number of rows written.
fn write_file(
    dir: &Path,
    spec: &FileSpec,
    slot: usize,
    body: impl FnOnce(&mut Out<io::BufWriter<fs::File>>) -> io::Result<()>,
) -> io::Result<(usize, u64)> {
    let mut o = open(dir, spec)?;
    body(&mut o)?;
    Ok((slot, o.finish()?.1))
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

    let results: Vec<io::Result<(usize, u64)>> = std::thread::scope(|s| {
        let (real, ind, con, uni, plan) = (&real, &ind, &con, &uni, &plan);
        let mut handles = Vec::new();
        handles.push(s.spawn(move || {
            write_file(dir, &IND_MON, 2, |o| {
                monitoring::write_industrial(
                    o,
                    &mut rng_for(seed, "ind_mon"),
                    real,
                    ind,
                    count(&IND_MON, scale),
                )
            })
        }));
        handles.push(s.spawn(move || {
            write_file(dir, &CON_MON, 3, |o| {
                monitoring::write_construction(
                    o,
                    &mut rng_for(seed, "con_mon"),
                    con,
                    count(&CON_MON, scale),
                )
            })
        }));
        handles.push(s.spawn(move || {
            let n_fac = (1000.0 * scale).round().max(1.0) as usize;
            write_file(dir, &ESMR, 7, |o| {
                esmr::write(
                    o,
                    &mut rng_for(seed, "esmr"),
                    real,
                    n_fac,
                    count(&ESMR, scale),
                )
            })
        }));
        handles.push(
            s.spawn(move || write_file(dir, &IND_FAC, 0, |o| facilities::write_industrial(o, ind))),
        );
        handles.push(s.spawn(move || {
            write_file(dir, &CON_FAC, 1, |o| {
                facilities::write_construction(o, &mut rng_for(seed, "con_fac_write"), real, con)
            })
        }));
        handles.push(s.spawn(move || {
            write_file(dir, &INSPECTIONS, 6, |o| {
                compliance::write_inspections(o, &mut rng_for(seed, "inspections"), uni, plan)
            })
        }));
        handles.push(s.spawn(move || {
            write_file(dir, &VIOLATIONS, 4, |o| {
                compliance::write_violations(o, &mut rng_for(seed, "violations"), uni, plan)
            })
        }));
        handles.push(s.spawn(move || {
            write_file(dir, &ENFORCEMENT, 5, |o| {
                compliance::write_enforcement(o, &mut rng_for(seed, "enforcement"), uni, plan)
            })
        }));
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("generator thread panicked")))
            })
            .collect()
    });
    let mut rows = [0u64; 8];
    for r in results {
        let (i, n) = r?;
        rows[i] = n;
    }

    if cli.hostile {
        // independent of --scale: its own small facility set
        let mut hr = rng_for(seed, "hostile");
        let mut hw = facilities::WdidAlloc::new();
        let hf = facilities::gen_industrial(&mut hr, &real, 200, &mut hw);
        hostile::write(&dir.join("hostile"), &mut hr, &hf)?;
    }

    let files: Vec<FileResult> = BASE
        .iter()
        .zip(rows)
        .map(|((spec, _), rows)| FileResult { spec, rows })
        .collect();
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

/// The manifest's `files` entries, one a line: file, dataset, rows, columns, then `extra`
/// (more members, each after a comma).
fn file_entries(files: &[(&FileSpec, u64, String)]) -> String {
    let mut j = String::new();
    for (i, (spec, rows, extra)) in files.iter().enumerate() {
        j.push_str(&format!(
            "    {{\"file\": {}, \"dataset\": {}, \"rows\": {rows}, \"columns\": {}{extra}}}{}\n",
            json_str(spec.file),
            json_str(spec.dataset),
            spec.cols.len(),
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
        .map(|f| (f.spec, f.rows, String::new()))
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
            spec: d.spec,
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
            (d.spec, d.rows, delta)
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
                eprintln!("{:>10} rows  {}", f.rows, f.spec.file);
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
