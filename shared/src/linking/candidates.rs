//! Loading and scoring: `lk_rec` holds every source record with its facility's match features
//! ([`load_records`]); the candidate pairs touching changed records are fetched
//! ([`fetch_candidates`]), scored ([`score_pairs`], pure) and stored in `facility_match`
//! ([`store_matches`]).

use super::score::{self, Agreement, Features, Settings};
use sqlx::{Postgres, Transaction};

/// Name-only candidates kept per record (see `score_candidates`).
const NAME_CANDIDATES: i64 = 10;

/// `lk_rec`: every source record with its facility's match features; `changed` marks records
/// whose facility changed after `watermark` (all when `None`). Returns the changed count.
pub(super) async fn load_records(
    tx: &mut Transaction<'_, Postgres>,
    watermark: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<i64, sqlx::Error> {
    let statements = [
        // Each record by its own values (`own_*`, not the facility's served fields, which
        // follow the records linked to it). Placeholder names ('WDID …' for a site known only
        // from monitoring rows) carry no name to match.
        "create temp table lk_rec on commit drop as
         select f.id as fid, f.origin_source as source, f.origin_key as key,
                case when f.origin_source <> 'esmr'
                     then nullif(upper(btrim(split_part(f.origin_key, '|', 2))), '') end as wdid,
                case when f.origin_source <> 'esmr'
                     then nullif(btrim(split_part(f.origin_key, '|', 1)), '') end as app_id,
                case when f.own_name !~ '^(WDID|APP_ID|CIWQS place) '
                     then nullif(f.match_name, '') end as match_name,
                f.street_key, f.own_city as city, f.own_county as county, f.own_region as region,
                f.own_latitude as latitude, f.own_longitude as longitude,
                ($1::timestamptz is null or f.updated_at > $1) as changed
         from facility f
         where f.origin_source is not null",
        "create index on lk_rec (latitude, longitude)",
        "create index on lk_rec using gin (match_name gin_trgm_ops)",
        "create index on lk_rec (wdid)",
        "create index on lk_rec (app_id)",
        "create index on lk_rec (street_key)",
        "create unique index on lk_rec (source, key)",
        "analyze lk_rec",
        // Records neither coordinates nor a street address can place: the only ones matched
        // on the name alone (a SMARTS record with an address meets its site by street).
        "create temp table lk_nocoord on commit drop as
         select * from lk_rec
         where latitude is null and match_name is not null and street_key is null",
        "create index on lk_nocoord using gin (match_name gin_trgm_ops)",
        "analyze lk_nocoord",
    ];
    for (i, sql) in statements.into_iter().enumerate() {
        let q = sqlx::query(sql);
        let q = if i == 0 { q.bind(watermark) } else { q };
        q.execute(&mut **tx).await?;
    }
    // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query_scalar("select count(*) from lk_rec where changed")
        .fetch_one(&mut **tx)
        .await
}

#[derive(sqlx::FromRow)]
struct Candidate {
    a_source: String,
    a_key: String,
    b_source: String,
    b_key: String,
    exact: Option<String>,
    similarity: Option<f32>,
    a_lat: Option<f64>,
    a_lon: Option<f64>,
    b_lat: Option<f64>,
    b_lon: Option<f64>,
    a_street: Option<String>,
    b_street: Option<String>,
    a_city: Option<String>,
    b_city: Option<String>,
    a_county: Option<String>,
    b_county: Option<String>,
    a_region: Option<String>,
    b_region: Option<String>,
}

/// Scores the candidate pairs touching changed records (all when `full`) into `facility_match`;
/// returns how many candidates were scored.
pub(super) async fn score_candidates(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
    full: bool,
) -> Result<i64, sqlx::Error> {
    let rows = fetch_candidates(tx, s, full).await?;
    let matches = score_pairs(&rows, s);
    store_matches(tx, full, matches).await?;
    Ok(rows.len() as i64)
}

/// The candidate pairs touching changed records (all when `full`) with both records' features:
/// the same WDID or APP_ID, coordinates within the radius, the same street, or similar names
/// where one side cannot be placed.
async fn fetch_candidates(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
    full: bool,
) -> Result<Vec<Candidate>, sqlx::Error> {
    // Degrees spanning the radius: latitude everywhere, longitude at California's north end.
    let dlat = s.radius_m / 111_000.0;
    let dlon = s.radius_m / (111_000.0 * 42.1f64.to_radians().cos());
    // A name-only candidate reaches the floor only with name similarity of at least
    // (floor - 0.15) / 0.6 (0.15: the same city, the most a record without coordinates or
    // street address can add).
    let name_threshold = ((f64::from(s.floor) - 0.15) / 0.6).clamp(0.1, 1.0);
    sqlx::query!(
        "select set_config('pg_trgm.similarity_threshold', $1, true)",
        format!("{name_threshold:.3}")
    )
    .fetch_one(&mut **tx)
    .await?;
    // Runtime SQL: lk_nocoord, lk_rec are temporary tables of this transaction, which the build-time check cannot see.
    sqlx::query_as::<_, Candidate>(
        "with pairs as (
             select a.source as s1, a.key as k1, b.source as s2, b.key as k2,
                    'same WDID ' || a.wdid as exact
               from lk_rec a join lk_rec b on b.wdid = a.wdid and b.source = a.source
              where a.changed and a.source <> 'esmr' and b.key <> a.key
             union all
             select a.source, a.key, b.source, b.key, 'same APP_ID ' || a.app_id
               from lk_rec a join lk_rec b on b.app_id = a.app_id and b.source = a.source
              where a.changed and a.source <> 'esmr' and b.key <> a.key
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a join lk_rec b
                 on b.latitude between a.latitude - $1 and a.latitude + $1
                and b.longitude between a.longitude - $2 and a.longitude + $2
              where a.changed and a.match_name is not null and b.match_name is not null
                and (b.source, b.key) <> (a.source, a.key)
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a join lk_rec b on b.street_key = a.street_key
              where a.changed and a.match_name is not null and b.match_name is not null
                and (b.source, b.key) <> (a.source, a.key)
             union all
             -- Similar names when one side cannot be placed (lk_nocoord): from that side
             -- (few records, so few index probes), and in an incremental run also from
             -- changed records with coordinates to unchanged ones without. At most the
             -- NAME_CANDIDATES most similar per record: a name shared more widely is a chain,
             -- which a name alone cannot place anyway.
             select a.source, a.key, b.source, b.key, null
               from lk_nocoord a
               cross join lateral (
                   select b.source, b.key from lk_rec b
                    where b.match_name % a.match_name
                      and (a.region is null or b.region is null or a.region = b.region)
                      and (b.source, b.key) <> (a.source, a.key)
                    order by similarity(b.match_name, a.match_name) desc, b.source, b.key
                    limit $4) b
              where a.changed
             union all
             select a.source, a.key, b.source, b.key, null
               from lk_rec a
               cross join lateral (
                   select b.source, b.key from lk_nocoord b
                    where b.match_name % a.match_name
                      and (a.region is null or b.region is null or a.region = b.region)
                    order by similarity(b.match_name, a.match_name) desc, b.source, b.key
                    limit $4) b
              where $3 and a.changed and a.latitude is not null and a.match_name is not null
         ), ordered as (
             select distinct on (s1, k1, s2, k2) s1, k1, s2, k2, exact
             from (select case when (s1, k1) < (s2, k2) then s1 else s2 end as s1,
                          case when (s1, k1) < (s2, k2) then k1 else k2 end as k1,
                          case when (s1, k1) < (s2, k2) then s2 else s1 end as s2,
                          case when (s1, k1) < (s2, k2) then k2 else k1 end as k2,
                          exact
                     from pairs) p
             order by s1, k1, s2, k2, exact nulls last
         )
         select o.s1 as a_source, o.k1 as a_key, o.s2 as b_source, o.k2 as b_key, o.exact,
                similarity(a.match_name, b.match_name) as similarity,
                a.latitude as a_lat, a.longitude as a_lon, b.latitude as b_lat, b.longitude as b_lon,
                a.street_key as a_street, b.street_key as b_street, a.city as a_city,
                b.city as b_city, a.county as a_county, b.county as b_county,
                a.region as a_region, b.region as b_region
         from ordered o
         join lk_rec a on a.source = o.s1 and a.key = o.k1
         join lk_rec b on b.source = o.s2 and b.key = o.k2",
    )
    .bind(dlat)
    .bind(dlon)
    .bind(!full)
    .bind(NAME_CANDIDATES)
    .fetch_all(&mut **tx)
    .await
}

/// `facility_match` rows, column by column (for one `unnest` insert).
#[derive(Default)]
struct Matches {
    a_source: Vec<String>,
    a_key: Vec<String>,
    b_source: Vec<String>,
    b_key: Vec<String>,
    method: Vec<String>,
    reason: Vec<String>,
    confidence: Vec<f32>,
    similarity: Vec<Option<f32>>,
    distance: Vec<Option<f64>>,
}

/// Scores each candidate ([`score::score`]): exact pairs are certain, fuzzy ones below the
/// floor are dropped.
fn score_pairs(rows: &[Candidate], s: &Settings) -> Matches {
    let mut m = Matches::default();

    for c in rows {
        let (method, confidence, similarity, distance, reason) = match &c.exact {
            Some(why) => ("exact", 1.0f32, c.similarity, None, why.clone()),
            None => {
                let distance_m = match (c.a_lat, c.a_lon, c.b_lat, c.b_lon) {
                    (Some(a1), Some(a2), Some(b1), Some(b2)) => {
                        Some(score::haversine_m(a1, a2, b1, b2))
                    }
                    _ => None,
                };
                let f = Features {
                    name_similarity: c.similarity.unwrap_or(0.0),
                    distance_m,
                    street: Agreement::of(c.a_street.as_deref(), c.b_street.as_deref()),
                    city: Agreement::of(c.a_city.as_deref(), c.b_city.as_deref()),
                    county: Agreement::of(c.a_county.as_deref(), c.b_county.as_deref()),
                    region: Agreement::of(c.a_region.as_deref(), c.b_region.as_deref()),
                };
                let scored = score::score(&f, s);
                if scored.confidence < s.floor {
                    continue;
                }
                (
                    "fuzzy",
                    scored.confidence,
                    c.similarity,
                    distance_m,
                    scored.reason,
                )
            }
        };
        m.a_source.push(c.a_source.clone());
        m.a_key.push(c.a_key.clone());
        m.b_source.push(c.b_source.clone());
        m.b_key.push(c.b_key.clone());
        m.method.push(method.to_owned());
        m.reason.push(reason);
        m.confidence.push(confidence);
        m.similarity.push(similarity);
        m.distance.push(distance);
    }
    m
}

/// Replaces the stored pairs of the changed records (all when `full`) with `m`.
async fn store_matches(
    tx: &mut Transaction<'_, Postgres>,
    full: bool,
    m: Matches,
) -> Result<(), sqlx::Error> {
    if full {
        sqlx::query!("delete from facility_match")
            .execute(&mut **tx)
            .await?;
    } else {
        // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query(
            "delete from facility_match m using lk_rec r
             where r.changed and ((m.a_source, m.a_key) = (r.source, r.key)
                                  or (m.b_source, m.b_key) = (r.source, r.key))",
        )
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query!(
        "insert into facility_match (a_source, a_key, b_source, b_key, method, confidence,
                                     name_similarity, distance_m, reason)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::real[], $7::real[], $8::float8[], $9::text[])",
        &m.a_source,
        &m.a_key,
        &m.b_source,
        &m.b_key,
        &m.method,
        &m.confidence,
        &m.similarity as _,
        &m.distance as _,
        &m.reason
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
