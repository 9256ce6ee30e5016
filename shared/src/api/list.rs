//! What the list endpoints share: optional filter conditions rendered into several queries
//! (page, count, stats) with their values bound, keyset paging over an id, and the response
//! path (method check, `format=json|csv`, cache-aside per sync generation, `Cache-Control`).

use super::ApiState;
use crate::http::{ApiError, ListCursors, Query, csv_response, json_response};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::value::{RawValue, to_raw_value};
use serde_json::{Value, json};
use sqlx::{Postgres, QueryBuilder};

/// `Cache-Control` of the hot tier (lists, aggregates): five minutes, like the Redis TTL.
pub const HOT: &str = "public, max-age=300";
/// `Cache-Control` of the warm tier (one facility's documents): one hour.
pub const WARM: &str = "public, max-age=3600";

/// A value bound into a filter condition.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    Date(chrono::NaiveDate),
    Bool(bool),
    Texts(Vec<String>),
    Floats(Vec<f64>),
}

/// `and`-ed SQL conditions, each `before $n after` with its value.
#[derive(Debug, Clone, Default)]
pub struct Conditions(Vec<(String, Option<Arg>, String)>);

impl Conditions {
    /// No condition yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A condition without a value (`v.withdrawn_run_id is null`).
    pub fn always(&mut self, sql: &str) -> &mut Self {
        self.0.push((sql.to_owned(), None, String::new()));
        self
    }

    /// `before $n after` when `value` is present; nothing otherwise.
    pub fn when(&mut self, before: &str, value: Option<Arg>, after: &'static str) -> &mut Self {
        if let Some(v) = value {
            self.0.push((before.to_owned(), Some(v), after.to_owned()));
        }
        self
    }

    /// A yes/no filter: `before [$n] after` (bound to `value` when there is one) when `wanted`
    /// is `Some(true)`, its negation when `Some(false)` (a null, as for a missing date, counts
    /// as not holding), nothing when `None`.
    pub fn holds(
        &mut self,
        wanted: Option<bool>,
        before: &str,
        value: Option<Arg>,
        after: &str,
    ) -> &mut Self {
        match wanted {
            None => {}
            Some(true) => self.0.push((before.to_owned(), value, after.to_owned())),
            Some(false) => self.0.push((
                format!("not coalesce({before}"),
                value,
                format!("{after}, false)"),
            )),
        }
        self
    }

    /// The request's `region` and `county` (case-insensitive) on the facility alias `f`.
    pub fn facility_area(&mut self, q: &Query, f: &str) -> Result<&mut Self, ApiError> {
        self.when(
            &format!("upper({f}.region) = upper("),
            q.text("region")?.map(Arg::Text),
            ")",
        )
        .when(
            &format!("lower({f}.county) = lower("),
            q.text("county")?.map(Arg::Text),
            ")",
        );
        Ok(self)
    }

    /// Appends ` and (…)` for every condition (so the caller writes `where true`).
    pub fn push_to(&self, qb: &mut QueryBuilder<Postgres>) {
        for (before, arg, after) in &self.0 {
            qb.push(" and (").push(before);
            match arg.clone() {
                None => {}
                Some(Arg::Text(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Int(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Float(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Date(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Bool(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Texts(v)) => {
                    qb.push_bind(v);
                }
                Some(Arg::Floats(v)) => {
                    qb.push_bind(v);
                }
            }
            qb.push(after.as_str()).push(")");
        }
    }
}

/// Reads `true`/`false`; a 400 naming the parameter otherwise.
pub fn flag(q: &Query, name: &str) -> Result<Option<bool>, ApiError> {
    match q.text(name)?.as_deref() {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad(name, "must be true or false")),
    }
}

/// `dateFrom` / `dateTo`, checked for order.
pub fn date_range(
    q: &Query,
) -> Result<(Option<chrono::NaiveDate>, Option<chrono::NaiveDate>), ApiError> {
    let (from, to) = (q.date("dateFrom")?, q.date("dateTo")?);
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        return Err(ApiError::bad("dateTo", "must not be before dateFrom"));
    }
    Ok((from, to))
}

/// A field a list can be sorted by: `sort=<name>` ascending, `sort=-<name>` descending.
#[derive(Debug)]
pub struct SortField {
    /// The name in `sort` and in the document (`issuanceDate`).
    pub name: &'static str,
    /// Its SQL expression over the list's `from` (`t.issuance_date`).
    pub sql: &'static str,
    /// Its SQL type, which a cursor's position is cast back to (`date`, `numeric`, `text`).
    pub sql_type: &'static str,
    /// Whether the expression can be null (nulls sort last in both directions).
    pub nullable: bool,
}

impl SortField {
    /// A field whose expression may be null.
    pub const fn nullable(name: &'static str, sql: &'static str, sql_type: &'static str) -> Self {
        Self {
            name,
            sql,
            sql_type,
            nullable: true,
        }
    }

    /// A field whose expression is never null.
    pub const fn required(name: &'static str, sql: &'static str, sql_type: &'static str) -> Self {
        Self {
            name,
            sql,
            sql_type,
            nullable: false,
        }
    }
}

/// The sorts of one list and its default (`-issuanceDate`: newest first).
#[derive(Debug)]
pub struct Sorts {
    pub fields: &'static [SortField],
    pub default: &'static str,
}

/// One parsed `sort`.
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub field: &'static SortField,
    pub descending: bool,
}

impl Sorts {
    /// Every accepted `sort` value, the default first (for the document).
    pub fn values(&self) -> Vec<String> {
        let mut out = vec![self.default.to_owned()];
        for f in self.fields {
            for v in [format!("-{}", f.name), f.name.to_owned()] {
                if v != self.default {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The request's `sort` (the default when absent); a 400 listing the values otherwise.
    pub fn parse(&'static self, q: &Query) -> Result<Sort, ApiError> {
        let raw = q.text("sort")?;
        let value = raw.as_deref().unwrap_or(self.default);
        let (descending, name) = match value.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, value),
        };
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|field| Sort { field, descending })
            .ok_or_else(|| {
                ApiError::bad(
                    "sort",
                    format!("must be one of: {}", self.values().join(", ")),
                )
            })
    }
}

impl Sort {
    /// `-issuanceDate` / `name`: what the request said (or the default).
    pub fn name(&self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.field.name
        )
    }
}

/// What one list page reads: `item` (a `jsonb` expression) of the rows of `from` matching
/// `conditions`, ordered by `sort` and then by the unique bigint key `id`.
pub struct Listing<'a> {
    /// `GET /api/violations`: with the sort, signed into every cursor, so a cursor of another
    /// list or of another sort is a 400.
    pub route: &'a str,
    pub item: &'a str,
    pub from: &'a str,
    pub id: &'a str,
    pub sort: Sort,
    pub conditions: &'a Conditions,
    pub limit: i64,
    /// The total when known without counting (a stored summary).
    pub known_total: Option<i64>,
}

/// A cursor's position: the sort key as text (null for a null key) and the row's id.
type Position = (Option<String>, i64);

/// Renders the keyset condition after `position` and the order of `sort` (nulls last in both
/// directions, ties by `id` in the same direction).
fn push_keyset(qb: &mut QueryBuilder<Postgres>, l: &Listing<'_>, position: Option<Position>) {
    let f = l.sort.field;
    let (cmp, dir) = if l.sort.descending {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    match position {
        None => {}
        Some((Some(v), id)) => {
            qb.push(format!(" and (({}, {}) {cmp} (", f.sql, l.id))
                .push_bind(v)
                .push(format!("::{}, ", f.sql_type))
                .push_bind(id)
                .push(")");
            if f.nullable {
                qb.push(format!(" or {} is null", f.sql));
            }
            qb.push(")");
        }
        Some((None, id)) => {
            qb.push(format!(" and ({} is null and {} {cmp} ", f.sql, l.id))
                .push_bind(id)
                .push(")");
        }
    }
    qb.push(format!(
        " order by {} {dir} nulls last, {} {dir} limit ",
        f.sql, l.id
    ))
    .push_bind(l.limit);
}

/// One page of a [`Listing`] after the request's `cursor`, and its `page` object (`limit`,
/// `sort`, `nextCursor`, `total`: counted unless known). Cursors are opaque and signed for the
/// route and the sort; one of another list or another sort is a 400 naming `cursor`.
pub async fn page(
    state: &ApiState,
    l: &Listing<'_>,
    q: &Query,
) -> Result<(Vec<Value>, Value), ApiError> {
    merged_page(state, l, &[], q).await
}

/// [`page`] of a listing whose `from` is a union of `branches` (relations with the same
/// columns, each aliased as `from` is): the page is read from each branch in order, with the
/// conditions and the keyset, and the branches' pages merged, so every branch is read through
/// its own indexes and only the rows of the page build their item. `from` itself is counted.
pub async fn merged_page(
    state: &ApiState,
    l: &Listing<'_>,
    branches: &[&str],
    q: &Query,
) -> Result<(Vec<Value>, Value), ApiError> {
    let sort = l.sort.name();
    let cursors = state
        .cursors(format!("{} sorted by {sort}", l.route))
        .await?;
    let position = match cursors.after_text(q)? {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Position>(&text)
                .map_err(|_| ApiError::bad("cursor", "not a cursor from a previous page"))?,
        ),
    };
    // Output names of their own: a bare `id` in the order must mean the table's column.
    // A branch's rows carry their sort value too, for the merge.
    let select = |from: &str, merged: bool| {
        format!(
            "select {} as page_key, ({})::text as page_sort, {} as page_item{} from {from} where true",
            l.id,
            l.sort.field.sql,
            l.item,
            if merged {
                format!(", {} as page_order", l.sort.field.sql)
            } else {
                String::new()
            }
        )
    };
    let mut qb = QueryBuilder::<Postgres>::new("");
    if branches.is_empty() {
        qb.push(select(l.from, false));
        l.conditions.push_to(&mut qb);
        push_keyset(&mut qb, l, position);
    } else {
        qb.push("select page_key, page_sort, page_item from (");
        for (i, branch) in branches.iter().enumerate() {
            if i > 0 {
                qb.push(" union all ");
            }
            qb.push("(").push(select(branch, true));
            l.conditions.push_to(&mut qb);
            push_keyset(&mut qb, l, position.clone());
            qb.push(")");
        }
        let dir = if l.sort.descending { "desc" } else { "asc" };
        qb.push(format!(
            ") p order by page_order {dir} nulls last, page_key {dir} limit "
        ))
        .push_bind(l.limit);
    }
    // Planned for its values each time (see the note after `aggregate`). The page and its
    // count are read at once, on two connections of the pool: the request waits for the
    // longer of the two, not their sum.
    let rows = async {
        let rows: Vec<(i64, Option<String>, Value)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&state.pool)
            .await?;
        Ok::<_, ApiError>(rows)
    };
    let total = async {
        match l.known_total {
            Some(n) => Ok(n),
            None => count(&state.pool, l.from, l.conditions).await,
        }
    };
    let (rows, total) = tokio::try_join!(rows, total)?;
    let next = (rows.len() as i64 == l.limit)
        .then(|| {
            rows.last().map(|(id, key, _)| {
                cursors.encode_text(&serde_json::to_string(&(key, id)).unwrap_or_default())
            })
        })
        .flatten();
    Ok((
        rows.into_iter().map(|(_, _, v)| v).collect(),
        json!({ "limit": l.limit, "sort": sort, "nextCursor": next, "total": total }),
    ))
}

/// How many rows of `from` match `conditions`.
pub async fn count(
    pool: &sqlx::PgPool,
    from: &str,
    conditions: &Conditions,
) -> Result<i64, ApiError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("select count(*) from {from} where true"));
    conditions.push_to(&mut qb);
    Ok(qb
        .build_query_scalar()
        .persistent(false)
        .fetch_one(pool)
        .await?)
}

/// One `jsonb` value computed over the filtered rows, which `expr` sees as `m` with `columns`:
/// `with m as (select <columns> from <from> where true <conditions>) select <expr>` (stats
/// blocks; only the columns `expr` reads are carried).
pub async fn aggregate(
    pool: &sqlx::PgPool,
    columns: &str,
    expr: &str,
    from: &str,
    conditions: &Conditions,
) -> Result<Value, ApiError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "with m as materialized (select {columns} from {from} where true"
    ));
    conditions.push_to(&mut qb);
    qb.push(format!(") select {expr}"));
    Ok(qb
        .build_query_scalar()
        .persistent(false)
        .fetch_one(pool)
        .await?)
}

// Why the list queries are never prepared (`persistent(false)`): after five executions of a
// prepared statement Postgres may switch to a generic plan, made without the values; for a
// list the values decide the plan (a map area holding a third of the state or a hundred
// facilities, a cursor deep in the list), and a generic plan that sorts every matching row
// built 30,000 features for a 500-feature page (0.4 s instead of 14 ms; docs/BENCHMARKS_API.md).
// An unnamed statement is planned for its values every time, as the first five were.

/// `{value: count}` of `column` over the relation `from` (the rows `m` of [`aggregate`], a
/// CTE), missing values as `unknown`.
pub fn counts_by(from: &str, column: &str) -> String {
    totals_by(from, column, "count(*)")
}

/// [`counts_by`] over stored counts: the sum of the rows' `n` per value of `column`.
pub fn sums_by(from: &str, column: &str) -> String {
    totals_by(from, column, "sum(n)::bigint")
}

fn totals_by(from: &str, column: &str, total: &str) -> String {
    format!(
        "(select coalesce(jsonb_object_agg(k, n), '{{}}'::jsonb)
            from (select coalesce({column}::text, 'unknown') as k, {total} as n
                    from {from} group by 1) x)"
    )
}

/// A GET answered straight from `compute`, without the cache (reads whose answer must be
/// current, such as the review list): 405 for other methods.
pub async fn uncached<F, Fut>(req: &Request, cache_control: &str, compute: F) -> Response<Body>
where
    F: FnOnce(Query) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    if req.method() != Method::GET {
        return ApiError::MethodNotAllowed.into_response();
    }
    match compute(Query::of(req)).await {
        Ok(body) => json_response(StatusCode::OK, &body, cache_control),
        Err(e) => e.into_response(),
    }
}

/// Splits rows fetched with `limit + 1` and keyed by their paging key into the page's items and
/// its `page` object (`nextCursor`, made by `cursors`, when there are more).
pub fn keyed_page(
    cursors: &ListCursors<'_>,
    rows: Vec<(i64, Value)>,
    limit: i64,
) -> (Vec<Value>, Value) {
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for (k, v) in rows.into_iter().take(limit.max(0) as usize) {
        last = Some(k);
        items.push(v);
    }
    let next = more.then(|| last.map(|k| cursors.encode(k))).flatten();
    (items, json!({ "limit": limit, "nextCursor": next }))
}

/// The response of a read endpoint: only GET; `format=csv` (when `csv_columns` is given) turns
/// `data` into CSV; the body comes from the cache (key: `name`, the sync generation and the
/// query) or from `compute`. Parameters are validated by the caller before computing.
pub async fn respond<F, Fut>(
    state: &ApiState,
    req: &Request,
    name: &str,
    cache_control: &'static str,
    csv_columns: Option<&[&str]>,
    compute: F,
) -> Response<Body>
where
    F: FnOnce(Query) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    if req.method() != Method::GET {
        return ApiError::MethodNotAllowed.into_response();
    }
    let q = Query::of(req);
    let formats: &[&'static str] = if csv_columns.is_some() {
        &["json", "csv"]
    } else {
        &["json"]
    };
    let csv = match q.one_of("format", formats) {
        Ok(f) => f == Some("csv"),
        Err(e) => return e.into_response(),
    };
    let ttl = if cache_control == WARM {
        crate::cache::ttl::WARM
    } else {
        crate::cache::ttl::HOT
    };
    let key_params = format!("{}?{}", req.uri().path(), q.canonical());
    let generation = state.cache.generation().await;
    let key = state.cache.key(generation, name, &key_params);
    // The body is kept and answered as JSON text: a hit is copied out as it was stored, not
    // parsed into a tree and serialised again (a map page is 150 kB of it).
    let computed = state.cache.get_or_compute(&key, ttl, || async {
        let body = compute(q).await?;
        to_raw_value(&body).map_err(|e| ApiError::Internal(format!("response body: {e}")))
    });
    let (body, hit): (Box<RawValue>, bool) = match computed.await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut resp = match csv_columns {
        Some(columns) if csv => match serde_json::from_str::<Value>(body.get()) {
            Ok(v) => csv_response(columns, csv_rows(&v, columns), cache_control),
            Err(e) => return ApiError::Internal(format!("cached body: {e}")).into_response(),
        },
        _ => json_response(StatusCode::OK, &body, cache_control),
    };
    resp.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    resp
}

fn csv_rows<'a>(body: &'a Value, columns: &'a [&str]) -> impl Iterator<Item = Vec<String>> + 'a {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| csv_cells(item, columns))
}

/// The CSV cells of `item` for `columns` (dotted paths; a missing value or null is blank, a
/// string as is, anything else as JSON).
pub(crate) fn csv_cells(item: &Value, columns: &[&str]) -> Vec<String> {
    columns
        .iter()
        .map(
            |c| match item.pointer(&format!("/{}", c.replace('.', "/"))) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_page_has_a_cursor_only_when_more_rows_follow() {
        let key = crate::http::CursorKey::new(vec![7; 32]).unwrap();
        let cursors = key.list("GET /api/nal-levels by key ascending");
        let rows = |n: i64| (1..=n).map(|k| (k * 10, json!(k))).collect::<Vec<_>>();
        let (items, page) = keyed_page(&cursors, rows(3), 2);
        assert_eq!(items, vec![json!(1), json!(2)]);
        assert_eq!(page["nextCursor"], json!(cursors.encode(20)));
        assert_eq!(page["limit"], 2);
        let (items, page) = keyed_page(&cursors, rows(2), 2);
        assert_eq!(items.len(), 2);
        assert!(page["nextCursor"].is_null());
        assert!(keyed_page(&cursors, vec![], 5).0.is_empty());
    }

    #[test]
    fn conditions_render_in_order_with_numbered_binds() {
        let mut c = Conditions::default();
        c.always("v.withdrawn_run_id is null")
            .when("v.wdid = ", Some(Arg::Text("1 08I015378".into())), "")
            .when("v.county = ", None, "")
            .when(
                "v.occurrence_date >= ",
                Some(Arg::Date(chrono::NaiveDate::MIN)),
                "",
            )
            .when("v.type = any(", Some(Arg::Texts(vec!["a".into()])), ")");
        let mut qb = QueryBuilder::<Postgres>::new("select 1 from v where true");
        c.push_to(&mut qb);
        assert_eq!(
            qb.sql().as_str(),
            "select 1 from v where true and (v.withdrawn_run_id is null) and (v.wdid = $1) \
             and (v.occurrence_date >= $2) and (v.type = any($3))"
        );
    }

    #[test]
    fn a_yes_no_filter_renders_its_condition_or_the_negation() {
        let mut c = Conditions::default();
        c.holds(Some(true), "s.n > 0", None, "")
            .holds(Some(false), "s.d >= ", Some(Arg::Int(3)), "")
            .holds(None, "s.never", None, "");
        let mut qb = QueryBuilder::<Postgres>::new("select 1 from s where true");
        c.push_to(&mut qb);
        assert_eq!(
            qb.sql().as_str(),
            "select 1 from s where true and (s.n > 0) and (not coalesce(s.d >= $1, false))"
        );
    }

    #[test]
    fn csv_columns_follow_dotted_paths_and_blank_nulls() {
        let body = json!({ "data": [{ "a": 1, "b": { "c": "x" }, "d": null }] });
        let rows: Vec<_> = csv_rows(&body, &["a", "b.c", "d", "missing"]).collect();
        assert_eq!(rows, vec![vec!["1", "x", "", ""]]);
    }
}
