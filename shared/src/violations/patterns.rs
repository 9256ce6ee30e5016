//! The query patterns of docs/VIOLATION_QUERY_PATTERNS.md, parsed so that tests run every one of
//! them and the benchmark times the dashboard ones: the document cannot drift from the schema.
//!
//! A pattern is a fenced `sql` block starting with `-- name: …`, optionally `-- tags: a, b`, and
//! `-- params: type name, …` naming `$1, $2, …` in order (types: bigint, int, text, date).

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Executor, Postgres};
use std::collections::HashMap;

/// One documented query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub name: String,
    pub tags: Vec<String>,
    /// `(type, name)` of `$1, $2, …`.
    pub params: Vec<(String, String)>,
    pub sql: String,
}

/// Parses every pattern of the document; a block without a name is an error.
pub fn parse(markdown: &str) -> Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```sql" {
            continue;
        }
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push(l);
        }
        let mut p = Pattern {
            name: String::new(),
            tags: vec![],
            params: vec![],
            sql: String::new(),
        };
        let mut sql = Vec::new();
        for l in body {
            if let Some(v) = l.strip_prefix("-- name:") {
                p.name = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("-- tags:") {
                p.tags = v.split(',').map(|t| t.trim().to_owned()).collect();
            } else if let Some(v) = l.strip_prefix("-- params:") {
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (ty, name) = item
                        .split_once(' ')
                        .ok_or_else(|| format!("param {item:?} must be 'type name'"))?;
                    p.params
                        .push((ty.trim().to_owned(), name.trim().to_owned()));
                }
            } else {
                sql.push(l);
            }
        }
        if p.name.is_empty() {
            return Err(format!(
                "a sql block has no '-- name:' line: {}",
                sql.join(" ")
            ));
        }
        p.sql = sql.join("\n");
        out.push(p);
    }
    Ok(out)
}

fn bind<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    p: &Pattern,
    values: &HashMap<&str, String>,
) -> Result<Query<'q, Postgres, PgArguments>, String> {
    for (ty, name) in &p.params {
        let v = values
            .get(name.as_str())
            .ok_or_else(|| format!("{}: no value for {name}", p.name))?;
        let bad = |e: String| format!("{}: {name}={v:?}: {e}", p.name);
        q = match ty.as_str() {
            "bigint" => q.bind(v.parse::<i64>().map_err(|e| bad(e.to_string()))?),
            "int" => q.bind(v.parse::<i32>().map_err(|e| bad(e.to_string()))?),
            "text" => q.bind(v.clone()),
            "date" => q.bind(
                v.parse::<chrono::NaiveDate>()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => return Err(bad(format!("unknown type {other}"))),
        };
    }
    Ok(q)
}

/// Runs a pattern with named values; returns the number of rows it produced.
pub async fn run<'e, E>(
    executor: E,
    p: &Pattern,
    values: &HashMap<&str, String>,
) -> Result<usize, String>
where
    E: Executor<'e, Database = Postgres>,
{
    // Runtime SQL: the documented query patterns are data (docs/VIOLATION_QUERY_PATTERNS.md), run as written.
    let q = bind(sqlx::query(sqlx::AssertSqlSafe(p.sql.clone())), p, values)?;
    q.fetch_all(executor)
        .await
        .map(|rows| rows.len())
        .map_err(|e| format!("{}: {e}", p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_document() {
        let doc = include_str!("../../../docs/VIOLATION_QUERY_PATTERNS.md");
        let all = parse(doc).expect("parses");
        assert!(all.len() >= 12, "{}", all.len());
        let names: std::collections::BTreeSet<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), all.len(), "names are unique");
        for p in &all {
            let max = (1..=9)
                .rev()
                .find(|i| p.sql.contains(&format!("${i}")))
                .unwrap_or(0);
            assert_eq!(
                max,
                p.params.len(),
                "{}: $n used vs params declared",
                p.name
            );
        }
        assert_eq!(
            all.iter()
                .filter(|p| p.tags.iter().any(|t| t == "dashboard"))
                .count(),
            4
        );
    }
}
