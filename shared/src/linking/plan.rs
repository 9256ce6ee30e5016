//! Planning: the stored pairs and the manual decisions become a graph ([`load_graph`]), which
//! [`super::cluster`] groups; every record then gets the `facility_link` rows it should have
//! ([`wanted_rows`]), and candidates that did not end up in one group become proposals
//! ([`proposals`]).

use super::cluster::{self, Clusters, Constraints, Edge, Method};
use super::score::Settings;
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};

/// A wanted `facility_link` row.
#[derive(Debug, Clone)]
pub(super) struct Want {
    pub(super) source: String,
    pub(super) key: String,
    pub(super) facility_id: i64,
    pub(super) method: &'static str,
    pub(super) confidence: f32,
    pub(super) status: &'static str,
    pub(super) verified_by: Option<String>,
    pub(super) verified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) notes: Option<String>,
}

impl Want {
    fn rank(&self) -> (u8, i64) {
        let status = match self.status {
            "linked" => 3,
            "rejected" => 2,
            _ => 1,
        };
        (status, (self.confidence * 1000.0) as i64)
    }
}

pub(super) struct Plan {
    pub(super) rows: Vec<Want>,
    pub(super) ambiguous: usize,
    pub(super) blocked: usize,
}

#[derive(sqlx::FromRow)]
struct Decision {
    source: String,
    source_key: String,
    facility_id: Option<i64>,
    decision: String,
    decided_by: String,
    decided_at: chrono::DateTime<chrono::Utc>,
    notes: Option<String>,
    origin_source: Option<String>,
    origin_key: Option<String>,
}

/// Interns `(source, key)` pairs as indices.
#[derive(Default)]
struct Records {
    index: HashMap<(String, String), usize>,
    keys: Vec<(String, String)>,
}

impl Records {
    fn id(&mut self, source: &str, key: &str) -> usize {
        let k = (source.to_owned(), key.to_owned());
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        self.keys.push(k.clone());
        self.index.insert(k, self.keys.len() - 1);
        self.keys.len() - 1
    }
}

/// Groups the records and says which `facility_link` rows should exist for every record in
/// scope: those in a stored pair or a decision, and those whose current rows are not the plain
/// seed link.
pub(super) async fn plan(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
) -> Result<Plan, sqlx::Error> {
    let mut g = load_graph(tx, s).await?;
    let clusters = cluster::cluster(g.recs.keys.len(), &mut g.edges, &g.constraints);
    let sites = Sites::of(&g, &clusters);
    let mut want = Wanted::default();
    wanted_rows(&g, &clusters, &sites, &mut want);
    proposals(&g, &clusters, &sites, s, &mut want);
    Ok(Plan {
        rows: want.0.into_values().collect(),
        ambiguous: clusters.ambiguous.len(),
        blocked: clusters.blocked.len(),
    })
}

/// The records in scope as a graph: stored pairs and manual links as edges (with their
/// reasons), manual unlinks as constraints, and each record's own facility.
struct Graph {
    recs: Records,
    edges: Vec<Edge>,
    reasons: Vec<String>,
    decisions: Vec<Decision>,
    /// Record → its decisions (indices into `decisions`).
    decided: HashMap<usize, Vec<usize>>,
    constraints: Constraints,
    fids: HashMap<(String, String), i64>,
}

impl Graph {
    /// The facility seeded from record `r` (none for a record without one).
    fn fid(&self, r: usize) -> Option<i64> {
        self.fids.get(&self.recs.keys[r]).copied()
    }

    /// The decision of kind `kind` on record `r` (on `facility`, when given).
    fn decision_of(&self, r: usize, kind: &str, facility: Option<i64>) -> Option<&Decision> {
        self.decided.get(&r).and_then(|ds| {
            ds.iter()
                .map(|&i| &self.decisions[i])
                .find(|d| d.decision == kind && (facility.is_none() || d.facility_id == facility))
        })
    }

    /// The plain seed link of record `r` to `facility_id`, which the rules then refine.
    fn base(&self, r: usize, facility_id: i64) -> Want {
        Want {
            source: self.recs.keys[r].0.clone(),
            key: self.recs.keys[r].1.clone(),
            facility_id,
            method: "seed",
            confidence: 1.0,
            status: "linked",
            verified_by: None,
            verified_at: None,
            notes: None,
        }
    }
}

/// Reads the stored pairs, the decisions, the records whose rows are more than a seed link,
/// and their facilities.
async fn load_graph(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
) -> Result<Graph, sqlx::Error> {
    let mut recs = Records::default();
    let mut edges = Vec::new();
    let mut reasons = Vec::new();
    let matches = sqlx::query!(
        "select a_source, a_key, b_source, b_key, method, confidence, reason from facility_match",
    )
    .fetch_all(&mut **tx)
    .await?;
    for m in matches {
        let (a_source, a_key, b_source, b_key, method, confidence, reason) = (
            m.a_source,
            m.a_key,
            m.b_source,
            m.b_key,
            m.method,
            m.confidence,
            m.reason,
        );
        let (a, b) = (recs.id(&a_source, &a_key), recs.id(&b_source, &b_key));
        let method = if method == "exact" {
            Method::Exact
        } else {
            Method::Fuzzy
        };
        // Industrial and construction records of one place are different permits (a project
        // building what later becomes an industrial site): proposed, never automatic.
        let cross_program = a_source != b_source && a_source != "esmr" && b_source != "esmr";
        let accepted = method == Method::Exact || (confidence >= s.threshold && !cross_program);
        edges.push(Edge {
            a,
            b,
            method,
            confidence,
            accepted,
        });
        reasons.push(reason);
    }
    let decisions: Vec<Decision> = sqlx::query_as!(
        Decision,
        "select d.source, d.source_key, d.facility_id, d.decision, d.decided_by, d.decided_at,
                d.notes, f.origin_source, f.origin_key
         from facility_link_decision d left join facility f on f.id = d.facility_id
         order by d.id"
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut constraints = Constraints::default();
    let mut decided: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, d) in decisions.iter().enumerate() {
        let r = recs.id(&d.source, &d.source_key);
        decided.entry(r).or_default().push(i);
        let target = match (&d.origin_source, &d.origin_key) {
            (Some(src), Some(key)) => Some(recs.id(src, key)),
            _ => None,
        };
        match (d.decision.as_str(), target) {
            ("link", Some(t)) => {
                edges.push(Edge {
                    a: r,
                    b: t,
                    method: Method::Manual,
                    confidence: 1.0,
                    accepted: true,
                });
                reasons.push(format!("manual link by {}", d.decided_by));
            }
            ("unlink", Some(t)) => constraints.cannot.push((r, t)),
            ("unlink", None) if d.facility_id.is_none() => {
                constraints.isolated.insert(r);
            }
            _ => tracing::warn!(
                source = d.source,
                key = d.source_key,
                "decision names a facility without a source record; ignored"
            ),
        }
    }
    // Records whose current rows are more than their plain seed link must be rewritten too.
    let current = sqlx::query!(
        "select distinct l.source, l.source_key
         from facility_link l
         left join facility f on f.origin_source = l.source and f.origin_key = l.source_key
         where l.method <> 'seed' or l.status <> 'linked' or f.id is distinct from l.facility_id",
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in &current {
        recs.id(&r.source, &r.source_key);
    }
    let fids: HashMap<(String, String), i64> = {
        let (sources, keys): (Vec<String>, Vec<String>) = recs.keys.iter().cloned().unzip();
        // Runtime SQL: lk_rec is a temporary table of this transaction, which the build-time check cannot see.
        sqlx::query_as::<_, (String, String, i64)>(
            "select r.source, r.key, r.fid from lk_rec r
             join unnest($1::text[], $2::text[]) as x(source, key)
               on x.source = r.source and x.key = r.key",
        )
        .bind(&sources)
        .bind(&keys)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(s, k, f)| ((s, k), f))
        .collect()
    };
    Ok(Graph {
        recs,
        edges,
        reasons,
        decisions,
        decided,
        constraints,
        fids,
    })
}

/// Each group's canonical facility and size.
struct Sites {
    canonical: HashMap<usize, i64>,
    size: HashMap<usize, usize>,
}

impl Sites {
    /// The canonical facility of a group: built from a SMARTS record when there is one (it has
    /// the address, county and operator eSMR lacks), industrial first; then the oldest.
    fn of(g: &Graph, clusters: &Clusters) -> Self {
        let rank = |r: usize| match g.recs.keys[r].0.as_str() {
            "smarts_industrial" => 0,
            "smarts_construction" => 1,
            _ => 2,
        };
        let mut best: HashMap<usize, (u8, i64)> = HashMap::new();
        for r in 0..g.recs.keys.len() {
            if let Some(f) = g.fid(r) {
                let c = best.entry(clusters.group[r]).or_insert((rank(r), f));
                *c = (*c).min((rank(r), f));
            }
        }
        let mut size: HashMap<usize, usize> = HashMap::new();
        for grp in &clusters.group {
            *size.entry(*grp).or_default() += 1;
        }
        Self {
            canonical: best.into_iter().map(|(grp, (_, f))| (grp, f)).collect(),
            size,
        }
    }
}

/// The wanted rows, one per (record, facility): the strongest claim wins.
#[derive(Default)]
struct Wanted(HashMap<(usize, i64), Want>);

impl Wanted {
    fn push(&mut self, r: usize, w: Want) {
        let k = (r, w.facility_id);
        if self.0.get(&k).is_none_or(|old| old.rank() < w.rank()) {
            self.0.insert(k, w);
        }
    }
}

/// Every record's link to its group's canonical facility (how it was joined, who verified
/// it), and the rejections reviewers made on the facility they named.
fn wanted_rows(g: &Graph, clusters: &Clusters, sites: &Sites, want: &mut Wanted) {
    for r in 0..g.recs.keys.len() {
        let Some(own) = g.fid(r) else { continue };
        let grp = clusters.group[r];
        let target = sites.canonical[&grp];
        let size = sites.size[&grp];
        let mut w = g.base(r, target);
        if size > 1 && own != target {
            let i = clusters.joined_by[&r];
            let e = &g.edges[i];
            w.method = e.method.as_str();
            w.confidence = e.confidence;
            w.notes = Some(g.reasons[i].clone());
            if e.method == Method::Manual {
                let other = if e.a == r { e.b } else { e.a };
                let d = g
                    .decision_of(r, "link", None)
                    .or_else(|| g.decision_of(other, "link", None));
                if let Some(d) = d {
                    w.verified_by = Some(d.decided_by.clone());
                    w.verified_at = Some(d.decided_at);
                    w.notes = d.notes.clone().or(w.notes);
                }
            }
        } else if size > 1 {
            w.notes = Some(format!("canonical record of a site with {size} records"));
        } else if let Some(d) = g.decision_of(r, "unlink", None) {
            w.method = "unlinked";
            w.verified_by = Some(d.decided_by.clone());
            w.verified_at = Some(d.decided_at);
            w.notes = d.notes.clone();
        }
        want.push(r, w);
        // Rejections the reviewers made, on the facility they named.
        for d in g
            .decided
            .get(&r)
            .into_iter()
            .flatten()
            .map(|&i| &g.decisions[i])
        {
            if let ("unlink", Some(f)) = (d.decision.as_str(), d.facility_id)
                && f != target
            {
                let mut w = g.base(r, f);
                w.method = "manual";
                w.status = "rejected";
                w.verified_by = Some(d.decided_by.clone());
                w.verified_at = Some(d.decided_at);
                w.notes = d.notes.clone();
                want.push(r, w);
            }
        }
    }
}

/// Proposals: candidates at or above the floor that did not end up in one group, unless a
/// decision keeps them apart.
fn proposals(g: &Graph, clusters: &Clusters, sites: &Sites, s: &Settings, want: &mut Wanted) {
    let forbidden: HashSet<(usize, usize)> = g
        .constraints
        .cannot
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    for (i, e) in g.edges.iter().enumerate() {
        if e.method == Method::Manual || clusters.internal(e) || e.confidence < s.floor {
            continue;
        }
        for (x, y) in [(e.a, e.b), (e.b, e.a)] {
            if g.constraints.isolated.contains(&x) || forbidden.contains(&(x, y)) {
                continue;
            }
            let Some(&target) = sites.canonical.get(&clusters.group[y]) else {
                continue;
            };
            let mut w = g.base(x, target);
            w.method = e.method.as_str();
            w.confidence = e.confidence;
            w.status = "proposed";
            w.notes = Some(
                if clusters.ambiguous.contains(&x) || clusters.ambiguous.contains(&y) {
                    format!("{} (ambiguous: matches several sites)", g.reasons[i])
                } else if clusters.blocked.contains(&i) {
                    format!("{} (a manual decision keeps them apart)", g.reasons[i])
                } else {
                    g.reasons[i].clone()
                },
            );
            want.push(x, w);
        }
    }
}
