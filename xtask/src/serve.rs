//! `xtask serve [--addr 127.0.0.1:9100] [--no-cache] [--cache-namespace NAME] [--db-connections N]`:
//! every HTTP function
//! of `api::routes::FUNCTIONS` behind one concurrent local HTTP server (the target of API
//! fuzzing and of `xtask bench-api`).
//!
//! Each request is routed with `routes::resolve` and handed to the function's handler as API
//! Gateway (HTTP API, payload 2.0) would hand it to the Lambda: the server builds the event
//! (`rawPath` percent-decoded as API Gateway sends it, `rawQueryString` as received, headers
//! with repeated values comma-joined, `cookies`, `pathParameters`, `requestContext` with the
//! route key and stage `$default`, the body as text or base64) and converts it with lambda_http's
//! own event conversion, the code the Lambda runtime runs. So the handler sees the query string
//! parameters that lambda_http parses from `rawQueryString` (repeated parameters keep every
//! value), the path parameters, the request context and the body as `Body::Empty` / `Text` /
//! `Binary`. A path no route matches is a 404, a known path with another method a 405 (with
//! `Allow`), a path or query that is not UTF-8 once percent-decoded a 400, all in the API's JSON
//! error shape. A handler that panics is answered with a 500 (and logged), never a dropped
//! connection.

use anyhow::{Context as _, bail};
use axum::extract::{ConnectInfo, State};
use base64::Engine as _;
use lambda_http::http::{self, HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::request::LambdaRequest;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use stormwater::api::ApiState;
use stormwater::api::routes::{self, Function};
use stormwater::cache::Cache;
use stormwater::config::Config;
use stormwater::http::ApiError;

/// API Gateway's payload limit (HTTP APIs: 10 MB).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Command-line options of `xtask serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub addr: SocketAddr,
    /// Build the state with the cache disabled even when `REDIS_URL` is set.
    pub no_cache: bool,
    /// Cache key namespace (default `sw`, the deployment's); a test serving its own database
    /// uses its own so that it never reads another database's answers.
    pub cache_namespace: String,
    /// Pool size shared by all concurrent requests (a Lambda environment has its own pool of
    /// `DB_MAX_CONNECTIONS` and serves one request at a time; this server serves many).
    pub db_connections: u32,
}

impl Options {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut opts = Options {
            addr: "127.0.0.1:9100".parse()?,
            no_cache: false,
            cache_namespace: "sw".to_owned(),
            db_connections: 16,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--addr" => {
                    let v = it.next().context("--addr needs host:port")?;
                    opts.addr = v.parse().with_context(|| format!("--addr {v}"))?;
                }
                "--no-cache" => opts.no_cache = true,
                "--cache-namespace" => {
                    opts.cache_namespace = it
                        .next()
                        .filter(|v| !v.is_empty())
                        .context("--cache-namespace needs a name")?
                        .clone();
                }
                "--db-connections" => {
                    let v = it.next().context("--db-connections needs a number")?;
                    opts.db_connections = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("--db-connections {v}"))?;
                }
                other => bail!(
                    "unknown option {other}; usage: xtask serve [--addr 127.0.0.1:9100] [--no-cache] [--cache-namespace NAME] [--db-connections N]"
                ),
            }
        }
        Ok(opts)
    }
}

/// What the server shares between requests.
pub struct App {
    state: &'static ApiState,
    local: SocketAddr,
    requests: AtomicU64,
}

impl App {
    pub fn new(state: &'static ApiState, local: SocketAddr) -> Self {
        Self {
            state,
            local,
            requests: AtomicU64::new(0),
        }
    }
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn run(mut cfg: Config, opts: Options) -> anyhow::Result<()> {
    cfg.db_max_connections = opts.db_connections;
    let state = ApiState::new(
        stormwater::db::pool(&cfg)?,
        if opts.no_cache {
            Cache::disabled()
        } else {
            Cache::with_namespace(cfg.redis_url.as_deref(), &opts.cache_namespace)
        },
        stormwater::api::WriteSettings::from_config(&cfg),
    );
    let state: &'static ApiState = Box::leak(Box::new(state));
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("binding {}", opts.addr))?;
    let local = listener.local_addr()?;
    let app = Arc::new(App::new(state, local));
    let router = axum::Router::new().fallback(fallback).with_state(app);
    println!(
        "serving {} routes of {} functions on http://{local} (cache {}, {} database connections)",
        routes::all().count(),
        routes::FUNCTIONS.len(),
        if opts.no_cache || cfg.redis_url.is_none() {
            "disabled"
        } else {
            "on"
        },
        opts.db_connections
    );
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn fallback(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    respond(&app, peer, req).await
}

/// One request, start to end.
pub async fn respond(
    app: &App,
    peer: SocketAddr,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let routed = match route(parts.method.as_str(), parts.uri.path()) {
        Ok(r) => r,
        Err(resp) => return to_axum(*resp),
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return to_axum(too_large()),
    };
    let n = app.requests.fetch_add(1, Ordering::Relaxed);
    let req = match to_lambda(&parts, &body, &routed, peer, app.local, n) {
        Ok(r) => r,
        Err(e) => return to_axum(e.into_response()),
    };
    let (state, function) = (app.state, routed.function);
    let resp = match tokio::spawn(async move { function.handle(state, req).await }).await {
        Ok(resp) => resp,
        Err(e) => ApiError::Internal(format!("{} handler failed: {e}", routed.function.name))
            .into_response(),
    };
    to_axum(resp)
}

/// A request matched to its function.
pub struct Routed {
    pub function: &'static Function,
    /// The route as declared (`/api/violations/{id}`).
    pub pattern: &'static str,
    /// The path percent-decoded, as API Gateway puts it in `rawPath`.
    pub path: String,
    pub params: HashMap<String, String>,
}

impl std::fmt::Debug for Routed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("function", &self.function.name)
            .field("pattern", &self.pattern)
            .field("path", &self.path)
            .field("params", &self.params)
            .finish()
    }
}

/// Routes `method` `raw_path` (as received, percent-encoded) through `routes::resolve`; the
/// error response is 404, 405 (with `Allow`) or 400 (not UTF-8).
pub fn route(
    method: &str,
    raw_path: &str,
) -> Result<Routed, Box<lambda_http::Response<lambda_http::Body>>> {
    let path = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| {
            Box::new(ApiError::bad("path", "not valid UTF-8 once percent-decoded").into_response())
        })?
        .into_owned();
    if let Some((function, pattern)) = routes::resolve(method, &path) {
        let segments = path.trim_end_matches('/').split('/');
        let params = pattern
            .split('/')
            .zip(segments)
            .filter_map(|(p, s)| {
                let name = p.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_owned(), s.to_owned()))
            })
            .collect();
        return Ok(Routed {
            function,
            pattern,
            path,
            params,
        });
    }
    let mut allowed: Vec<&str> = routes::all()
        .map(|(m, _, _)| m)
        .filter(|m| routes::resolve(m, &path).is_some())
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    if allowed.is_empty() {
        return Err(Box::new(
            ApiError::NotFound(format!("no route for {path}")).into_response(),
        ));
    }
    let mut resp = ApiError::MethodNotAllowed.into_response();
    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    Err(Box::new(resp))
}

/// A query string whose keys and values are UTF-8 once decoded (`+` is a space, as in
/// lambda_http's parsing); otherwise a 400 naming the parameter.
fn check_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> Vec<u8> {
            percent_encoding::percent_decode(s.replace('+', " ").as_bytes()).collect()
        };
        let key = decode(k);
        let name = String::from_utf8_lossy(&key).into_owned();
        if std::str::from_utf8(&key).is_err() || std::str::from_utf8(&decode(v)).is_err() {
            return Err(ApiError::bad(&name, "not valid UTF-8 once percent-decoded"));
        }
    }
    Ok(())
}

/// Bodies API Gateway passes as text; everything else arrives base64-encoded.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || [
            "application/json",
            "application/xml",
            "application/javascript",
            "application/x-www-form-urlencoded",
            "application/graphql",
        ]
        .contains(&ct.as_str())
}

/// A host header lambda_http can put in a URL (`name[:port]`); anything else is replaced by
/// the server's own address, as API Gateway only ever forwards its own domain.
fn usable_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// The API Gateway HTTP API (payload 2.0) event for this request.
pub fn event(
    parts: &http::request::Parts,
    body: &[u8],
    routed: &Routed,
    peer: SocketAddr,
    local: SocketAddr,
    request_no: u64,
) -> Result<Value, ApiError> {
    let raw_query = parts.uri.query().unwrap_or_default();
    check_query(raw_query)?;
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let mut values = Vec::new();
        for v in parts.headers.get_all(name) {
            let v = std::str::from_utf8(v.as_bytes())
                .map_err(|_| ApiError::bad(name.as_str(), "header value is not UTF-8"))?;
            values.push(v);
        }
        if name == header::COOKIE {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
        } else {
            headers.insert(name.as_str().to_owned(), json!(values.join(",")));
        }
    }
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .filter(|h| usable_host(h))
        .map_or_else(|| local.to_string(), str::to_owned);
    headers.insert("host".into(), json!(host));
    headers.insert("x-forwarded-for".into(), json!(peer.ip().to_string()));
    headers.insert("x-forwarded-port".into(), json!(local.port().to_string()));
    headers.insert("x-forwarded-proto".into(), json!("http"));
    let mut query_params: Map<String, Value> = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query_params.get_mut(k.as_ref()) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(&v);
            }
            _ => {
                query_params.insert(k.into_owned(), json!(v));
            }
        }
    }
    let route_key = format!("{} {}", parts.method, routed.pattern);
    let now = chrono::Utc::now();
    let text = is_text(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let (body, base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (None, false),
        Ok(s) if text => (Some(s.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let mut ev = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": routed.path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "http": {
                "method": parts.method.as_str(),
                "path": routed.path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": format!("local-{request_no}"),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": base64,
    });
    if !cookies.is_empty() {
        ev["cookies"] = json!(cookies);
    }
    if !query_params.is_empty() {
        ev["queryStringParameters"] = Value::Object(query_params);
    }
    if !routed.params.is_empty() {
        ev["pathParameters"] = json!(routed.params);
    }
    if let Some(b) = body {
        ev["body"] = json!(b);
    }
    Ok(ev)
}

/// The `lambda_http::Request` the function's runtime would build from the API Gateway event.
pub fn to_lambda(
    parts: &http::request::Parts,
    body: &[u8],
    routed: &Routed,
    peer: SocketAddr,
    local: SocketAddr,
    request_no: u64,
) -> Result<lambda_http::Request, ApiError> {
    let ev = event(parts, body, routed, peer, local, request_no)?;
    let ev: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(ev).map_err(|e| {
            ApiError::bad(
                "request",
                format!("cannot be presented as an API Gateway event: {e}"),
            )
        })?;
    // lambda_http's conversion unwraps what API Gateway guarantees (a parsable URL); never let
    // a surprise there take the server down.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        http::Request::from(LambdaRequest::ApiGatewayV2(ev))
    }))
    .map_err(|_| ApiError::Internal("the API Gateway event conversion panicked".into()))
}

fn too_large() -> lambda_http::Response<lambda_http::Body> {
    let status = StatusCode::PAYLOAD_TOO_LARGE;
    stormwater::http::json_response(
        status,
        &json!({"error": {
            "status": status.as_u16(),
            "code": "payload_too_large",
            "message": format!("the body is larger than {MAX_BODY} bytes"),
        }}),
        "no-store",
    )
}

/// The handler's response as an HTTP response (status, headers, body bytes).
pub fn to_axum(resp: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    let (parts, body) = resp.into_parts();
    let bytes = bytes::Bytes::copy_from_slice(body.as_ref());
    let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = strip_hop_by_hop(parts.headers);
    out
}

fn strip_hop_by_hop(mut h: HeaderMap) -> HeaderMap {
    for name in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ] {
        h.remove(name);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::{Body, RequestExt};

    fn parts(method: &str, uri: &str, headers: &[(&str, &[u8])]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, HeaderValue::from_bytes(v).unwrap());
        }
        b.body(()).unwrap().into_parts().0
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn convert(
        method: &str,
        uri: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> lambda_http::Request {
        let p = parts(method, uri, headers);
        let routed = route(method, p.uri.path()).expect("routes");
        to_lambda(
            &p,
            body,
            &routed,
            addr("10.1.2.3:5555"),
            addr("127.0.0.1:9100"),
            1,
        )
        .expect("converts")
    }

    fn error_of(resp: &lambda_http::Response<Body>) -> Value {
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        serde_json::from_str(t).unwrap()
    }

    /// A GET route of the table, made concrete, and its first `{param}` name.
    fn get_route_with_param() -> (String, &'static str, &'static str) {
        let (_, pattern, name) = routes::all()
            .find(|(m, p, _)| *m == "GET" && p.contains('{'))
            .expect("a GET route with a path parameter");
        let param = pattern
            .split('/')
            .find_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .unwrap();
        (pattern.replace(&format!("{{{param}}}"), "42"), param, name)
    }

    #[test]
    fn query_parameters_keep_repeated_values_and_are_decoded() {
        let req = convert(
            "GET",
            "/api/violations?source=smarts&severity=high&severity=low&q=a%20b+c&empty=&flag",
            &[("host", b"localhost:9100")],
            b"",
        );
        let q = req.query_string_parameters();
        assert_eq!(q.all("severity").unwrap(), ["high", "low"]);
        assert_eq!(q.first("source"), Some("smarts"));
        assert_eq!(q.first("q"), Some("a b c"));
        assert_eq!(q.first("empty"), Some(""));
        assert_eq!(q.first("flag"), Some(""));
        assert_eq!(req.uri().path(), "/api/violations");
        assert_eq!(req.method(), "GET");
        assert!(matches!(req.body(), Body::Empty));
        assert!(req.path_parameters().is_empty());
        let lambda_http::request::RequestContext::ApiGatewayV2(ctx) =
            req.request_context_ref().unwrap()
        else {
            panic!("an API Gateway v2 context")
        };
        assert_eq!(ctx.route_key.as_deref(), Some("GET /api/violations"));
        assert_eq!(ctx.http.source_ip.as_deref(), Some("10.1.2.3"));
        assert!(ctx.authorizer.is_none(), "no JWT claims can be injected");
    }

    #[test]
    fn path_parameters_come_from_the_route_pattern() {
        let (concrete, param, function) = get_route_with_param();
        let req = convert("GET", &format!("{concrete}/"), &[], b"");
        assert_eq!(req.path_parameters().first(param), Some("42"));
        assert_eq!(req.uri().path(), format!("{concrete}/"));
        let routed = route("GET", &concrete).unwrap();
        assert_eq!(routed.function.name, function);
    }

    #[test]
    fn bodies_arrive_as_text_binary_or_empty_and_headers_pass() {
        let (concrete, _, _) = get_route_with_param();
        let json = br#"{"status":"under_review"}"#;
        let req = convert(
            "GET",
            &concrete,
            &[
                ("content-type", b"application/json"),
                ("x-api-key", b"sw_abc"),
                ("accept", b"a"),
                ("accept", b"b"),
                ("cookie", b"a=1; b=2"),
            ],
            json,
        );
        assert_eq!(
            req.body(),
            &Body::Text(String::from_utf8(json.to_vec()).unwrap())
        );
        assert_eq!(req.headers()["x-api-key"], "sw_abc");
        assert_eq!(req.headers()["accept"], "a,b");
        assert_eq!(req.headers()["cookie"], "a=1; b=2");
        let bin = [0u8, 159, 146, 150, 255];
        let req = convert(
            "GET",
            &concrete,
            &[("content-type", b"application/octet-stream")],
            &bin,
        );
        assert_eq!(req.body(), &Body::Binary(bin.to_vec()));
        // Not UTF-8 although the type says JSON: base64 on the wire, bytes to the handler.
        let req = convert(
            "GET",
            &concrete,
            &[("content-type", b"application/json")],
            &bin,
        );
        assert_eq!(req.body().as_ref(), bin);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_in_the_json_error_shape() {
        let resp = *route("GET", "/api/no-such-thing").unwrap_err();
        assert_eq!(resp.status(), 404);
        assert_eq!(error_of(&resp)["error"]["status"], 404);
        let (method, path, _) = routes::all().next().unwrap();
        let other = if method == "DELETE" { "PUT" } else { "DELETE" };
        let concrete = path.replace(['{', '}'], "");
        let resp = *route(other, &concrete).unwrap_err();
        assert_eq!(resp.status(), 405);
        assert_eq!(error_of(&resp)["error"]["code"], "method_not_allowed");
        assert!(resp.headers()["allow"].to_str().unwrap().contains(method));
    }

    #[test]
    fn odd_input_is_a_400_or_passes_through_never_a_panic() {
        // Not UTF-8 once decoded: 400 naming the parameter.
        let p = parts("GET", "/api/violations?county=%FF%FE", &[]);
        let routed = route("GET", p.uri.path()).unwrap();
        let err = to_lambda(
            &p,
            b"",
            &routed,
            addr("127.0.0.1:1"),
            addr("127.0.0.1:2"),
            0,
        )
        .unwrap_err()
        .into_response();
        assert_eq!(err.status(), 400);
        assert_eq!(error_of(&err)["error"]["parameter"], "county");
        let resp = *route("GET", "/api/%C3%28").unwrap_err();
        assert_eq!(resp.status(), 400);
        // Junk escapes are kept literally, as lambda_http's parser does.
        for uri in [
            "/api/violations?county=%zz&%=%%&a=%2",
            "/api/violations?&&=&==x",
            "/api/violations?q=%00%0A%E2%82%AC",
            "/api/violations/%3F%23x",
            "/api/violations/%20",
            "/api/violations//",
        ] {
            let p = parts(
                "GET",
                uri,
                &[("host", b"bad host:99999"), ("x-forwarded-proto", b"a b")],
            );
            if let Ok(routed) = route("GET", p.uri.path()) {
                let r = to_lambda(
                    &p,
                    b"\xff",
                    &routed,
                    addr("127.0.0.1:1"),
                    addr("127.0.0.1:2"),
                    0,
                );
                assert!(r.is_ok(), "{uri}: {:?}", r.err());
            }
        }
        let req = convert("GET", "/api/violations?county=%zz", &[], b"");
        assert_eq!(req.query_string_parameters().first("county"), Some("%zz"));
        let p = parts("GET", "/api/violations", &[("x-note", "é".as_bytes())]);
        let routed = route("GET", "/api/violations").unwrap();
        assert!(
            to_lambda(
                &p,
                b"",
                &routed,
                addr("127.0.0.1:1"),
                addr("127.0.0.1:2"),
                0
            )
            .is_ok()
        );
        let p = parts("GET", "/api/violations", &[("x-note", b"\xff")]);
        let err = to_lambda(
            &p,
            b"",
            &routed,
            addr("127.0.0.1:1"),
            addr("127.0.0.1:2"),
            0,
        )
        .unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { .. }));
    }

    #[test]
    fn options_parse() {
        let o =
            Options::parse(&["--no-cache".into(), "--addr".into(), "0.0.0.0:1".into()]).unwrap();
        assert!(o.no_cache);
        assert_eq!(o.addr, addr("0.0.0.0:1"));
        assert!(Options::parse(&["--nope".into()]).is_err());
        let o = Options::parse(&["--cache-namespace".into(), "t1".into()]).unwrap();
        assert_eq!(o.cache_namespace, "t1");
        assert!(Options::parse(&["--cache-namespace".into()]).is_err());
        assert!(Options::parse(&["--db-connections".into(), "0".into()]).is_err());
    }

    #[tokio::test]
    async fn the_server_answers_routing_errors_without_calling_a_handler() {
        let cfg_url = "postgres://nobody@127.0.0.1:1/none";
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy(cfg_url)
            .unwrap();
        let state: &'static ApiState = Box::leak(Box::new(ApiState::new(
            pool,
            Cache::disabled(),
            Default::default(),
        )));
        let app = App::new(state, addr("127.0.0.1:9100"));
        for (method, uri, status) in [
            ("GET", "/api/nope", 404),
            ("TRACE", "/api/violations", 405),
            ("GET", "/api/violations?x=%C0", 400),
        ] {
            let req = http::Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = respond(&app, addr("127.0.0.1:5"), req).await;
            assert_eq!(resp.status(), status, "{method} {uri}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["status"], status);
        }
    }
}
