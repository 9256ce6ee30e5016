//! Loads the reference benchmarks (`domain::benchmarks`) into `pollutant` and `benchmark`.
//! Idempotent: rows are upserted on the table's natural key, so the migrate step can run it
//! after every deploy.

use crate::domain::benchmarks::{self, Benchmark};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// What a load wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub pollutants: u64,
    pub benchmarks: u64,
}

/// Errors of the reference load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reference benchmarks do not parse: {0}")]
    Reference(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Upserts every pollutant and benchmark of the reference data, in one transaction.
pub async fn load(pool: &PgPool) -> Result<Loaded, LoadError> {
    let all: Vec<Benchmark> = benchmarks::reference().map_err(LoadError::Reference)?;
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for b in &all {
        names.entry(b.pollutant_key).or_insert(&b.pollutant_name);
    }
    let mut tx = pool.begin().await?;
    let mut pollutants = 0;
    for (key, name) in &names {
        let unit = if *key == "ph" { "pH units" } else { "mg/L" };
        pollutants += sqlx::query!("insert into pollutant (key, name, category, canonical_unit) values ($1, $2, $3, $4)
             on conflict (key) do update set category = excluded.category, canonical_unit = excluded.canonical_unit", key, name, benchmarks::category(key), unit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    let mut written = 0;
    for b in &all {
        written += sqlx::query!("insert into benchmark (pollutant_key, benchmark_type, water_type, fraction, value, value_max, unit,
                                    source, source_url, verification, unverified, hardness_dependent,
                                    hardness_equation, test_method, effective_date)
             values ($1, $2, $3, $4, $5::text::numeric, $6::text::numeric, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             on conflict on constraint benchmark_uniq do update
                set value = excluded.value, value_max = excluded.value_max, unit = excluded.unit,
                    source_url = excluded.source_url, verification = excluded.verification,
                    unverified = excluded.unverified, hardness_dependent = excluded.hardness_dependent,
                    hardness_equation = excluded.hardness_equation, test_method = excluded.test_method", b.pollutant_key, &b.benchmark_type, &b.water_type, b.fraction, &b.value, b.value_max.as_deref(), &b.unit, &b.source, b.source_url.as_deref(), &b.verification, b.unverified, b.hardness_dependent, b.hardness_equation.as_deref(), b.test_method.as_deref(), b.effective_date)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(Loaded {
        pollutants,
        benchmarks: written,
    })
}
