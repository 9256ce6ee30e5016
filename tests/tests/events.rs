//! The sample events (`events/<function>/*.json`, for `cargo lambda invoke`): every function
//! has some and every events folder is a function's; each event is what AWS delivers to that
//! function for its trigger in template.yaml (an API Gateway HTTP API payload 2.0 request, a
//! full SQS event from the function's queue, the weekly schedule's `Input`); and each runs
//! through its function's real handler after the sample sync, with the outcome its name says.
//!
//! HTTP events are named for the status they get: `bad-*` 400, `unauth-*` 401, `missing-*`
//! 404, `moved-*` 308 (a merged facility; the redirect is followed too), `create-*` 201, any
//! other 200. A `bad-*` SQS event lists in [`expected_failures`] which of its messages the
//! batch response reports as failed; every other SQS event reports none.

mod support;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::Body;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use stormwater::api::routes;
use stormwater::sync::stage::StageRequest;
use stormwater::sync::{finalize, import, stage};
use support::{Harness, harness, root};

/// The stack name the sample events assume (queue names, ARNs), as `./dev` names its queues.
const STACK: &str = "stormwater";
/// The account of the sample events (API Gateway and SQS).
const ACCOUNT: &str = "123456789012";
/// Functions invoked directly with a JSON payload (no trigger envelope).
const INVOKED: &[&str] = &["facility-link", "violations-compute", "migrate"];
/// SMARTS lists the sample sync loads nothing for: their events answer an empty page.
const EMPTY_ON_SAMPLE: &[&str] = &[
    "api-smarts-violations",
    "api-smarts-enforcement",
    "api-smarts-inspections",
];

fn folders(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

/// One resource of template.yaml, as far as triggers go.
#[derive(Default, Debug)]
struct Resource {
    binary: Option<String>,
    /// `Queue: !GetAtt <resource>.Arn` of an SQS event.
    queue: Option<String>,
    batch_size: Option<usize>,
    /// `Input:` of a `Schedule` event.
    schedule_input: Option<String>,
    /// What follows `${AWS::StackName}-` in `QueueName`.
    queue_name: Option<String>,
}

/// The resources of template.yaml (read line by line, as the route checks do).
fn template() -> BTreeMap<String, Resource> {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut out: BTreeMap<String, Resource> = BTreeMap::new();
    let mut current = String::new();
    let mut schedule = false;
    for line in text.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            current = line.trim().trim_end_matches(':').to_owned();
            continue;
        }
        let r = out.entry(current.clone()).or_default();
        let t = line.trim();
        if let Some(b) = t.strip_prefix("Binary: ") {
            r.binary = Some(b.to_owned());
        } else if let Some(q) = t.strip_prefix("Queue: !GetAtt ") {
            r.queue = Some(q.trim_end_matches(".Arn").to_owned());
        } else if let Some(n) = t.strip_prefix("BatchSize: ") {
            r.batch_size = Some(n.parse().unwrap());
        } else if let Some(n) = t.strip_prefix("QueueName: !Sub ${AWS::StackName}-") {
            r.queue_name = Some(n.to_owned());
        } else if t.starts_with("Type: ") {
            schedule = t == "Type: Schedule";
        } else if let Some(i) = t.strip_prefix("Input: ")
            && schedule
        {
            r.schedule_input = Some(i.trim_matches('\'').to_owned());
        }
    }
    out
}

/// The queue that triggers `function` (template.yaml): its name and its batch size.
fn queue_of(t: &BTreeMap<String, Resource>, function: &str) -> Option<(String, usize)> {
    let f = t.values().find(|r| r.binary.as_deref() == Some(function))?;
    let queue = f.queue.as_ref()?;
    let name = t[queue].queue_name.as_ref().expect("queue has a QueueName");
    Some((
        format!("{STACK}-{name}"),
        f.batch_size.expect("SQS event has a BatchSize"),
    ))
}

fn expected_status(name: &str) -> u16 {
    [
        ("bad-", 400),
        ("unauth-", 401),
        ("missing-", 404),
        ("moved-", 308),
        ("create-", 201),
    ]
    .iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map_or(200, |(_, s)| *s)
}

/// The messages of a `bad-*` SQS event that its batch response must report as failed.
/// The batch response names exactly the messages a `bad-*` event is expected to fail, and none
/// for any other event.
fn assert_failures(
    resp: &aws_lambda_events::event::sqs::SqsBatchResponse,
    function: &str,
    name: &str,
    what: &str,
) {
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    if name.starts_with("bad-") {
        assert_eq!(failed, expected_failures(function, name), "{what}");
    } else {
        assert!(failed.is_empty(), "{what}: {failed:?}");
    }
}

fn expected_failures(function: &str, name: &str) -> Vec<&'static str> {
    match (function, name) {
        // Chunk 0 is a redelivery (acknowledged, nothing changes); the file has no chunk 1.
        ("sync-import", "bad-unknown-chunk") => vec!["c81f5a3e-0b7d-4a29-9e64-5d3f2b1a0c98"],
        ("sync-finalize", "bad-unknown-run") => vec!["e4a9d2c7-61b0-4f3e-a5d8-7c2b9e0f1a36"],
        // Run 999999 has no file 999999.
        ("sync-stage-file", "bad-unknown-file") => vec!["9a7d3c21-4e8b-4f05-b6a2-0c5e9d8f1b63"],
        // Run 999999 has no parts.
        ("sync-finalize-part", "bad-unknown-part") => vec!["b52e0c8a-91f7-4d3e-8a6b-3f1d7c9e2a40"],
        _ => panic!("events/{function}/{name}.json: say in expected_failures which messages fail"),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// An API Gateway HTTP API payload 2.0 request for one of `function`'s routes, self-consistent
/// as API Gateway builds it.
fn check_http_shape(function: &routes::Function, event: &Value, what: &str) {
    assert_eq!(event["version"], "2.0", "{what}: version");
    let route_key = s(event, "routeKey");
    let ctx = &event["requestContext"];
    assert_eq!(
        ctx["routeKey"], route_key,
        "{what}: requestContext.routeKey"
    );
    let (method, pattern) = route_key.split_once(' ').unwrap();
    let routes: Vec<(&str, &str)> = function.routes.iter().map(|r| (r.method, r.path)).collect();
    assert!(
        routes.contains(&(method, pattern)),
        "{what}: {route_key} is not a route of {} ({routes:?})",
        function.name,
    );
    assert_eq!(ctx["http"]["method"], method, "{what}: http.method");
    let raw_path = s(event, "rawPath");
    assert_eq!(ctx["http"]["path"], raw_path, "{what}: http.path");
    assert_eq!(ctx["stage"], "$default", "{what}: stage");
    assert_eq!(ctx["accountId"], ACCOUNT, "{what}: accountId");
    for key in ["requestId", "time", "domainName", "apiId"] {
        assert!(ctx[key].is_string(), "{what}: requestContext.{key}");
    }
    assert!(
        ctx["timeEpoch"].is_i64(),
        "{what}: requestContext.timeEpoch"
    );
    // Path parameters: exactly the {param} segments of the route.
    let mut params = serde_json::Map::new();
    let segments: Vec<&str> = raw_path.split('/').collect();
    let pat: Vec<&str> = pattern.split('/').collect();
    assert_eq!(segments.len(), pat.len(), "{what}: {raw_path} vs {pattern}");
    for (p, seg) in pat.iter().zip(&segments) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), json!(seg));
            }
            None => assert_eq!(p, seg, "{what}: {raw_path} vs {pattern}"),
        }
    }
    if params.is_empty() {
        assert!(
            event.get("pathParameters").is_none(),
            "{what}: pathParameters"
        );
    } else {
        assert_eq!(event["pathParameters"], Value::Object(params), "{what}");
    }
    // Query: queryStringParameters is rawQueryString decoded, repeats comma-joined.
    let raw_query = s(event, "rawQueryString");
    let mut decoded: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        decoded
            .entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    if decoded.is_empty() {
        assert!(
            event.get("queryStringParameters").is_none(),
            "{what}: queryStringParameters without a query"
        );
    } else {
        assert_eq!(
            event["queryStringParameters"],
            json!(decoded),
            "{what}: queryStringParameters"
        );
    }
    // Headers: lowercase, the host is the API's domain, the length is the body's.
    let headers = event["headers"].as_object().unwrap();
    assert!(
        headers.keys().all(|k| *k == k.to_lowercase()),
        "{what}: header names are lowercase"
    );
    assert_eq!(headers["host"], ctx["domainName"], "{what}: host");
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    assert_eq!(
        headers["content-length"],
        body.len().to_string(),
        "{what}: content-length"
    );
    assert_eq!(event["isBase64Encoded"], false, "{what}: isBase64Encoded");
    // Credentials: API Gateway's JWT authorizer passes the verified claims of the write
    // routes; an `unauth-*` event is one that reached the function without them.
    let claims = &ctx["authorizer"]["jwt"]["claims"];
    let name = what.rsplit('/').next().unwrap();
    if name.starts_with("unauth-") {
        assert!(ctx.get("authorizer").is_none(), "{what}: has credentials");
        assert!(!headers.contains_key("authorization"), "{what}");
    } else if method != "GET" || function.name == "api-subscriptions" {
        assert!(claims["sub"].is_string(), "{what}: no verified JWT claims");
        assert!(
            claims.as_object().unwrap().values().all(Value::is_string),
            "{what}: API Gateway passes claims as strings"
        );
        assert!(
            headers["authorization"]
                .as_str()
                .is_some_and(|a| a.starts_with("Bearer ")),
            "{what}: the token is in the authorization header"
        );
    } else {
        assert!(ctx.get("authorizer").is_none(), "{what}: a public route");
    }
}

/// A full SQS event as Lambda's event source mapping delivers it from `queue`.
fn check_sqs_shape(event: &Value, queue: &str, batch_size: usize, what: &str) {
    let records = event["Records"].as_array().expect("Records");
    assert!(
        !records.is_empty() && records.len() <= batch_size,
        "{what}: 1 to {batch_size} records (BatchSize in template.yaml)"
    );
    let fifo = queue.ends_with(".fifo");
    let mut ids = BTreeSet::new();
    for r in records {
        assert!(ids.insert(s(r, "messageId")), "{what}: messageId repeated");
        assert!(!s(r, "receiptHandle").is_empty(), "{what}: receiptHandle");
        let body = s(r, "body");
        let md5: String = Md5::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r["md5OfBody"], md5, "{what}: md5OfBody is the body's MD5");
        assert_eq!(r["eventSource"], "aws:sqs", "{what}");
        let region = s(r, "awsRegion");
        assert_eq!(
            r["eventSourceARN"],
            format!("arn:aws:sqs:{region}:{ACCOUNT}:{queue}"),
            "{what}: the function's queue (template.yaml)"
        );
        assert!(
            r["messageAttributes"].is_object(),
            "{what}: messageAttributes"
        );
        let a = &r["attributes"];
        let n = |k: &str| -> u64 {
            s(a, k)
                .parse()
                .unwrap_or_else(|_| panic!("{what}: {k} is not a number"))
        };
        assert!(n("ApproximateReceiveCount") >= 1, "{what}");
        assert!(
            n("ApproximateFirstReceiveTimestamp") >= n("SentTimestamp"),
            "{what}: received after it was sent"
        );
        assert!(!s(a, "SenderId").is_empty(), "{what}: SenderId");
        for k in ["MessageGroupId", "SequenceNumber", "MessageDeduplicationId"] {
            assert_eq!(
                a.get(k).is_some_and(Value::is_string),
                fifo,
                "{what}: {k} is there exactly for a FIFO queue"
            );
        }
    }
}

/// `file://` URLs relative to the checkout (where `cargo lambda watch` runs) made absolute.
fn from_checkout(mut req: StageRequest) -> StageRequest {
    for s in req.sources.iter_mut().flatten() {
        if let Some(rel) = s.url.strip_prefix("file://")
            && !rel.starts_with('/')
        {
            // The real files beside the checkout, or wherever STORMWATER_SHARED_DATA says.
            let path = match rel.strip_prefix("../shared/data/") {
                Some(data) => support::shared_data(data),
                None => root().join(rel),
            };
            assert!(path.exists(), "{} does not exist", path.display());
            s.url = format!("file://{}", path.display());
        }
    }
    req
}

/// Runs a stage event and the queues it fills, as `./dev up` does.
async fn sync_event(h: &Harness, text: &str) -> stage::StageSummary {
    let req: StageRequest = serde_json::from_str(text).unwrap();
    let summary = h.stage_request(from_checkout(req)).await;
    h.drain().await;
    summary
}

/// The `resource_show` of a data portal that knows none of the manifest's resources; it
/// records which ids were asked for.
async fn portal_without_resources() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::extract::{Query, State};
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/3/action/resource_show",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new()
        .route(
            "/api/3/action/resource_show",
            axum::routing::get(
                |State(asked): State<Arc<Mutex<Vec<String>>>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    asked
                        .lock()
                        .unwrap()
                        .push(q.get("id").cloned().unwrap_or_default());
                    axum::Json(json!({
                        "success": false,
                        "error": { "message": "Not found", "__type": "Not Found Error" },
                    }))
                },
            ),
        )
        .with_state(asked.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, asked)
}

struct HttpAnswer {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    text: String,
    bytes: Vec<u8>,
}

impl HttpAnswer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call_http(h: &Harness, function: &routes::Function, event: &Value) -> HttpAnswer {
    let req = lambda_http::request::from_str(&event.to_string()).expect("a payload 2.0 request");
    let resp = function.handle(&h.api, req).await;
    let bytes = match resp.body() {
        Body::Text(t) => t.clone().into_bytes(),
        Body::Empty => Vec::new(),
        Body::Binary(b) => b.clone(),
        _ => panic!("unexpected body"),
    };
    HttpAnswer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        // A ZIP is not text; everything else is UTF-8.
        text: String::from_utf8(bytes.clone()).unwrap_or_default(),
        bytes,
    }
}

/// What a 2xx answer must show beyond its status.
fn check_http_outcome(function: &routes::Function, event: &Value, answer: &HttpAnswer, what: &str) {
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type == "application/zip" {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(answer.bytes.clone()))
            .unwrap_or_else(|e| panic!("{what}: a ZIP: {e}"));
        let manifest: Value =
            serde_json::from_reader(zip.by_name("manifest.json").expect("a manifest")).unwrap();
        let path_id: i64 = event["pathParameters"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(manifest["facility"]["id"], path_id, "{what}");
        assert!(
            manifest["files"].as_array().unwrap().len() >= 9,
            "{what}: {manifest}"
        );
        return;
    }
    if content_type.starts_with("application/atom+xml") {
        assert!(
            answer.text.starts_with("<?xml") && answer.text.contains("<entry>"),
            "{what}: an Atom feed with entries: {}",
            answer.text
        );
        return;
    }
    if content_type.starts_with("text/csv") {
        assert!(
            answer.text.lines().count() >= 2,
            "{what}: a header and at least one row: {}",
            answer.text
        );
        return;
    }
    let body = answer.json();
    let path_id: Option<i64> = event["pathParameters"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok());
    match function.name {
        "api-openapi" => assert!(s(&body, "openapi").starts_with("3.1"), "{what}"),
        "api-health" => assert_eq!(body["database"], "ok", "{what}: {body}"),
        "api-facilities-geojson" => assert!(
            !body["features"].as_array().unwrap().is_empty(),
            "{what} found nothing"
        ),
        f if EMPTY_ON_SAMPLE.contains(&f) => {
            assert_eq!(body["data"], json!([]), "{what}: {body}");
            assert!(body["stats"].is_object(), "{what}: stats");
        }
        "api-facility-links" => {
            assert_eq!(body["data"]["linkedTo"], json!(path_id), "{what}: {body}")
        }
        "api-violation-status" => {
            let want = serde_json::from_str::<Value>(s(event, "body")).unwrap()["status"].clone();
            assert_eq!(body["data"]["status"], want, "{what}: {body}");
        }
        "api-subscriptions" if event["requestContext"]["http"]["method"] != "GET" => {
            let sub = s(
                &event["requestContext"]["authorizer"]["jwt"]["claims"],
                "sub",
            );
            assert_eq!(
                body["data"]["owner"],
                format!("jwt:{sub}"),
                "{what}: {body}"
            );
        }
        _ => match &body["data"] {
            Value::Array(items) => assert!(!items.is_empty(), "{what} found nothing"),
            Value::Object(data) => {
                if let (Some(id), Some(got)) = (path_id, data.get("id")) {
                    assert_eq!(got, &json!(id), "{what}: the requested id");
                }
            }
            other => panic!("{what}: data is {other}"),
        },
    }
}

/// A `moved-*` answer: a 308 to the canonical facility, and that one answers.
async fn follow_redirect(
    h: &Harness,
    function: &routes::Function,
    event: &Value,
    answer: &HttpAnswer,
    what: &str,
) {
    let location = answer
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what}: a 308 without Location"));
    let raw_path = s(event, "rawPath");
    assert_ne!(location, raw_path, "{what}");
    let (_, pattern) = routes::resolve("GET", location).expect("Location is a route");
    assert_eq!(
        pattern,
        s(event, "routeKey").split_once(' ').unwrap().1,
        "{what}: the same route of another facility"
    );
    let target = location
        .split('/')
        .zip(raw_path.split('/'))
        .find(|(a, b)| a != b)
        .map(|(a, _)| a.to_owned())
        .unwrap();
    let mut followed = event.clone();
    followed["rawPath"] = json!(location);
    followed["requestContext"]["http"]["path"] = json!(location);
    followed["pathParameters"]["id"] = json!(target);
    let again = call_http(h, function, &followed).await;
    assert_eq!(again.status, 200, "{what} → {location}: {}", again.text);
    assert_eq!(
        again.json()["data"]["id"],
        json!(target.parse::<i64>().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_has_sample_events_and_each_runs_through_its_handler() {
    // Every function has events, and every events folder is a function.
    let functions = folders("functions");
    let with_events = folders("events");
    let missing: Vec<_> = functions.difference(&with_events).collect();
    assert!(missing.is_empty(), "functions without events/: {missing:?}");
    let orphans: Vec<_> = with_events.difference(&functions).collect();
    assert!(
        orphans.is_empty(),
        "events/ folders of no function: {orphans:?}"
    );
    let t = template();
    let mut events: Vec<(u8, String, String, String)> = Vec::new();
    for function in &functions {
        let mut n = 0;
        for file in std::fs::read_dir(root().join("events").join(function)).unwrap() {
            let file = file.unwrap().path();
            assert_eq!(
                file.extension().and_then(|e| e.to_str()),
                Some("json"),
                "{}: events are .json files",
                file.display()
            );
            let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&file).unwrap();
            let what = format!("events/{function}/{name}");
            let event: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
            // The order they run in: reads first, then writes (which change what reads see),
            // then the stage runs that come after the sample sync.
            let phase = if let Some(f) = routes::function(function) {
                check_http_shape(f, &event, &what);
                u8::from(
                    event["requestContext"]["http"]["method"] != "GET"
                        || f.name == "api-subscriptions",
                )
            } else if let Some((queue, batch)) = queue_of(&t, function) {
                check_sqs_shape(&event, &queue, batch, &what);
                0
            } else if function == "sync-stage" {
                let input = t
                    .values()
                    .find(|r| r.binary.as_deref() == Some("sync-stage"))
                    .and_then(|r| r.schedule_input.clone())
                    .expect("sync-stage has a Schedule with Input");
                if name == "schedule" {
                    assert_eq!(
                        event,
                        serde_json::from_str::<Value>(&input).unwrap(),
                        "{what}: the Input of the weekly schedule (template.yaml), which the rule delivers as the whole event"
                    );
                }
                2
            } else if INVOKED.contains(&function.as_str()) {
                0
            } else {
                panic!("events/{function}: no test knows this function")
            };
            events.push((phase, function.clone(), name, text));
            n += 1;
        }
        assert!(n > 0, "events/{function} is empty");
    }
    events.sort();

    let mut h = harness("events", None).await;
    // Parts of 25 source rows: the sample sync's engine pass (its ~100 monitoring rows) is
    // fanned out, so the part events find run 1's parts.
    h.ctx.cfg.engine_rows_per_part = 25;
    // The sample (`./dev up`'s first sync) first, through its event: run 1, ids deterministic.
    let sample =
        std::fs::read_to_string(root().join("events/sync-stage/local-sample.json")).unwrap();
    let first = sync_event(&h, &sample).await;
    assert_eq!(first.run_id, 1);
    assert_eq!(
        h.json("select jsonb_agg(status order by id) from sync_file where run_id = 1")
            .await,
        json!(["succeeded", "succeeded"])
    );
    assert_eq!(
        h.scalar_i64("select count(*) from sync_run where id = 1 and status = 'succeeded' and trigger = 'manual'")
            .await,
        1
    );

    let mut ran = 1;
    for (_, function, name, text) in &events {
        let what = format!("events/{function}/{name}");
        let event: Value = serde_json::from_str(text).unwrap();
        if let Some(f) = routes::function(function) {
            let answer = call_http(&h, f, &event).await;
            let want = expected_status(name);
            assert_eq!(answer.status, want, "{what}: {}", answer.text);
            match want {
                200 | 201 => check_http_outcome(f, &event, &answer, &what),
                308 => follow_redirect(&h, f, &event, &answer, &what).await,
                _ => {
                    let error = &answer.json()["error"];
                    assert_eq!(error["status"], want, "{what}: {}", answer.text);
                    if want == 400 {
                        assert!(
                            error["parameter"].is_string(),
                            "{what}: names the parameter"
                        );
                    }
                }
            }
        } else {
            match function.as_str() {
                "sync-import" => {
                    // The chunks are in this test's bucket, not the stack's.
                    let mut event = event.clone();
                    for r in event["Records"].as_array_mut().unwrap() {
                        let mut body: Value = serde_json::from_str(s(r, "body")).unwrap();
                        body["bucket"] = json!(h.res.bucket);
                        r["body"] = json!(body.to_string());
                    }
                    let rows = "select jsonb_build_array(count(*), count(changed_run_id), max(changed_run_id)) from smarts_industrial_facility";
                    let before = h.json(rows).await;
                    let event: SqsEvent = serde_json::from_value(event).unwrap();
                    let resp = import::handle(&h.ctx, event).await;
                    assert_failures(&resp, function, name, &what);
                    // Chunk 0 was imported by the sync: a redelivery changes nothing.
                    assert_eq!(h.json(rows).await, before, "{what}");
                }
                "sync-finalize" => {
                    let finished = "select finished_at::text from sync_run where id = 1";
                    let before = h.json(&format!("select to_jsonb(({finished}))")).await;
                    let event: SqsEvent = serde_json::from_str(text).unwrap();
                    let resp = finalize::handle(&h.ctx, event).await;
                    assert_failures(&resp, function, name, &what);
                    // Run 1 was finalized by the sync: once only.
                    assert_eq!(
                        h.json(&format!("select to_jsonb(({finished}))")).await,
                        before,
                        "{what}"
                    );
                }
                "sync-stage-file" => {
                    let files = "select jsonb_agg(to_jsonb(f) order by id) from sync_file f";
                    let chunks = "select count(*) from import_chunk";
                    let (before, chunks_before) = (h.json(files).await, h.scalar_i64(chunks).await);
                    let event: SqsEvent = serde_json::from_str(text).unwrap();
                    let resp = stormwater::sync::stage_file::handle(&h.ctx, event).await;
                    assert_failures(&resp, function, name, &what);
                    // Run 1's files were staged by the sync: a redelivery stages nothing again.
                    assert_eq!(h.json(files).await, before, "{what}");
                    assert_eq!(h.scalar_i64(chunks).await, chunks_before, "{what}");
                }
                "sync-finalize-part" => {
                    let counted = "select to_jsonb(p) - 'spec' from finalize_phase p where run_id = 1 and step = 'engine'";
                    let before = h.json(counted).await;
                    assert!(
                        before["parts"].as_i64().unwrap_or(0) > 1,
                        "{what}: {before}"
                    );
                    let event: SqsEvent = serde_json::from_str(text).unwrap();
                    let resp = stormwater::sync::parts::handle(&h.ctx, event).await;
                    assert_failures(&resp, function, name, &what);
                    // Run 1's engine parts ran in the sync: a redelivery counts nothing again.
                    assert_eq!(h.json(counted).await, before, "{what}");
                }
                "alert-dispatch" => {
                    let event: SqsEvent = serde_json::from_str(text).unwrap();
                    let resp = stormwater::alerts::dispatch::handle(&h.ctx, event).await;
                    assert!(resp.batch_item_failures.is_empty(), "{what}");
                }
                "violations-compute" => {
                    let req: stormwater::sync::finish::ComputeRequest =
                        serde_json::from_str(text).unwrap();
                    let full = req.full;
                    let report = stormwater::sync::finish::violations_compute(&h.ctx, req)
                        .await
                        .expect("engine");
                    assert_eq!(report.mode, if full { "full" } else { "incremental" });
                    assert_eq!(
                        report.events_new + report.events_updated + report.events_retracted,
                        0,
                        "{what}: finalize already computed everything"
                    );
                }
                "facility-link" => {
                    let req: stormwater::linking::LinkRequest = serde_json::from_str(text).unwrap();
                    let full = req.full;
                    let done = stormwater::sync::finish::facility_link(&h.ctx, req)
                        .await
                        .expect("linker");
                    assert_eq!(done.links.mode, if full { "full" } else { "incremental" });
                    assert_eq!(
                        done.links.written,
                        stormwater::linking::Written::default(),
                        "{what}: finalize already linked everything"
                    );
                }
                "migrate" => {
                    let report = stormwater::lambda::migrate_pool(h.pool())
                        .await
                        .expect("migrate is idempotent");
                    assert_eq!(report.migrated, stormwater::MIGRATOR.iter().count());
                    assert_eq!(report.benchmarks, 109, "{what}");
                    assert_eq!(report.facilities_refreshed, 0, "{what}: nothing to derive");
                }
                "sync-stage" if name == "local-sample" => continue,
                "sync-stage" => {
                    let runs = h.scalar_i64("select count(*) from sync_run").await;
                    let trigger: String =
                        serde_json::from_str::<StageRequest>(text).unwrap().trigger;
                    let asked = if name == "schedule" {
                        // The default manifest names data.ca.gov resources and lists the eSMR
                        // years: a portal on loopback that knows none of them (and cannot list
                        // the eSMR dataset) fails each file, and nothing changes.
                        let (url, asked) = portal_without_resources().await;
                        h.ctx.cfg.ckan_api_url = url;
                        Some(asked)
                    } else {
                        None
                    };
                    let current = "select count(*) from smarts_industrial_facility where withdrawn_run_id is null";
                    let stored = h.scalar_i64(current).await;
                    let summary = sync_event(&h, text).await;
                    assert_eq!(
                        h.scalar_i64("select count(*) from sync_run").await,
                        runs + 1,
                        "{what}: a run"
                    );
                    assert_eq!(
                        h.json(&format!(
                            "select to_jsonb(array[trigger]) from sync_run where id = {}",
                            summary.run_id
                        ))
                        .await,
                        json!([trigger]),
                        "{what}"
                    );
                    if let Some(asked) = asked {
                        // Every SMARTS source of the manifest is asked for once (two files
                        // are staged at a time, so not in the manifest's order), and the eSMR
                        // listing is a failed file of its own.
                        let mut manifest: Vec<String> =
                            stormwater::sync::manifest::smarts_sources()
                                .into_iter()
                                .map(|s| s.url.trim_start_matches("ckan:").to_owned())
                                .collect();
                        manifest.sort();
                        let mut asked = asked.lock().unwrap().clone();
                        asked.sort();
                        assert_eq!(asked, manifest, "{what}");
                        assert!(
                            summary.files.iter().all(|f| f.status == "failed"),
                            "{what}: {:?}",
                            summary.files
                        );
                        assert!(
                            summary.files.iter().any(|f| f.dataset == "esmr"
                                && f.url
                                    == stormwater::sync::manifest::package_url(
                                        stormwater::sync::manifest::ESMR_PACKAGE
                                    )),
                            "{what}: {:?}",
                            summary.files
                        );
                        assert_eq!(h.scalar_i64(current).await, stored, "{what}");
                    } else if name == "local-raw-2025" {
                        // The raw Region 1 download (102 records) is declared as a part of the
                        // statewide dataset: it adds and updates rows and withdraws none.
                        let [file] = summary.files.as_slice() else {
                            panic!("{what}: {summary:?}")
                        };
                        let f = h
                            .json(&format!(
                                "select to_jsonb(f) from sync_file f where id = {}",
                                file.file_id
                            ))
                            .await;
                        assert_eq!(f["status"], "partial", "{what}: {f}");
                        assert_eq!(f["rows_read"], 102, "{what}: {f}");
                        assert_eq!(f["rows_withdrawn"], 0, "{what}: {f}");
                        assert!(
                            f["error"].as_str().is_some_and(|r| r.contains(
                                "a partial extract adds and updates rows, it never withdraws"
                            )),
                            "{what}: {f}"
                        );
                        let now = h.scalar_i64(current).await;
                        assert_eq!(
                            now - stored,
                            f["rows_inserted"].as_i64().unwrap(),
                            "{what}: only new records are added: {f}"
                        );
                    } else {
                        panic!("{what}: say what this stage event must do");
                    }
                }
                other => panic!("events/{other}: no test knows this function"),
            }
        }
        ran += 1;
    }
    assert_eq!(ran, events.len());
    println!("{ran} sample events ran through their handlers");
}
