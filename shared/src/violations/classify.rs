//! Writes `parameter_map` and `unit_map`: every distinct published parameter name and unit
//! spelling the engine is about to read, classified once in Rust (`domain::pollutant`,
//! `domain::units`) so that the computation itself can stay set-based SQL.

use crate::domain::pollutant::{self, Fraction};
use crate::domain::units::{self, Unit};
use sqlx::{Postgres, Transaction};

/// Bump when `domain::pollutant` or `domain::units` change meaning: every name is classified
/// again and the engine recomputes everything (the version is part of its fingerprint).
pub const ENGINE_VERSION: i32 = 2;

/// Names and units classified in this run.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Classified {
    pub parameters: usize,
    pub parameters_mapped: usize,
    pub units: usize,
    pub units_unknown: usize,
}

fn fraction_label(f: Fraction) -> &'static str {
    match f {
        Fraction::Total => "total",
        Fraction::TotalRecoverable => "total_recoverable",
        Fraction::Dissolved => "dissolved",
        Fraction::Unspecified => "unspecified",
    }
}

/// `(kind, factor to mg/L, canonical spelling)` of a unit as `unit_map` stores it.
pub fn unit_row(raw: &str) -> (&'static str, Option<f64>, Option<&'static str>) {
    match units::parse_unit(raw) {
        Some(Unit::MassConc { to_mg_per_l }) => ("mass", Some(to_mg_per_l), Some("mg/L")),
        Some(Unit::Ph) => ("ph", None, Some("pH units")),
        Some(Unit::Other(c)) => ("other", None, Some(c)),
        None => ("unknown", None, None),
    }
}

/// The source tables whose `parameter` / `units` columns the engine reads, with the column
/// that marks rows changed after a watermark.
const SOURCES: &[&str] = &[
    "smarts_industrial_monitoring",
    "smarts_construction_monitoring",
    "esmr_sample",
];

/// Distinct values of `table.column` in rows changed after `after_run` (all rows when `None`)
/// that `map.key` does not hold at [`ENGINE_VERSION`].
async fn unclassified(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    column: &str,
    map: &str,
    key: &str,
    after_run: Option<i64>,
) -> Result<Vec<String>, sqlx::Error> {
    // Runtime SQL: table and column come from the classifier's compile-time list of sources.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select distinct t.{column} from {table} t
         where t.{column} is not null
           and ($2::bigint is null or t.changed_run_id > $2 or t.withdrawn_run_id > $2)
           and not exists (select 1 from {map} m
                           where m.{key} = t.{column} and m.engine_version = $1)"
    )))
    .bind(ENGINE_VERSION)
    .bind(after_run)
    .fetch_all(&mut **tx)
    .await
}

/// Classifies the names and units of rows changed after `after_run` (all rows when `None`)
/// that `parameter_map` / `unit_map` do not hold at [`ENGINE_VERSION`].
pub async fn refresh(
    tx: &mut Transaction<'_, Postgres>,
    after_run: Option<i64>,
) -> Result<Classified, sqlx::Error> {
    let mut out = Classified::default();
    for table in SOURCES {
        let names = unclassified(
            tx,
            table,
            "parameter",
            "parameter_map",
            "parameter",
            after_run,
        )
        .await?;
        let (mut params, mut keys, mut fractions) = (vec![], vec![], vec![]);
        for n in names {
            let m = pollutant::classify(&n);
            out.parameters += 1;
            out.parameters_mapped += usize::from(m.is_some());
            keys.push(m.map(|m| m.key));
            fractions.push(m.map(|m| fraction_label(m.fraction)));
            params.push(n);
        }
        sqlx::query!(
            "insert into parameter_map (parameter, pollutant_key, fraction, engine_version)
             select * , $4 from unnest($1::text[], $2::text[], $3::text[])
             on conflict (parameter) do update
                set pollutant_key = excluded.pollutant_key, fraction = excluded.fraction,
                    engine_version = excluded.engine_version, classified_at = now()",
            &params,
            &keys as _,
            &fractions as _,
            ENGINE_VERSION
        )
        .execute(&mut **tx)
        .await?;

        let spellings = unclassified(tx, table, "units", "unit_map", "unit", after_run).await?;
        upsert_units(tx, spellings, &mut out).await?;
    }
    // The benchmarks' own units ('ug/L', 'mg/L as N', 'pH units'): the engine converts them too.
    let benchmark_units: Vec<String> = sqlx::query_scalar!(
        "select distinct b.unit from benchmark b
         where not exists (select 1 from unit_map u
                           where u.unit = b.unit and u.engine_version = $1)",
        ENGINE_VERSION
    )
    .fetch_all(&mut **tx)
    .await?;
    upsert_units(tx, benchmark_units, &mut out).await?;
    Ok(out)
}

/// Classifies `spellings` into `unit_map`, counting them in `out`.
async fn upsert_units(
    tx: &mut Transaction<'_, Postgres>,
    spellings: Vec<String>,
    out: &mut Classified,
) -> Result<(), sqlx::Error> {
    let (mut raw, mut kinds, mut factors, mut canon) = (vec![], vec![], vec![], vec![]);
    for u in spellings {
        let (kind, factor, canonical) = unit_row(&u);
        out.units += 1;
        out.units_unknown += usize::from(kind == "unknown");
        kinds.push(kind);
        factors.push(factor);
        canon.push(canonical);
        raw.push(u);
    }
    sqlx::query!("insert into unit_map (unit, kind, to_mg_per_l, canonical, engine_version)
         select u, k, f::numeric, c, $5 from unnest($1::text[], $2::text[], $3::float8[], $4::text[]) as x(u, k, f, c)
         on conflict (unit) do update
            set kind = excluded.kind, to_mg_per_l = excluded.to_mg_per_l,
                canonical = excluded.canonical, engine_version = excluded.engine_version", &raw, &kinds as _, &factors as _, &canon as _, ENGINE_VERSION)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_never_guess() {
        assert_eq!(unit_row("ug/L"), ("mass", Some(1e-3), Some("mg/L")));
        assert_eq!(unit_row("SU"), ("ph", None, Some("pH units")));
        assert_eq!(unit_row("NTU"), ("other", None, Some("NTU")));
        assert_eq!(unit_row("lbs/day"), ("unknown", None, None));
        assert_eq!(unit_row("ppt"), ("unknown", None, None));
    }
}
