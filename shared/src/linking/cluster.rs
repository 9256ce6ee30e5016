//! Groups source records into sites: constrained union-find over accepted pairs.
//!
//! Order of precedence: manual links, then exact identifiers, then automatic fuzzy matches by
//! descending confidence. Two records under a manual "unlink" never end up in one group (a
//! union that would join them is skipped and reported as blocked), and a record unlinked from
//! everything takes no automatic pair at all. A record whose automatic fuzzy matches point at
//! two records that do not match each other is ambiguous (a chain name without coordinates, a
//! yard shared by several businesses): its fuzzy pairs are demoted to proposals rather than
//! allowed to chain unrelated sites together.

use std::collections::{HashMap, HashSet};

/// How a pair was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Fuzzy,
    Exact,
    Manual,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fuzzy => "fuzzy",
            Self::Exact => "exact",
            Self::Manual => "manual",
        }
    }
}

/// A pair of records (indices) that may be the same site.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub a: usize,
    pub b: usize,
    pub method: Method,
    pub confidence: f32,
    /// At or above the threshold (always true for manual and exact pairs).
    pub accepted: bool,
}

/// Human decisions as constraints on records.
#[derive(Debug, Default, Clone)]
pub struct Constraints {
    /// Pairs that must not share a group.
    pub cannot: Vec<(usize, usize)>,
    /// Records that take no automatic pair.
    pub isolated: HashSet<usize>,
}

/// The grouping.
#[derive(Debug, Default)]
pub struct Clusters {
    /// Group of each record (a representative index).
    pub group: Vec<usize>,
    /// For each record joined to a group, the strongest accepted edge (index into the input)
    /// linking it to another member.
    pub joined_by: HashMap<usize, usize>,
    /// Accepted edges not applied because a decision forbids the union.
    pub blocked: Vec<usize>,
    /// Records whose fuzzy edges were demoted as ambiguous.
    pub ambiguous: HashSet<usize>,
}

impl Clusters {
    /// Whether edge `e` ended up inside one group.
    pub fn internal(&self, e: &Edge) -> bool {
        self.group[e.a] == self.group[e.b]
    }
}

struct Dsu {
    parent: Vec<usize>,
    members: Vec<Vec<usize>>,
    forbidden: Vec<HashSet<usize>>,
}

impl Dsu {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Unites unless a member of one group is forbidden in the other. Returns false if blocked.
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        if self.members[ra].len() < self.members[rb].len() {
            std::mem::swap(&mut ra, &mut rb);
        }
        if self.members[rb]
            .iter()
            .any(|m| self.forbidden[ra].contains(m))
        {
            return false;
        }
        let moved = std::mem::take(&mut self.members[rb]);
        let banned = std::mem::take(&mut self.forbidden[rb]);
        self.members[ra].extend(moved);
        self.forbidden[ra].extend(banned);
        self.parent[rb] = ra;
        true
    }
}

/// Demotes the fuzzy edges of ambiguous records (see the module docs); returns those records.
fn ambiguous(n: usize, edges: &[Edge], c: &Constraints) -> HashSet<usize> {
    let mut strong: HashSet<(usize, usize)> = HashSet::new();
    let mut fuzzy: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges.iter().filter(|e| e.accepted) {
        strong.insert((e.a.min(e.b), e.a.max(e.b)));
        if e.method == Method::Fuzzy && !c.isolated.contains(&e.a) && !c.isolated.contains(&e.b) {
            fuzzy[e.a].push(e.b);
            fuzzy[e.b].push(e.a);
        }
    }
    let mut out = HashSet::new();
    for (r, others) in fuzzy.iter().enumerate() {
        'pairs: for (i, &x) in others.iter().enumerate() {
            for &y in &others[i + 1..] {
                if x != y && !strong.contains(&(x.min(y), x.max(y))) {
                    out.insert(r);
                    break 'pairs;
                }
            }
        }
    }
    out
}

/// Groups `n` records (see the module docs). Edges of ambiguous records come back with
/// `accepted` cleared.
pub fn cluster(n: usize, edges: &mut [Edge], c: &Constraints) -> Clusters {
    let ambiguous = ambiguous(n, edges, c);
    for e in edges.iter_mut() {
        if e.method == Method::Fuzzy && (ambiguous.contains(&e.a) || ambiguous.contains(&e.b)) {
            e.accepted = false;
        }
    }
    let mut dsu = Dsu {
        parent: (0..n).collect(),
        members: (0..n).map(|i| vec![i]).collect(),
        forbidden: vec![HashSet::new(); n],
    };
    for &(a, b) in &c.cannot {
        dsu.forbidden[a].insert(b);
        dsu.forbidden[b].insert(a);
    }
    let mut order: Vec<usize> = (0..edges.len())
        .filter(|&i| {
            let e = &edges[i];
            e.accepted
                && (e.method == Method::Manual
                    || (!c.isolated.contains(&e.a) && !c.isolated.contains(&e.b)))
        })
        .collect();
    order.sort_by(|&x, &y| {
        let (ex, ey) = (&edges[x], &edges[y]);
        ey.method
            .cmp(&ex.method)
            .then(ey.confidence.total_cmp(&ex.confidence))
            .then(x.cmp(&y))
    });
    let mut blocked = Vec::new();
    for &i in &order {
        if !dsu.union(edges[i].a, edges[i].b) {
            blocked.push(i);
        }
    }
    let group: Vec<usize> = (0..n).map(|i| dsu.find(i)).collect();
    // The edge that explains each member's place: the best accepted internal edge touching it.
    let mut joined_by: HashMap<usize, usize> = HashMap::new();
    for &i in &order {
        let e = &edges[i];
        if group[e.a] != group[e.b] {
            continue;
        }
        for r in [e.a, e.b] {
            joined_by.entry(r).or_insert(i);
        }
    }
    Clusters {
        group,
        joined_by,
        blocked,
        ambiguous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(a: usize, b: usize, method: Method, confidence: f32) -> Edge {
        Edge {
            a,
            b,
            method,
            confidence,
            accepted: method != Method::Fuzzy || confidence >= 0.85,
        }
    }

    #[test]
    fn accepted_pairs_group_transitively_and_proposals_do_not() {
        let mut edges = vec![
            e(0, 1, Method::Exact, 1.0),
            e(1, 2, Method::Fuzzy, 0.9),
            e(2, 3, Method::Fuzzy, 0.6),
        ];
        let c = cluster(4, &mut edges, &Constraints::default());
        assert_eq!(c.group[0], c.group[2]);
        assert_ne!(c.group[2], c.group[3]);
        assert_eq!(c.joined_by[&2], 1);
        assert!(c.blocked.is_empty());
    }

    #[test]
    fn an_unlink_blocks_the_union_and_a_manual_link_wins() {
        let mut edges = vec![e(0, 1, Method::Exact, 1.0), e(1, 2, Method::Exact, 1.0)];
        let c = Constraints {
            cannot: vec![(0, 2)],
            ..Constraints::default()
        };
        let out = cluster(3, &mut edges, &c);
        // (0,1) goes first; (1,2) would put 0 and 2 together.
        assert_eq!(out.group[0], out.group[1]);
        assert_ne!(out.group[1], out.group[2]);
        assert_eq!(out.blocked, vec![1]);

        let mut edges = vec![e(0, 1, Method::Exact, 1.0), e(1, 2, Method::Manual, 1.0)];
        let out = cluster(3, &mut edges, &c);
        assert_eq!(out.group[1], out.group[2]);
        assert_ne!(out.group[0], out.group[1]);
    }

    #[test]
    fn an_isolated_record_takes_only_manual_pairs() {
        let mut edges = vec![e(0, 1, Method::Exact, 1.0), e(0, 2, Method::Manual, 1.0)];
        let c = Constraints {
            isolated: [0].into(),
            ..Constraints::default()
        };
        let out = cluster(3, &mut edges, &c);
        assert_ne!(out.group[0], out.group[1]);
        assert_eq!(out.group[0], out.group[2]);
    }

    #[test]
    fn a_record_matching_two_unrelated_sites_is_ambiguous() {
        // 0 (a chain name without coordinates) matches 1 and 2, which do not match each other.
        let mut edges = vec![e(0, 1, Method::Fuzzy, 0.9), e(0, 2, Method::Fuzzy, 0.9)];
        let out = cluster(3, &mut edges, &Constraints::default());
        assert!(out.ambiguous.contains(&0));
        assert!(edges.iter().all(|e| !e.accepted));
        assert_eq!(out.group, vec![0, 1, 2]);

        // When 1 and 2 are one site themselves, 0 joins them.
        let mut edges = vec![
            e(0, 1, Method::Fuzzy, 0.9),
            e(0, 2, Method::Fuzzy, 0.9),
            e(1, 2, Method::Exact, 1.0),
        ];
        let out = cluster(3, &mut edges, &Constraints::default());
        assert!(out.ambiguous.is_empty());
        assert_eq!(out.group[0], out.group[2]);
    }
}
