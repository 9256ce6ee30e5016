//! The HTTP functions and their routes: one table that the Lambda mains, the local server,
//! the tests and the route checks (template.yaml, the `cargo lambda watch` router, the OpenAPI
//! document) all read, so a route cannot exist in one place and be missing in another.

use super::ApiState;
use lambda_http::{Body, Request, Response};
use std::pin::Pin;

/// What a handler returns: the response, borrowing the state for its lifetime.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;
/// One function's request handler.
pub type Handler = for<'a> fn(&'a ApiState, Request) -> HandlerFuture<'a>;

/// One HTTP Lambda function: its package name, its handler and the routes API Gateway sends it.
pub struct Function {
    /// Package, binary and `functions/` folder name.
    pub name: &'static str,
    pub handler: Handler,
    /// `(method, path)`; paths use API Gateway's `{param}` syntax.
    pub routes: &'static [(&'static str, &'static str)],
}

/// A table entry calling `$path` after checking the query against the OpenAPI document.
macro_rules! handler {
    ($path:path) => {
        |state, req| {
            Box::pin(async move {
                match super::openapi::check_query(&req) {
                    Ok(()) => $path(state, req).await,
                    Err(e) => e.into_response(),
                }
            })
        }
    };
}

/// Every HTTP function.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "api-health",
        handler: handler!(super::health::handle),
        routes: &[("GET", "/api/health")],
    },
    Function {
        name: "api-facilities",
        handler: handler!(super::facilities::handle),
        routes: &[("GET", "/api/facilities")],
    },
    Function {
        name: "api-openapi",
        handler: handler!(super::openapi::handle),
        routes: &[("GET", "/api/openapi.json")],
    },
    Function {
        name: "api-facility",
        handler: handler!(super::facility::handle),
        routes: &[("GET", "/api/facilities/{id}")],
    },
    Function {
        name: "api-facility-complete",
        handler: handler!(super::facility::handle_complete),
        routes: &[("GET", "/api/facilities/{id}/complete")],
    },
    Function {
        name: "api-facility-timeline",
        handler: handler!(super::facility::handle_timeline),
        routes: &[("GET", "/api/facilities/{id}/timeline")],
    },
    Function {
        name: "api-facilities-geojson",
        handler: handler!(super::geojson::handle),
        routes: &[("GET", "/api/facilities.geojson")],
    },
    Function {
        name: "api-dashboard",
        handler: handler!(super::dashboard::handle),
        routes: &[("GET", "/api/dashboard")],
    },
    Function {
        name: "api-smarts-violations",
        handler: handler!(super::smarts::handle_violations),
        routes: &[("GET", "/api/smarts/violations")],
    },
    Function {
        name: "api-smarts-enforcement",
        handler: handler!(super::smarts::handle_enforcement),
        routes: &[("GET", "/api/smarts/enforcement")],
    },
    Function {
        name: "api-smarts-inspections",
        handler: handler!(super::smarts::handle_inspections),
        routes: &[("GET", "/api/smarts/inspections")],
    },
    Function {
        name: "api-smarts-facilities",
        handler: handler!(super::smarts::handle_facilities),
        routes: &[("GET", "/api/smarts/facilities")],
    },
    Function {
        name: "api-violations",
        handler: handler!(super::violation_list::handle),
        routes: &[("GET", "/api/violations")],
    },
    Function {
        name: "api-violations-stats",
        handler: handler!(super::violation_list::handle_stats),
        routes: &[("GET", "/api/violations/stats")],
    },
    Function {
        name: "api-violation",
        handler: handler!(super::violations::handle),
        routes: &[("GET", "/api/violations/{id}")],
    },
    Function {
        name: "api-violation-status",
        handler: handler!(super::violations::handle_status),
        routes: &[("PATCH", "/api/violations/{id}/status")],
    },
    Function {
        name: "api-facility-links",
        handler: handler!(super::facility_links::handle),
        routes: &[("POST", "/api/facilities/{id}/links")],
    },
    Function {
        name: "api-facility-link-list",
        handler: handler!(super::facility_link_list::handle),
        routes: &[("GET", "/api/facility-links")],
    },
    Function {
        name: "api-nal-levels",
        handler: handler!(super::nal_levels::handle),
        routes: &[("GET", "/api/nal-levels")],
    },
    Function {
        name: "api-subscriptions",
        handler: handler!(super::subscriptions::handle),
        routes: &[
            ("POST", "/api/subscriptions"),
            ("GET", "/api/subscriptions"),
            ("DELETE", "/api/subscriptions/{id}"),
        ],
    },
    Function {
        name: "sync-status",
        handler: handler!(super::sync_status::handle),
        routes: &[("GET", "/api/sync/status"), ("GET", "/api/sync/runs/{id}")],
    },
];

/// The function called `name`.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Every `(method, path, function)`.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.routes.iter().map(move |(m, p)| (*m, *p, f.name)))
}

/// The function and route serving `method` `path` (a concrete path such as
/// `/api/facilities/42`), matching `{param}` segments against any non-empty segment.
pub fn resolve(method: &str, path: &str) -> Option<(&'static Function, &'static str)> {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    FUNCTIONS.iter().find_map(|f| {
        f.routes.iter().find_map(|(m, pattern)| {
            let pat: Vec<&str> = pattern.split('/').collect();
            let matches = m.eq_ignore_ascii_case(method)
                && pat.len() == segments.len()
                && pat.iter().zip(&segments).all(|(p, s)| {
                    (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s
                });
            matches.then_some((f, *pattern))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_unique_and_routes_resolve_to_their_function() {
        let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
        for (method, path, name) in all() {
            let concrete = path.replace("{id}", "7");
            let (f, pattern) = resolve(method, &concrete).expect(path);
            assert_eq!((f.name, pattern), (name, path));
        }
        assert!(resolve("GET", "/api/facilities/7/nope").is_none());
        assert!(resolve("PUT", "/api/facilities").is_none());
        // A literal segment wins where it is listed first.
        assert_eq!(
            resolve("GET", "/api/violations/stats").unwrap().0.name,
            "api-violations-stats"
        );
    }
}

#[cfg(test)]
mod deployment_tests {
    use super::*;
    use std::collections::BTreeSet;

    fn read(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(name),
        )
        .unwrap()
    }

    fn table() -> BTreeSet<(String, String, String)> {
        all()
            .map(|(m, p, f)| (m.to_owned(), p.to_owned(), f.to_owned()))
            .collect()
    }

    #[test]
    fn template_routes_are_the_route_table() {
        // `Binary:` names the function; each HttpApi event has `Path:` then `Method:`.
        let mut binary = String::new();
        let mut path = String::new();
        let mut routes = BTreeSet::new();
        for line in read("template.yaml").lines() {
            let t = line.trim();
            if let Some(b) = t.strip_prefix("Binary: ") {
                binary = b.to_owned();
            } else if let Some(p) = t.strip_prefix("Path: ") {
                path = p.to_owned();
            } else if let Some(m) = t.strip_prefix("Method: ") {
                routes.insert((m.to_owned(), std::mem::take(&mut path), binary.clone()));
            }
        }
        assert_eq!(routes, table());
    }

    #[test]
    fn the_local_watch_router_is_the_route_table() {
        let cargo = read("Cargo.toml");
        let section = cargo
            .split("[workspace.metadata.lambda.watch.router]")
            .nth(1)
            .unwrap();
        let router: BTreeSet<(String, String)> = section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| l.split_once(" = "))
            .map(|(p, f)| {
                (
                    p.trim_matches('"').to_owned(),
                    f.trim_matches('"').to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> =
            table().into_iter().map(|(_, p, f)| (p, f)).collect();
        assert_eq!(router, expected);
        // Every HTTP function has its package.
        for f in FUNCTIONS {
            let main = read(&format!("functions/{}/src/main.rs", f.name));
            assert!(
                main.contains("stormwater::lambda::serve_http(env!(\"CARGO_PKG_NAME\"))"),
                "{}",
                f.name
            );
        }
    }
}
